//! The port against real Go: expected bytes recorded from Go 1.19.8 for
//! level 1, and `scripts/gogzip` run live for levels 2 to 9.

use super::*;

/// The mixed input the recorded Go outputs were made from.
fn sample(n: usize) -> Vec<u8> {
    crate::test_inputs::mixed(n, 0)
}

fn gzip(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    go_gzip(1, &mut &plain[..], &mut out).unwrap();
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// Expected bytes below were produced by Go 1.19.8:
// gzip.NewWriterLevel(w, gzip.BestSpeed), io.Copy, Close.

#[test]
fn tiny_inputs_match_go_exactly() {
    let cases: [(usize, &str); 6] = [
        (0, "1f8b08000000000004ff010000ffff0000000000000000"),
        (
            1,
            "1f8b08000000000004ff000100feff65010000ffff5a7adaef01000000",
        ),
        // 16 bytes: final window <= 16 bytes, stored block.
        (
            16,
            "1f8b08000000000004ff001000efff657220746865206c617a7920646f673b010000ffff9feb4a9910000000",
        ),
        // 17 bytes: Huffman-only path, which then prefers a stored block.
        (
            17,
            "1f8b08000000000004ff001100eeff657220746865206c617a7920646f673b20010000ffff7b0b458911000000",
        ),
        // 127 bytes: Huffman-only block.
        (
            127,
            "1f8b08000000000004ff04c0d91183201804e077abd80a1cef636cc3065036622410ff400c569f8f826008abee04edb709814e536055a2a028abba69bb7e18f36c36c419f7f5c022fe7278f81f9ef1f5fec07f290886b0ea4ed07e9b10e8340556250a8ab2aa9bb6eb8731cf66439c715f0f2ce22ff70f0000ffff7da358217f000000",
        ),
        // 128 bytes: the matcher runs, dynamic Huffman block.
        (
            128,
            "1f8b08000000000004ff9cccdb1544301006e0f7ade2af60cf5e5c8f363410320491612488eaf5a0818f04de10acba2234f7153c394d02ab22093edfdf3f49b3bc28dfafda10d630b4131ae1c3a1e3136398970dbc3f57ee000000ffff679af9c780000000",
        ),
    ];
    for (n, hex) in cases {
        assert_eq!(gzip(&sample(n)), unhex(hex), "sample({n})");
    }
}

/// Larger inputs: length and CRC-32 of Go's output.
#[test]
fn block_sized_inputs_match_go() {
    let cases: [(Vec<u8>, usize, u32); 4] = [
        (sample(65535), 18086, 0x9579_fe8a),
        (sample(65536), 18092, 0xa566_29b7),
        (sample(200_000), 58339, 0x82cb_e25c),
        (vec![0u8; 1_000_000], 1246, 0xe5e5_49b3),
    ];
    for (plain, len, crc) in cases {
        let gz = gzip(&plain);
        assert_eq!(
            (gz.len(), crc32_update(0, &gz)),
            (len, crc),
            "input of {} bytes",
            plain.len()
        );
    }
}

/// A reader that hands out a few bytes at a time.
struct Dribble<'a>(&'a [u8], usize);

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 = self.1 % 13 + 1;
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn short_reads_do_not_change_output() {
    let plain = sample(200_000);
    let mut out = Vec::new();
    go_gzip(1, &mut Dribble(&plain, 0), &mut out).unwrap();
    assert_eq!(out, gzip(&plain));
}

#[test]
fn trailer_and_header() {
    let plain = sample(70_000);
    let gz = gzip(&plain);
    assert_eq!(gz[..10], header(1));
    let n = gz.len();
    assert_eq!(gz[n - 8..n - 4], crc32_update(0, &plain).to_le_bytes());
    assert_eq!(gz[n - 4..], (plain.len() as u32).to_le_bytes());
    // Known CRC-32 check value.
    assert_eq!(crc32_update(0, b"123456789"), 0xcbf4_3926);
    // Continuing from a previous value, as the parallel writer does per block.
    assert_eq!(
        crc32_update(crc32_update(0, b"1234"), b"56789"),
        0xcbf4_3926
    );
}

/// Pseudo-random bytes: nothing to match.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A layer-like tar: text files, a binary that repeats with changes far
/// apart (matches at the edge of the 32 KiB window) and small files.
fn tar_like() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append_data(&mut header, path, data).unwrap();
    };
    let text: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("line {i}: key_{} = value {}\n", i % 97, i * 7 % 1013).into_bytes())
        .collect();
    add("etc/app/config.txt", &text);
    let block = noise(32_700, 7);
    let mut binary = Vec::new();
    for round in 0..6u8 {
        binary.extend_from_slice(&block);
        binary.extend_from_slice(&noise(40 + usize::from(round) * 30, u64::from(round) + 11));
    }
    add("usr/bin/app", &binary);
    for i in 0..40 {
        add(&format!("usr/share/doc/f{i}"), &sample(i * 37 + 5));
    }
    builder.into_inner().unwrap()
}

/// Inputs that reach every branch Go takes: empty and tiny (no matching,
/// final blocks of a few bytes), the lookahead threshold (262 bytes), the
/// 32 KiB window and 64 KiB buffer edges, the 16384-token block limit,
/// runs, noise (stored blocks), text (fixed and dynamic codes), a tar, and
/// a few MiB (many window slides and blocks).
fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = Vec::new();
    for n in [0, 1, 4, 5, 100, 261, 262, 263, 3_000] {
        v.push((format!("sample({n})"), sample(n)));
    }
    for n in [
        32_767, 32_768, 32_769, 65_273, 65_274, 65_535, 65_536, 65_537, 98_304,
    ] {
        v.push((format!("sample({n})"), sample(n)));
    }
    v.push(("zeros(1 MiB)".into(), vec![0; 1 << 20]));
    v.push(("abc repeated".into(), b"abc".repeat(100_000)));
    v.push(("noise(200000)".into(), noise(200_000, 3)));
    v.push((
        "noise then zeros".into(),
        [noise(70_000, 5), vec![0; 70_000], noise(10, 9)].concat(),
    ));
    v.push(("tar-like".into(), tar_like()));
    v.push((
        "text, 300 KiB of zeros, text".into(),
        [sample(100_000), vec![0; 300_000], sample(200_000)].concat(),
    ));
    v.push(("sample(3 MiB)".into(), sample(3 << 20)));
    v
}

/// Every input through our port and through real Go at `level`, written
/// in one `Write`, and for the larger ones also in `Write`s of a few sizes.
fn matches_go_at(level: u8) {
    use tender_test_support::{GoWrites, go_gzip as real_go_gzip};
    for (name, plain) in inputs() {
        let mut ours = Vec::new();
        go_gzip(level, &mut &plain[..], &mut ours).unwrap();
        let go = real_go_gzip(&plain, i32::from(level), GoWrites::All);
        assert!(
            ours == go,
            "level {level}, {name}: {} bytes, Go wrote {}, first difference at {:?}",
            ours.len(),
            go.len(),
            ours.iter().zip(&go).position(|(a, b)| a != b)
        );
        // Levels 4 to 9 in pieces much smaller than the real ones, so that
        // every input of some size crosses many piece boundaries, some
        // inside long runs where the workers never meet.
        if level >= 4 && plain.len() > 100_000 {
            let pieces = parallel::Pieces {
                size: 128 << 10,
                zone: 4 << 10,
                threads: 3,
            };
            let mut cut = Vec::new();
            go_gzip_in_pieces(level, &mut &plain[..], &mut cut, pieces).unwrap();
            assert!(
                cut == go,
                "level {level}, {name} in pieces: first difference at {:?}",
                cut.iter().zip(&go).position(|(a, b)| a != b)
            );
        }
        if plain.len() > 60_000 && plain.len() < 1 << 21 {
            for size in [1_000, 32_768, 100_000] {
                let ours = go_gzip_in_writes(level, &plain, size);
                let go = real_go_gzip(&plain, i32::from(level), GoWrites::Size(size));
                assert!(ours == go, "level {level}, {name}, writes of {size} bytes");
            }
        }
    }
}

#[test]
fn level_2_matches_go() {
    matches_go_at(2);
}

#[test]
fn level_3_matches_go() {
    matches_go_at(3);
}

#[test]
fn level_4_matches_go() {
    matches_go_at(4);
}

#[test]
fn level_5_matches_go() {
    matches_go_at(5);
}

#[test]
fn default_level_6_matches_go() {
    matches_go_at(6);
}

#[test]
fn level_7_matches_go() {
    matches_go_at(7);
}

#[test]
fn level_8_matches_go() {
    matches_go_at(8);
}

#[test]
fn level_9_matches_go() {
    matches_go_at(9);
}

#[test]
fn headers_name_the_levels_to_try() {
    assert_eq!(header(1)[8], 4);
    assert_eq!(header(6)[8], 0);
    assert_eq!(header(9)[8], 2);
    assert_eq!(candidate_levels(&header(1)), &[1]);
    assert_eq!(candidate_levels(&header(9)), &[9]);
    assert_eq!(candidate_levels(&header(6))[0], 6);
    // GNU gzip -6 -n: OS 3, not Go.
    assert!(candidate_levels(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]).is_empty());
    // A name or a modification time: not what Go's layer writers set.
    assert!(candidate_levels(&[0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 255]).is_empty());
    assert!(candidate_levels(&[0x1f, 0x8b, 8, 0, 1, 0, 0, 0, 0, 255]).is_empty());
    let mut out = Vec::new();
    assert!(go_gzip(0, &mut &b""[..], &mut out).is_err());
    assert!(go_gzip(10, &mut &b""[..], &mut out).is_err());
}

/// The cut encoder against the one-thread encoder (checked against Go
/// above) at lengths around where pieces start and where the input could
/// end inside a worker's tail: the last piece is found right whatever the
/// reads return.
#[test]
fn pieces_end_where_the_input_ends() {
    let pieces = parallel::Pieces {
        size: 128 << 10,
        zone: 4 << 10,
        threads: 2,
    };
    let piece = 128 << 10;
    let tail = (4 << 10) + (64 << 10) + 1024;
    let plain = sample(3 * piece + tail + 2);
    for n in [
        piece + tail,
        piece + tail + 1,
        piece + tail + 2,
        2 * piece,
        2 * piece + tail,
        2 * piece + tail + 1,
        3 * piece + tail + 2,
    ] {
        let plain = &plain[..n];
        let mut one = Vec::new();
        let deflater = Deflater::new(6).unwrap();
        one.extend_from_slice(&header(6));
        one_thread(deflater, &mut &plain[..], &mut one).unwrap();
        let mut cut = Vec::new();
        go_gzip_in_pieces(6, &mut Dribble(plain, 0), &mut cut, pieces).unwrap();
        assert!(cut == one, "{n} bytes");
    }
}

/// The start `go_gzip_start` writes is a prefix of the whole output, with
/// at least one finished block once a few hundred KiB are read.
#[test]
fn the_start_is_a_prefix_of_the_whole() {
    let plain = sample(1 << 20);
    for level in [1, 6, 9] {
        let mut whole = Vec::new();
        go_gzip(level, &mut &plain[..], &mut whole).unwrap();
        let mut start = Vec::new();
        go_gzip_start(level, &mut &plain[..], 300_000, &mut start).unwrap();
        assert!(start.len() > 10_000, "level {level}: {} bytes", start.len());
        assert!(whole.starts_with(&start), "level {level}");
    }
}
