//! The port against the real encoder: `scripts/kzstd`, built from the
//! Debian sources of klauspost/compress 1.15.12, fed as containers/image
//! feeds it (`io.Copy`, so `ReadFrom`), and its sequence dumps.

use std::io::Read;

use tender_test_support::{kzstd_dump, kzstd_with};

use super::encoder::{EncoderOptions, ZstdEncoder};
use crate::test_inputs::{binaries_tar, mixed};

/// How the input reaches both encoders.
#[derive(Clone, Default)]
struct Feed {
    /// Lengths of the frames before the last (Close + Reset after each).
    frames: Vec<usize>,
    /// `Write` calls of this many bytes (0: `io.Copy` / `ReadFrom`).
    write: usize,
    /// `Flush` after every this many bytes (0: never).
    flush: usize,
    /// `WithWindowSize` (0: the default).
    window: u32,
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
fn ours(feed: &Feed, plain: &[u8]) -> (Vec<u8>, String) {
    let mut options = EncoderOptions::default();
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
fn assert_same_sequences(what: &str, feed: &Feed, plain: &[u8]) {
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

fn random(n: usize, seed: u64) -> Vec<u8> {
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
