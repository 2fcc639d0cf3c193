//! huff0 and the fse package against klauspost/compress 1.15.12 (see
//! [`reference`](super::reference)): runs of literal blocks through one
//! Scratch under each reuse policy, table log overrides, every input shape
//! and size, and fse.Compress on its own.

use serde_json::{Value, json};

use super::fse;
use super::huff0::{self, Huff0Error, ReusePolicy};
use super::reference::{binary, check, skewed, text, unhex, uniform};
use crate::test_inputs::mixed;

// ----------------------------------------------------------------- huff0

fn huff0_kind(e: &Huff0Error) -> &'static str {
    match e {
        Huff0Error::Incompressible => "incompressible",
        Huff0Error::UseRle => "use_rle",
        Huff0Error::TooBig => "too_big",
        _ => "other",
    }
}

fn step(op: &str, data: &[u8], reuse: u8) -> Value {
    json!({"op": op, "data": hex::encode(data), "reuse": reuse, "want_log_less": 4,
           "table_log": 0, "max_symbol_value": 0})
}

/// zstd's choice of stream count: 4 from 1 KiB of literals.
fn zstd_step(data: &[u8], reuse: u8) -> Value {
    step(if data.len() >= 1024 { "4x" } else { "1x" }, data, reuse)
}

fn huff0_case(steps: Vec<Value>) -> Value {
    json!({"kind": "huff0", "steps": steps})
}

fn huff0_ours(case: &Value) -> Value {
    let mut s = huff0::Scratch::default();
    let mut results = Vec::new();
    for st in case["steps"].as_array().unwrap() {
        let data = unhex(&st["data"]);
        s.reuse = match st["reuse"].as_u64().unwrap() {
            0 => ReusePolicy::Allow,
            1 => ReusePolicy::Prefer,
            2 => ReusePolicy::None,
            _ => ReusePolicy::Must,
        };
        s.want_log_less = st["want_log_less"].as_u64().unwrap() as u8;
        s.table_log = st["table_log"].as_u64().unwrap() as u8;
        s.max_symbol_value = st["max_symbol_value"].as_u64().unwrap() as u8;
        let op = st["op"].as_str().unwrap();
        let (mut err, mut out, mut reused, mut est, mut min_size) =
            ("", Vec::new(), false, [0isize; 3], 0);
        let mut record = |r: Result<(&[u8], bool), Huff0Error>| match r {
            Ok((o, re)) => {
                out = o.to_vec();
                reused = re;
            }
            Err(e) => err = huff0_kind(&e),
        };
        match op {
            "1x" => record(huff0::compress_1x(&data, &mut s)),
            "4x" => record(huff0::compress_4x(&data, &mut s)),
            "estimate" => {
                match huff0::estimate_sizes(&data, &mut s) {
                    Ok((t, d, r)) => est = [t, d, r],
                    Err(e) => err = huff0_kind(&e),
                }
                min_size = s.min_size(data.len());
            }
            "transfer" => {
                let mut src = huff0::Scratch::default();
                record(huff0::compress_4x(&data, &mut src));
                s.transfer_ctable(&src);
            }
            _ => unreachable!(),
        }
        let (out_table, out_data) = if op == "1x" || op == "4x" {
            (
                s.out_table().map(hex::encode),
                s.out_data().map(hex::encode),
            )
        } else {
            (None, None)
        };
        results.push(
            json!({"err": err, "out": hex::encode(out), "reused": reused,
            "out_table": out_table, "out_data": out_data, "est": est, "min_size": min_size}),
        );
    }
    json!({"steps": results})
}

/// A run of literal blocks as one zstd encoder feeds them to its literal
/// coder under `reuse`: similar blocks (reuse pays), blocks with symbols the
/// previous table lacks, RLE, incompressible, tiny and estimated blocks.
fn block_run(reuse: u8, seed: u64) -> Vec<Value> {
    let mut steps = vec![
        zstd_step(&text(4096, seed), reuse),
        zstd_step(&text(4096, seed + 1), reuse),
        zstd_step(&text(200, seed + 2), reuse),
        zstd_step(&binary(65536, 4096 * seed as usize), reuse),
        zstd_step(&binary(65536, 300_000 + 4096 * seed as usize), reuse),
        zstd_step(&mixed(131_072, seed as u32), reuse),
        zstd_step(&[b'x'; 1000], reuse),
        zstd_step(&uniform(1024, seed), reuse),
        zstd_step(&text(33, seed + 3), reuse),
        // Only lowercase letters and spaces: the last table codes them all.
        zstd_step(
            &text(2000, seed + 4)
                .into_iter()
                .filter(u8::is_ascii_lowercase)
                .collect::<Vec<_>>(),
            reuse,
        ),
        step("estimate", &text(4096, seed + 5), reuse),
        step("transfer", &binary(8192, 1_000_000), reuse),
        zstd_step(&binary(8192, 1_010_000), reuse),
        step("4x", &text(11, seed), reuse),
        step("4x", &text(12, seed), reuse),
        step("1x", &[7], reuse),
        step("1x", &[], reuse),
        step("4x", &skewed(1024, 2, 1, seed), reuse),
        step("1x", &skewed(5000, 3, 3, seed), reuse),
    ];
    // A second round with the zstd default and other gains asked for.
    for (i, wll) in [0u8, 1, 7, 255].into_iter().enumerate() {
        let mut s = zstd_step(&text(3000 + 500 * i, seed + 10 + i as u64), reuse);
        s["want_log_less"] = json!(wll);
        steps.push(s);
    }
    steps
}

#[test]
fn huff0_block_runs_match_go_under_each_reuse_policy() {
    let cases: Vec<Value> = (0..4u8)
        .map(|reuse| huff0_case(block_run(reuse, 1 + u64::from(reuse))))
        .collect();
    let go = check(cases, huff0_ours);

    // The runs reach the branches that matter.
    let steps: Vec<&Value> = go
        .iter()
        .flat_map(|c| c["steps"].as_array().unwrap())
        .collect();
    let count = |f: &dyn Fn(&Value) -> bool| steps.iter().filter(|s| f(s)).count();
    assert!(
        count(&|s| s["reused"] == json!(true)) >= 4,
        "some block reuses the table"
    );
    for kind in ["incompressible", "use_rle"] {
        assert!(
            count(&|s| s["err"] == json!(kind)) > 0,
            "some block is {kind}"
        );
    }
    let table_kinds = |s: &&&Value| {
        s["out_table"]
            .as_str()
            .and_then(|t| t.get(..2))
            .map(|b| u8::from_str_radix(b, 16).unwrap() >= 128)
    };
    assert!(
        steps
            .iter()
            .filter(|s| table_kinds(s) == Some(true))
            .count()
            > 0,
        "weights packed raw"
    );
    assert!(
        steps
            .iter()
            .filter(|s| table_kinds(s) == Some(false))
            .count()
            > 0,
        "weights FSE-coded"
    );
}

#[test]
fn huff0_table_log_and_symbol_overrides_match_go() {
    let mut steps = Vec::new();
    for (i, table_log) in [5u8, 6, 7, 8, 9, 10, 11, 4, 12].into_iter().enumerate() {
        for reuse in [2u8, 0] {
            // Many symbols with very skewed counts: long codes, cut to the
            // table log by setMaxHeight.
            let mut s = step("4x", &skewed(60_000, 256, 6, 40 + i as u64), reuse);
            s["table_log"] = json!(table_log);
            steps.push(s);
            let mut s = step("1x", &binary(20_000, 600_000 + 20_000 * i), reuse);
            s["table_log"] = json!(table_log);
            s["max_symbol_value"] = json!(100);
            steps.push(s);
        }
    }
    // The largest block, and one byte more.
    steps.push(step("4x", &skewed(huff0::BLOCK_SIZE_MAX, 40, 2, 9), 0));
    steps.push(step("4x", &skewed(huff0::BLOCK_SIZE_MAX + 1, 40, 2, 9), 0));
    let go = check(vec![huff0_case(steps)], huff0_ours);
    let steps = go[0]["steps"].as_array().unwrap();
    assert_eq!(steps.last().unwrap()["err"], json!("too_big"));
    assert!(
        steps.iter().any(|s| s["err"] == json!("other")),
        "table log 4 and 12 are refused"
    );
}

#[test]
fn huff0_sizes_and_shapes_match_go() {
    let mut cases = Vec::new();
    for (i, n) in [
        0usize, 1, 2, 12, 13, 32, 33, 100, 1024, 4096, 65536, 131_072,
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 100 + i as u64;
        let inputs = [
            vec![0x41; n],
            skewed(n, 2, 1, seed),
            skewed(n, 256, 4, seed),
            uniform(n, seed),
            text(n, seed),
            mixed(n, seed as u32),
            binary(n, 50_000 * i),
        ];
        for op in ["1x", "4x", "estimate"] {
            let steps = inputs.iter().map(|d| step(op, d, 0)).collect();
            cases.push(huff0_case(steps));
        }
    }
    check(cases, huff0_ours);
}

// ------------------------------------------------------------- fse package

fn fse_ours(case: &Value) -> Value {
    let mut s = fse::Scratch::default();
    let mut results = Vec::new();
    for st in case["steps"].as_array().unwrap() {
        let data = unhex(&st["data"]);
        s.table_log = st["table_log"].as_u64().unwrap() as u8;
        if st["histogram"] == json!(true) {
            let hist = s.histogram();
            hist.fill(0);
            for &b in &data {
                hist[usize::from(b)] += 1;
            }
            let max_count = hist.iter().copied().max().unwrap() as usize;
            let max_sym = data.iter().copied().max().unwrap_or(0);
            s.histogram_finished(max_sym, max_count);
        }
        let (err, out) = match fse::compress(&data, &mut s) {
            Ok(out) => ("", hex::encode(out)),
            Err(fse::FseError::Incompressible) => ("incompressible", String::new()),
            Err(fse::FseError::UseRle) => ("use_rle", String::new()),
            Err(_) => ("other", String::new()),
        };
        results.push(
            json!({"err": err, "out": out, "reused": false, "out_table": null,
            "out_data": null, "est": [0, 0, 0], "min_size": 0}),
        );
    }
    json!({"steps": results})
}

#[test]
fn fse_package_compress_matches_go() {
    let mut steps = Vec::new();
    let mut seed = 7;
    for n in [
        0usize, 1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 100, 255, 1000, 4096, 20_000, 65536,
    ] {
        for (symbols, bias) in [
            (2u64, 1u32),
            (4, 1),
            (16, 2),
            (16, 6),
            (13, 1),
            (64, 3),
            (256, 5),
        ] {
            for (table_log, histogram) in
                [(0u8, false), (5, true), (6, false), (9, true), (12, false)]
            {
                seed += 1;
                steps.push(json!({"data": hex::encode(skewed(n, symbols, bias, seed)),
                    "table_log": table_log, "histogram": histogram}));
            }
        }
        // One symbol in most places (zero-bit states), and RLE.
        let mut mostly = vec![3u8; n];
        for (i, b) in uniform(n, seed).into_iter().enumerate() {
            if b < 40 {
                mostly[i] = b % 8;
            }
        }
        steps.push(json!({"data": hex::encode(&mostly), "table_log": 0, "histogram": false}));
        steps.push(json!({"data": hex::encode(&mostly), "table_log": 11, "histogram": true}));
        steps.push(json!({"data": hex::encode(vec![9u8; n]), "table_log": 0, "histogram": false}));
    }
    steps.push(json!({"data": hex::encode(text(5000, 3)), "table_log": 13, "histogram": false}));
    let go = check(vec![json!({"kind": "fse", "steps": steps})], fse_ours);
    let steps = go[0]["steps"].as_array().unwrap();
    assert!(steps.iter().filter(|s| s["err"] == json!("")).count() > 100);
}
