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
    /// Lengths of the frames before the last (Close + Reset after each).
    pub(super) frames: Vec<usize>,
    /// `Write` calls of this many bytes (0: `io.Copy` / `ReadFrom`).
    pub(super) write: usize,
    /// `Flush` after every this many bytes (0: never).
    pub(super) flush: usize,
    /// `WithWindowSize` (0: the default).
    pub(super) window: u32,
    /// `SpeedFastest` (zstd level 1) instead of `SpeedDefault`.
    pub(super) fastest: bool,
    /// `SpeedBestCompression` (zstd level 10) instead of `SpeedDefault`.
    pub(super) best: bool,
    /// `WithEncoderConcurrency` (0: Go's default, GOMAXPROCS).
    pub(super) concurrency: usize,
}

impl Feed {
    fn go_args(&self) -> Vec<String> {
        let mut args = Vec::new();
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
        if self.fastest {
            args.push("-level=1".to_string());
        }
        if self.best {
            args.push("-level=10".to_string());
        }
        if self.concurrency > 0 {
            args.push(format!("-concurrency={}", self.concurrency));
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
    let level = if feed.fastest {
        Level::Fastest
    } else if feed.best {
        Level::Best
    } else {
        Level::Default
    };
    let mut options = EncoderOptions::new(version, level);
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
fn sequences_of_real_binaries_match_go() {
    // The matcher alone: a mismatch here names the block and sequence
    // where a byte mismatch of the whole output would not.
    let tar = binaries_tar(3 << 19, usize::MAX, |_| {});
    assert!(tar.len() > 1 << 20, "too little in /usr/bin");
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
    // Copies alternating between two distances: chains of repeat-offset-2
    // matches (whose table entries Go files under a stale hash in frames
    // of one block), then 6-byte copies of where those matches began,
    // which only the short table can find. In a frame of one block
    // (matched without history) and in a stream.
    let alternating = |prefix: usize| {
        let mut out = random(prefix + 3000, 9);
        let mut starts = Vec::new();
        for k in 0..1500 {
            starts.push(out.len());
            let d = if k % 2 == 0 { 1000 } else { 2000 };
            for _ in 0..40 {
                out.push(out[out.len() - d]);
            }
        }
        out.extend(random(2000, 10));
        for (j, &p) in starts.iter().skip(2).step_by(5).enumerate() {
            out.extend_from_within(p..p + 6);
            out.extend(random(10, 11 + j as u64));
        }
        out
    };
    assert_same_sequences("alternating, one block", &feed, &alternating(0));
    assert_same_bytes("alternating, one block", &feed, &alternating(0));
    assert_same_bytes("alternating, stream", &feed, &alternating(BLOCK));
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
        // A Flush right before Close, as zstd:chunked's last frame has: a
        // frame of less than a block then is a stream with an empty last
        // block, not a single segment.
        Feed {
            frames: vec![100_000, 250_000, 30_000],
            write: 50_000,
            flush: 100_000,
            ..Feed::default()
        },
    ] {
        assert_same_bytes("frames", &feed, &plain);
    }
    // Go encodes blocks on one goroutine (concurrency 1) or hands them and
    // their entropy tables to others: the same bytes.
    for concurrency in [1, 4] {
        let feed = Feed {
            frames: vec![5000, 3 * BLOCK + 7, 200_000],
            concurrency,
            ..Feed::default()
        };
        assert_same_bytes("frames", &feed, &plain);
    }
}

#[test]
fn the_window_edges_match_go() {
    // The default 8 MiB window: a copy of earlier random bytes at exactly
    // the window's distance (out of reach) and one byte nearer (in reach).
    // Zeros between them leave the hash tables' entries for the random
    // bytes in place (a run is a few long matches).
    const WINDOW: usize = 8 << 20;
    let random_part = random(1 << 20, 21);
    let mut plain = random_part.clone();
    plain.resize(WINDOW, 0);
    plain.extend_from_slice(&random_part[..4096]);
    let nearer = 600_000;
    plain.resize(WINDOW + nearer - 1, 0);
    plain.extend_from_slice(&random_part[nearer..nearer + 4096]);
    plain.extend(mixed(200_000, 24));
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

#[test]
fn randomized_frames_and_writes_match_go() {
    // Fixed-seed cases: mixed content, frame lengths from tiny to several
    // blocks, Write calls of random sizes or io.Copy, some Flushes.
    let mut state = 0x5eed_u64;
    let mut next = |bound: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % bound
    };
    for case in 0..4 {
        let plain = mixed(200_000 + next(400_000), 60 + case);
        let frames = (0..next(6))
            .map(|_| match next(3) {
                0 => next(64),
                1 => next(5000),
                _ => next(3 * BLOCK),
            })
            .collect();
        let write = [0, 1 + next(100), 1 + next(200_000)][next(3)];
        let flush = if next(3) == 0 { 1 + next(300_000) } else { 0 };
        let feed = Feed {
            frames,
            write,
            flush,
            ..Feed::default()
        };
        assert_same_bytes(&format!("case {case}"), &feed, &plain);
    }
}

#[test]
fn the_fastest_level_matches_go() {
    // zstd level 1 (`SpeedFastest`): its own matcher, 64 KiB blocks and a
    // 4 MiB window.
    let fastest = Feed {
        fastest: true,
        ..Feed::default()
    };
    let tar = binaries_tar(3 << 19, usize::MAX, |_| {});
    assert_same_sequences("tar, fastest", &fastest, &tar);
    assert_same_bytes("tar, fastest", &fastest, &tar);
    let frames = Feed {
        frames: vec![0, 9, 10, 1000, 65_535, 65_536, 65_537, 200_000],
        ..fastest.clone()
    };
    assert_same_bytes("frames, fastest", &frames, &mixed(600_000, 71));
    let window = Feed {
        window: 1 << 16,
        ..fastest.clone()
    };
    let mut plain = random(200_000, 72);
    plain.extend_from_within(..100_000);
    plain.extend(mixed(300_000, 73));
    assert_same_bytes("window edges, fastest", &window, &plain);
    for version in ZstdVersion::ALL {
        assert_same_bytes_as(
            version,
            "skewed, fastest",
            &fastest,
            &skewed(150_000, 16, 74),
        );
    }
}

#[test]
fn the_output_does_not_depend_on_the_offset_base() {
    // Go rebases its tables when `cur` nears 2^31 (after ~1.6 GB through
    // one encoder), keeping every entry still in reach; the bytes must not
    // depend on where `cur` stands. With a 64 KiB window the history moves
    // down (and `cur` up by ~1 MiB) every 15 blocks, so the frames cross
    // the rebase with history (mid-frame) and without (at a reset, and in
    // frames of one block, matched without history).
    let plain = mixed(2_500_000, 51);
    for level in [Level::Default, Level::Fastest] {
        let feed = Feed {
            frames: vec![1_300_000, 5000, 400_000, 70_000],
            window: 1 << 16,
            fastest: level == Level::Fastest,
            ..Feed::default()
        };
        let options = EncoderOptions::new(ZstdVersion::V1_15_12, level)
            .with_window_size(1 << 16)
            .unwrap();
        let run = |distance: Option<u32>| {
            let mut e = ZstdEncoder::new(Vec::new(), &options);
            if let Some(d) = distance {
                e.set_cur_below_reset(d);
            }
            let mut rest = &plain[..];
            for (i, n) in feed.frames.iter().chain([&usize::MAX]).enumerate() {
                let (frame, after) = rest.split_at((*n).min(rest.len()));
                rest = after;
                if i > 0 {
                    e.reset();
                }
                e.write_all(frame).unwrap();
                e.close().unwrap();
            }
            e.into_inner()
        };
        let fresh = run(None);
        assert_eq!(fresh, ours(&feed, &plain).0);
        for distance in [1, 100_000, 500_000, 2 << 20] {
            assert!(
                run(Some(distance)) == fresh,
                "{level:?}: {distance} below the rebase"
            );
        }
    }
}

/// Throughput on real binaries, in release mode:
/// `cargo test --release -p tender-delta klauspost_zstd::tests::speed -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn speed_on_real_binaries() {
    let tar = binaries_tar(48 << 20, usize::MAX, |_| {});
    for level in [Level::Default, Level::Fastest] {
        let options = EncoderOptions::new(ZstdVersion::V1_15_12, level);
        let start = std::time::Instant::now();
        let mut e = ZstdEncoder::new(Vec::with_capacity(tar.len()), &options);
        e.read_from(&mut &tar[..]).unwrap();
        e.close().unwrap();
        let out = e.into_inner();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{level:?}: {} bytes -> {} bytes in {secs:.3} s: {:.1} MB/s",
            tar.len(),
            out.len(),
            tar.len() as f64 / secs / 1e6
        );
    }
}
