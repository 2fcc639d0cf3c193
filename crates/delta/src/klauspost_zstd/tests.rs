//! The port against the real encoder: `scripts/kzstd`, built from the
//! Debian sources of klauspost/compress 1.15.12, fed as containers/image
//! feeds it (`io.Copy`, so `ReadFrom`), and its sequence dumps.

use std::io::Read;

use tender_test_support::{kzstd_as, kzstd_dump, kzstd_with};

use super::encoder::{EncoderOptions, Level, ZstdEncoder, ZstdVersion};
use crate::test_inputs::{binaries_tar, mixed};

/// How the input reaches both encoders.
#[derive(Clone, Default)]
pub(super) struct Feed {
    /// The zstd level `EncoderLevelFromZstd` maps (0: SpeedDefault; 10
    /// and above: SpeedBestCompression).
    pub(super) level: u32,
    /// Lengths of the frames before the last (Close + Reset after each).
    pub(super) frames: Vec<usize>,
    /// `Write` calls of this many bytes (0: `io.Copy` / `ReadFrom`).
    pub(super) write: usize,
    /// `Flush` after every this many bytes (0: never).
    pub(super) flush: usize,
    /// `WithWindowSize` (0: the default).
    pub(super) window: u32,
}

impl Feed {
    fn go_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.level > 0 {
            args.push(format!("-level={}", self.level));
        }
        if !self.frames.is_empty() {
            let list: Vec<String> = self.frames.iter().map(|n| n.to_string()).collect();
            args.push(format!("-frames={}", list.join(",")));
        }
        for (name, v) in [("write", self.write), ("flush", self.flush)] {
            if v > 0 {
                args.push(format!("-{name}={v}"));
            }
        }
        if self.window > 0 {
            args.push(format!("-window={}", self.window));
        }
        args
    }
}

/// A reader handing out a few bytes at a time, as a pipe does.
struct Dribble<'a>(&'a [u8], usize);

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.1 = self.1 % 70_001 + 4093;
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// The port's output and sequence dump, fed as scripts/kzstd feeds Go.
pub(super) fn ours(feed: &Feed, plain: &[u8]) -> (Vec<u8>, String) {
    ours_as(ZstdVersion::V1_15_12, feed, plain)
}

/// As [`ours`], as klauspost/compress `version` writes.
fn ours_as(version: ZstdVersion, feed: &Feed, plain: &[u8]) -> (Vec<u8>, String) {
    let mut options = EncoderOptions::for_version(version);
    match feed.level {
        0 | 3..=5 => {}
        10.. => options = options.with_level(Level::Best).unwrap(),
        n => panic!("zstd level {n} is not ported"),
    }
    if feed.window > 0 {
        options = options.with_window_size(feed.window).unwrap();
    }
    let mut e = ZstdEncoder::new(Vec::new(), &options);
    e.seq_dump = Some(String::new());
    let mut rest = plain;
    for i in 0.. {
        let last = i >= feed.frames.len();
        let n = if last {
            rest.len()
        } else {
            feed.frames[i].min(rest.len())
        };
        let (frame, after) = rest.split_at(n);
        rest = after;
        if feed.write == 0 && feed.flush == 0 {
            e.read_from(&mut Dribble(frame, i)).unwrap();
        } else {
            let piece = if feed.write == 0 { 1 << 16 } else { feed.write };
            let mut since_flush = 0;
            for p in frame.chunks(piece) {
                e.write_all(p).unwrap();
                since_flush += p.len();
                if feed.flush > 0 && since_flush >= feed.flush {
                    e.flush().unwrap();
                    since_flush = 0;
                }
            }
        }
        e.close().unwrap();
        if last {
            break;
        }
        e.reset();
    }
    let dump = e.seq_dump.take().unwrap();
    (e.into_inner(), dump)
}

/// Asserts the port finds exactly the sequences Go finds, block by block.
#[track_caller]
pub(super) fn assert_same_sequences(what: &str, feed: &Feed, plain: &[u8]) {
    let args = feed.go_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, go) = kzstd_dump(&args, plain);
    let (_, rust) = ours(feed, plain);
    if go != rust {
        let line = go
            .lines()
            .zip(rust.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(go.lines().count().min(rust.lines().count()));
        let context = |text: &str| -> String {
            text.lines()
                .skip(line.saturating_sub(3))
                .take(6)
                .collect::<Vec<_>>()
                .join(" | ")
        };
        panic!(
            "{what} ({} bytes, {args:?}): sequences differ at dump line {line}: Go [{}] port [{}]",
            plain.len(),
            context(&go),
            context(&rust)
        );
    }
    assert!(
        !go.is_empty() || plain.is_empty(),
        "{what}: no blocks dumped"
    );
}

pub(super) fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

const BLOCK: usize = 128 << 10;

#[test]
fn sequences_of_small_inputs_and_block_edges_match_go() {
    let feed = Feed::default();
    for n in [0, 1, 15, 16, 17, 31, 32, 100, 1024, 1025, 5000] {
        assert_same_sequences(&format!("mixed({n})"), &feed, &mixed(n, 1));
    }
    for n in [
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        2 * BLOCK - 1,
        2 * BLOCK,
        2 * BLOCK + 1,
    ] {
        assert_same_sequences(&format!("mixed({n})"), &feed, &mixed(n, 2));
    }
}

#[test]
fn sequences_of_real_binaries_match_go() {
    let tar = binaries_tar(3 << 20, usize::MAX, |_| {});
    assert!(tar.len() > 2 << 20, "too little in /usr/bin");
    assert_same_sequences("tar of /usr/bin", &Feed::default(), &tar);
}

#[test]
fn sequences_of_frames_match_go() {
    let plain = mixed(600_000, 3);
    let feed = Feed {
        frames: vec![0, 1, 1000, 70_000, BLOCK, BLOCK + 1, 5, 0],
        ..Feed::default()
    };
    assert_same_sequences("frames", &feed, &plain);
}

#[test]
fn sequences_of_content_kinds_match_go() {
    let feed = Feed::default();
    assert_same_sequences("random", &feed, &random(3 * BLOCK + 10, 7));
    assert_same_sequences("zeros", &feed, &vec![0u8; 3 * BLOCK + 7]);
    let text: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz0123456789"
        .iter()
        .copied()
        .cycle()
        .take(2 * BLOCK + 99)
        .collect();
    assert_same_sequences("repeating text", &feed, &text);
}

#[test]
fn sequences_across_the_history_edges_match_go() {
    // A 64 KiB window: blocks of 64 KiB, the history moves down every
    // 128 KiB, and matches reach just within and beyond the window.
    let mut plain = random(200_000, 11);
    plain.extend_from_within(..100_000);
    plain.extend_from_within(60_000..140_000);
    plain.extend(mixed(300_000, 12));
    let feed = Feed {
        window: 1 << 16,
        ..Feed::default()
    };
    assert_same_sequences("window edges", &feed, &plain);
}

/// Asserts the port writes exactly what Go writes (as `version`).
#[track_caller]
fn assert_same_bytes_as(version: ZstdVersion, what: &str, feed: &Feed, plain: &[u8]) {
    let args = feed.go_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let go = match version {
        ZstdVersion::V1_15_12 => kzstd_with(&args, plain),
        v => kzstd_as(go_version(v), &args, plain),
    };
    let rust = ours_as(version, feed, plain).0;
    if go != rust {
        let at = go.iter().zip(&rust).position(|(a, b)| a != b);
        panic!(
            "{what} ({} bytes, {args:?}, {version:?}): Go wrote {} bytes, the port {}; first difference at {at:?}",
            plain.len(),
            go.len(),
            rust.len()
        );
    }
}

#[track_caller]
pub(super) fn assert_same_bytes(what: &str, feed: &Feed, plain: &[u8]) {
    assert_same_bytes_as(ZstdVersion::V1_15_12, what, feed, plain);
}

fn go_version(v: ZstdVersion) -> &'static str {
    match v {
        ZstdVersion::V1_15_12 => "1.15.12",
        ZstdVersion::V1_16_4 => "1.16.4",
        ZstdVersion::V1_17_0 => "1.17.0",
        ZstdVersion::V1_17_8 => "1.17.8",
        ZstdVersion::V1_18_5 => "1.18.5",
    }
}

/// Bytes drawn from `alphabet` values only: Huffman-compressible, with few
/// matches for short alphabets of random order.
fn skewed(n: usize, alphabet: u8, seed: u64) -> Vec<u8> {
    random(n, seed).into_iter().map(|b| b % alphabet).collect()
}

#[test]
fn small_inputs_and_block_edges_match_go() {
    let feed = Feed::default();
    for n in [0, 1, 15, 16, 17, 31, 32, 33, 100, 1024, 1025, 5000] {
        assert_same_bytes(&format!("mixed({n})"), &feed, &mixed(n, 1));
    }
    for n in [
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        2 * BLOCK - 1,
        2 * BLOCK,
        2 * BLOCK + 1,
    ] {
        assert_same_bytes(&format!("mixed({n})"), &feed, &mixed(n, 2));
    }
}

#[test]
fn real_binaries_match_go() {
    let tar = binaries_tar(4 << 20, usize::MAX, |_| {});
    assert!(tar.len() > 3 << 20, "too little in /usr/bin");
    assert_same_bytes("tar of /usr/bin", &Feed::default(), &tar);
}

#[test]
fn content_kinds_match_go() {
    let feed = Feed::default();
    assert_same_bytes("random", &feed, &random(3 * BLOCK + 10, 7));
    assert_same_bytes("zeros", &feed, &vec![0u8; 3 * BLOCK + 7]);
    let text: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz0123456789"
        .iter()
        .copied()
        .cycle()
        .take(2 * BLOCK + 99)
        .collect();
    assert_same_bytes("repeating text", &feed, &text);
    assert_same_bytes("skewed", &feed, &skewed(2 * BLOCK + 500, 16, 8));
}

#[test]
fn frames_and_write_sizes_match_go() {
    let plain = mixed(900_000, 3);
    let frames = vec![0, 1, 1000, 70_000, BLOCK, BLOCK + 1, 5, 0, 17, 33];
    for feed in [
        Feed {
            frames: frames.clone(),
            ..Feed::default()
        },
        Feed {
            frames: frames.clone(),
            write: 1000,
            ..Feed::default()
        },
        Feed {
            frames,
            write: 77_777,
            flush: 100_000,
            ..Feed::default()
        },
    ] {
        assert_same_bytes("frames", &feed, &plain);
    }
}

#[test]
fn the_window_edges_match_go() {
    // The default 8 MiB window: matches just within and just beyond it
    // (and the history moves down after 16 MiB).
    let mut plain = random(1 << 20, 21);
    plain.extend(mixed((7 << 20) - 100, 22));
    plain.extend_from_within(..(1 << 20) + 200);
    assert_same_bytes("8 MiB window", &Feed::default(), &plain);
}

#[test]
fn every_modelled_release_matches_its_reference() {
    // Inputs that reach what the releases changed: all-literal frames with
    // skewed bytes (Huffman-coded or not), blocks with few matches, short
    // literal runs, runs of one byte (RLE blocks) and no input at all.
    let mut sparse = vec![0u8; BLOCK + 3];
    sparse.extend(mixed(50_000, 31));
    sparse.extend(vec![7u8; 2 * BLOCK]);
    let mut few_matches = random(200_000, 32);
    for i in (0..few_matches.len() - 64).step_by(4096) {
        let (a, b) = few_matches.split_at_mut(i + 32);
        b[..24].copy_from_slice(&a[i..i + 24]);
    }
    let frames = Feed {
        frames: vec![17, 20, 32, 33, 40, 300, 5000, 20_000, 0],
        ..Feed::default()
    };
    let small_skewed = skewed(30_000, 12, 33);
    let mixed_small = mixed(40_000, 34);
    // Frames of 17 to 32 skewed literals before a long run: Huffman-coded
    // literals next to sequences only from 1.17.0.
    let mut short_literals = Vec::new();
    let mut chunks = Vec::new();
    for (i, n) in (17..=32).enumerate() {
        let start = short_literals.len();
        short_literals.extend(skewed(n, 4, 40 + i as u64));
        short_literals.extend(vec![b'x'; 3000]);
        chunks.push(short_literals.len() - start);
    }
    let short_frames = Feed {
        frames: chunks,
        ..Feed::default()
    };
    let tar = binaries_tar(1 << 20, usize::MAX, |_| {});
    let default = Feed::default();
    let cases: [(&str, &Feed, &[u8]); 7] = [
        ("short literals", &short_frames, &short_literals),
        ("sparse", &default, &sparse),
        ("few matches", &default, &few_matches),
        ("small skewed frames", &frames, &small_skewed),
        ("mixed frames", &frames, &mixed_small),
        ("empty", &default, &[]),
        ("tar", &default, &tar),
    ];
    let mut outputs = Vec::new();
    for version in ZstdVersion::ALL {
        for (what, feed, plain) in cases {
            assert_same_bytes_as(version, what, feed, plain);
        }
        outputs.push(
            cases
                .iter()
                .map(|(_, feed, plain)| ours_as(version, feed, plain).0)
                .collect::<Vec<_>>(),
        );
    }
    // Each release writes something its predecessor did not.
    for (i, pair) in outputs.windows(2).enumerate() {
        assert!(
            pair[0] != pair[1],
            "{:?} and {:?} wrote the same bytes for every input",
            ZstdVersion::ALL[i],
            ZstdVersion::ALL[i + 1]
        );
    }
}

/// Throughput on real binaries, in release mode:
/// `cargo test --release -p tender-delta klauspost_zstd::tests::speed -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn speed_on_real_binaries() {
    let tar = binaries_tar(48 << 20, usize::MAX, |_| {});
    let start = std::time::Instant::now();
    let mut e = ZstdEncoder::new(Vec::with_capacity(tar.len()), &EncoderOptions::default());
    e.read_from(&mut &tar[..]).unwrap();
    e.close().unwrap();
    let out = e.into_inner();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} bytes -> {} bytes in {secs:.3} s: {:.1} MB/s",
        tar.len(),
        out.len(),
        tar.len() as f64 / secs / 1e6
    );
}
