//! zstd's FSE encoder against klauspost/compress 1.15.12 (see
//! [`reference`](super::reference)): normalized tables, headers, cost
//! estimates and the predefined tables for literal length, offset and
//! match length codes, and whole sequence bit streams as blockEnc writes
//! them.

use serde_json::{Value, json};

use super::bit_writer::{BIT_MASK32, BitWriter};
use super::fse_encoder::FseEncoder;
use super::fse_predefined::{
    LL_BITS_TABLE, MAX_LITERAL_LENGTH_SYMBOL, MAX_MATCH_LENGTH_SYMBOL, ML_BITS_TABLE,
    TABLE_LITERAL_LENGTHS, TABLE_MATCH_LENGTHS, TABLE_OFFSETS, fse_predef_enc,
};
use super::fse_state::CState;
use super::reference::{Rng, check, skewed, unhex};

// --------------------------------------------------------- zstd fseEncoder

/// A fresh encoder normalized over `symbols`, as blockEnc sets one up.
fn new_encoder(symbols: &[u8]) -> Result<FseEncoder, super::fse_table::TableError> {
    let mut enc = FseEncoder::default();
    let hist = enc.histogram();
    for &b in symbols {
        hist[usize::from(b)] += 1;
    }
    let max_sym = symbols.iter().copied().max().unwrap_or(0);
    let max_count = hist[..=usize::from(max_sym)].iter().copied().max().unwrap() as usize;
    enc.histogram_finished(max_sym, max_count);
    enc.normalize_count(symbols.len())?;
    if enc.use_rle {
        enc.set_rle(symbols[0]);
    } else {
        enc.validate_norm()
            .expect("Go's debug check of the normalized counts");
    }
    Ok(enc)
}

fn bits_table(table: usize) -> Option<&'static [u8]> {
    match table {
        TABLE_LITERAL_LENGTHS => Some(&LL_BITS_TABLE),
        TABLE_MATCH_LENGTHS => Some(&ML_BITS_TABLE),
        _ => None,
    }
}

fn report(enc: &FseEncoder, case: &Value) -> Value {
    let mut header = unhex(&case["prefix"]);
    let err = match enc.write_count(&mut header) {
        Ok(()) => "",
        Err(_) => {
            header.clear();
            "other"
        }
    };
    let symbol_len = usize::from(enc.symbol_len);
    let hists: Vec<Vec<u32>> = serde_json::from_value(case["approx"].clone()).unwrap();
    let predef = fse_predef_enc();
    let approx: Vec<[u32; 4]> = hists
        .iter()
        .map(|h| {
            [
                enc.approx_size(h),
                predef[0].approx_size(h),
                predef[1].approx_size(h),
                predef[2].approx_size(h),
            ]
        })
        .collect();
    let bit_costs: Vec<u32> = if enc.use_rle {
        Vec::new()
    } else {
        (0..symbol_len)
            .filter(|&i| enc.norm[i] != 0)
            .map(|i| enc.bit_cost(i as u8, 8))
            .collect()
    };
    let transforms: Vec<[i64; 3]> = enc.ct.symbol_tt[..symbol_len]
        .iter()
        .map(|t| {
            [
                i64::from(t.delta_nb_bits),
                i64::from(t.delta_find_state),
                i64::from(t.out_bits),
            ]
        })
        .collect();
    let or_null = |v: Value| if v == json!([]) { Value::Null } else { v };
    json!({"table": {
        "err": err,
        "use_rle": enc.use_rle,
        "zero_bits": enc.zero_bits,
        "actual_table_log": enc.actual_table_log,
        "symbol_len": enc.symbol_len,
        "max_bits": enc.max_bits,
        "norm": enc.norm[..symbol_len],
        "state_table": enc.ct.state_table,
        "transforms": transforms,
        "header": hex::encode(header),
        "max_header_size": enc.max_header_size(),
        "approx": or_null(json!(approx)),
        "bit_costs": or_null(json!(bit_costs)),
    }})
}

fn fse_encoder_ours(case: &Value) -> Value {
    match case["kind"].as_str().unwrap() {
        "predefined" => report(
            &fse_predef_enc()[case["table"].as_u64().unwrap() as usize],
            case,
        ),
        "fse_encoder" => match new_encoder(&unhex(&case["symbols"])) {
            Ok(mut enc) => {
                enc.set_bits(bits_table(case["bits"].as_u64().unwrap() as usize));
                report(&enc, case)
            }
            Err(_) => json!({"err": "other"}),
        },
        _ => unreachable!(),
    }
}

fn histogram_of(symbols: &[u8]) -> Vec<u32> {
    let mut h = vec![
        0u32;
        symbols
            .iter()
            .copied()
            .max()
            .map_or(0, |m| usize::from(m) + 1)
    ];
    for &s in symbols {
        h[usize::from(s)] += 1;
    }
    h
}

/// A stream of `n` codes below `max + 1`, skewed by `bias` (1: uniform).
fn codes(n: usize, max: u8, bias: u32, seed: u64) -> Vec<u8> {
    skewed(n, u64::from(max) + 1, bias, seed)
}

#[test]
fn fse_encoder_tables_headers_and_costs_match_go() {
    let mut cases = Vec::new();
    let mut seed = 1000;
    // Literal length (35), offset (31) and match length (52) codes.
    for (bits, max) in [
        (TABLE_LITERAL_LENGTHS, MAX_LITERAL_LENGTH_SYMBOL),
        (TABLE_OFFSETS, 31),
        (TABLE_MATCH_LENGTHS, MAX_MATCH_LENGTH_SYMBOL),
    ] {
        for n in [
            1usize, 2, 3, 4, 5, 7, 10, 31, 64, 100, 300, 1000, 5000, 30_000, 65_535,
        ] {
            for bias in [1u32, 2, 4, 12] {
                seed += 1;
                let symbols = codes(n, max, bias, seed);
                let other = codes(n.max(50), max, 3, seed + 7);
                let mut approx = vec![histogram_of(&symbols), histogram_of(&other)];
                approx.push(histogram_of(&codes(200, max.min(28), 2, seed + 9)));
                cases.push(
                    json!({"kind": "fse_encoder", "symbols": hex::encode(&symbols),
                    "bits": bits, "prefix": "aa55", "approx": approx}),
                );
            }
        }
        // RLE, two symbols, one rare symbol among many of another
        // (normalizeCount2's corner), and every symbol once.
        let n = 2000;
        let mut lopsided = vec![1u8; n];
        lopsided[17] = max;
        lopsided[1000] = 0;
        let all: Vec<u8> = (0..=max).collect();
        for symbols in [
            vec![max; 40],
            vec![0, max],
            lopsided,
            all.clone(),
            [all.clone(), all].concat(),
        ] {
            cases.push(
                json!({"kind": "fse_encoder", "symbols": hex::encode(&symbols),
                "bits": bits, "prefix": "", "approx": [histogram_of(&symbols)]}),
            );
        }
    }
    for table in [TABLE_LITERAL_LENGTHS, TABLE_OFFSETS, TABLE_MATCH_LENGTHS] {
        let hists = [
            codes(500, 35, 2, 1),
            codes(500, 28, 2, 2),
            codes(500, 52, 2, 3),
            codes(9, 3, 1, 4),
        ];
        let approx: Vec<Vec<u32>> = hists.iter().map(|c| histogram_of(c)).collect();
        cases.push(json!({"kind": "predefined", "table": table, "prefix": "01", "approx": approx}));
    }
    let go = check(cases, fse_encoder_ours);
    let tables: Vec<&Value> = go.iter().filter_map(|c| c.get("table")).collect();
    assert!(tables.iter().any(|t| t["use_rle"] == json!(true)));
    assert!(tables.iter().any(|t| t["zero_bits"] == json!(true)));
    assert!(tables.iter().any(|t| t["actual_table_log"] == json!(8)));
}

// -------------------------------------------------------------- sequences

/// blockEnc.encode's sequence section: the three headers, then the codes
/// and extra bits from the last sequence to the first through three
/// `CState`s sharing one bit writer.
fn encode_sequences(prefix: Vec<u8>, seqs: &[[u32; 6]], encs: [&FseEncoder; 3]) -> Vec<u8> {
    let [ll_enc, of_enc, ml_enc] = encs;
    let mut out = prefix;
    ll_enc.write_count(&mut out).unwrap();
    of_enc.write_count(&mut out).unwrap();
    ml_enc.write_count(&mut out).unwrap();
    let mut wr = BitWriter::default();
    wr.reset(out);

    let (ll_tt, of_tt, ml_tt) = (
        &ll_enc.ct.symbol_tt,
        &of_enc.ct.symbol_tt,
        &ml_enc.ct.symbol_tt,
    );
    let code = |tt: &[super::fse_table::SymbolTransform], c: u32| tt[c as usize];
    let s = seqs[seqs.len() - 1];
    let (ll_b, of_b, ml_b) = (code(ll_tt, s[0]), code(of_tt, s[1]), code(ml_tt, s[2]));
    let mut ll = CState::init(&ll_enc.ct, ll_b);
    let mut of = CState::init(&of_enc.ct, of_b);
    wr.flush32();
    let mut ml = CState::init(&ml_enc.ct, ml_b);
    wr.add_bits32_nc(s[3], ll_b.out_bits);
    wr.add_bits32_nc(s[4], ml_b.out_bits);
    wr.flush32();
    wr.add_bits32_nc(s[5], of_b.out_bits);
    for s in seqs[..seqs.len() - 1].iter().rev() {
        let of_b = code(of_tt, s[1]);
        wr.flush32();
        of.encode(&mut wr, of_b);
        let mut out_bits = of_b.out_bits & 31;
        let mut extra_bits = u64::from(s[5] & BIT_MASK32[usize::from(out_bits)]);
        let mut extra_bits_n = out_bits;

        let ml_b = code(ml_tt, s[2]);
        ml.encode(&mut wr, ml_b);
        out_bits = ml_b.out_bits & 31;
        extra_bits = extra_bits << out_bits | u64::from(s[4] & BIT_MASK32[usize::from(out_bits)]);
        extra_bits_n += out_bits;

        let ll_b = code(ll_tt, s[0]);
        ll.encode(&mut wr, ll_b);
        out_bits = ll_b.out_bits & 31;
        extra_bits = extra_bits << out_bits | u64::from(s[3] & BIT_MASK32[usize::from(out_bits)]);
        extra_bits_n += out_bits;

        wr.flush32();
        wr.add_bits64_nc(extra_bits, extra_bits_n);
    }
    ml.flush(&mut wr, ml_enc.actual_table_log);
    of.flush(&mut wr, of_enc.actual_table_log);
    ll.flush(&mut wr, ll_enc.actual_table_log);
    wr.close();
    wr.out
}

fn sequences_ours(case: &Value) -> Value {
    let seqs: Vec<[u32; 6]> = serde_json::from_value(case["seqs"].clone()).unwrap();
    let modes: [String; 3] = serde_json::from_value(case["modes"].clone()).unwrap();
    let mut encs: Vec<FseEncoder> = Vec::new();
    for (j, mode) in modes.iter().enumerate() {
        if mode == "predef" {
            encs.push(fse_predef_enc()[j].clone());
            continue;
        }
        let codes: Vec<u8> = seqs.iter().map(|s| s[j] as u8).collect();
        match new_encoder(&codes) {
            Ok(e) => encs.push(e),
            Err(_) => return json!({"err": "other"}),
        }
    }
    // blockEnc's setBits calls (a no-op on predefined encoders).
    encs[0].set_bits(Some(&LL_BITS_TABLE));
    encs[2].set_bits(Some(&ML_BITS_TABLE));
    encs[1].set_bits(None);
    let stream = encode_sequences(
        unhex(&case["prefix"]),
        &seqs,
        [&encs[0], &encs[1], &encs[2]],
    );
    json!({"stream": hex::encode(stream)})
}

/// `n` sequences with codes skewed by `bias` (below 36, 32 and 53, or
/// within the predefined tables) and random extra-bit values.
fn sequences(n: usize, bias: u32, predef_range: bool, seed: u64) -> Vec<[u32; 6]> {
    let mut r = Rng(seed | 1);
    let (ll_max, of_max, ml_max) = if predef_range {
        (36, 29, 53)
    } else {
        (36, 32, 53)
    };
    (0..n)
        .map(|_| {
            [
                r.skewed(ll_max, bias) as u32,
                r.skewed(of_max, bias) as u32,
                r.skewed(ml_max, bias) as u32,
                r.next() as u32,
                r.next() as u32,
                r.next() as u32,
            ]
        })
        .collect()
}

#[test]
fn sequence_streams_match_go() {
    let mut cases = Vec::new();
    let mut seed = 5000;
    for n in [1usize, 2, 3, 7, 40, 1000, 20_000] {
        for bias in [1u32, 3, 10] {
            for modes in [
                ["new", "new", "new"],
                ["predef", "predef", "predef"],
                ["new", "predef", "new"],
                ["predef", "new", "predef"],
            ] {
                seed += 1;
                let seqs = sequences(n, bias, modes.contains(&"predef"), seed);
                cases.push(
                    json!({"kind": "sequences", "seqs": seqs, "modes": modes, "prefix": "ff"}),
                );
            }
        }
    }
    // RLE streams: one literal-length and one match-length code throughout.
    let mut seqs = sequences(500, 2, false, 77);
    for s in &mut seqs {
        s[0] = 20;
        s[2] = 52;
    }
    cases.push(
        json!({"kind": "sequences", "seqs": seqs, "modes": ["new", "new", "new"], "prefix": ""}),
    );
    check(cases, sequences_ours);
}

// ------------------------------------------------------------------ reuse

/// Go leaves an encoder the previous block's (`reUsed`) untouched: no new
/// normalization, no header, no new bit counts. (The sequence coders' swap
/// that sets the flag is the block encoder's.)
#[test]
fn a_reused_fse_encoder_keeps_its_table_and_writes_no_header() {
    let mut enc = new_encoder(&codes(1000, 35, 3, 1)).unwrap();
    enc.set_bits(Some(&LL_BITS_TABLE));
    let before = enc.clone();
    enc.re_used = true;
    let hist = enc.histogram();
    hist.fill(0);
    hist[0] = 10;
    enc.histogram_finished(0, 10);
    enc.normalize_count(10).unwrap();
    enc.set_bits(None);
    let mut out = vec![1];
    enc.write_count(&mut out).unwrap();
    assert_eq!(out, [1]);
    assert!(!enc.use_rle);
    assert_eq!(enc.norm, before.norm);
    assert_eq!(enc.ct.symbol_tt, before.ct.symbol_tt);
    assert_eq!(enc.ct.state_table, before.ct.state_table);
}
