//! The port against the real encoder: `scripts/pgzip`, built from the
//! Debian sources of klauspost/pgzip 1.2.5 and klauspost/compress 1.15.12.

use std::io::{self, Read};

use tender_test_support::{Compressor, pgzip_1_18_2_with, pgzip_with};

use super::FlateVersion;
use super::pgzip::{self, DEFAULT_BLOCK_SIZE, TAIL_SIZE};

use crate::test_inputs::mixed as sample;

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

fn ours(block_size: usize, plain: &[u8]) -> Vec<u8> {
    ours_as(FlateVersion::V1_15_12, block_size, plain)
}

fn ours_as(version: FlateVersion, block_size: usize, plain: &[u8]) -> Vec<u8> {
    ours_at(5, version, block_size, plain)
}

fn ours_at(level: u8, version: FlateVersion, block_size: usize, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    pgzip::compress(level, version, block_size, &mut &plain[..], &mut out).unwrap();
    out
}

/// Asserts the port writes exactly what Go (klauspost/compress 1.15.12)
/// writes.
#[track_caller]
fn assert_same(what: &str, block_size: usize, plain: &[u8]) {
    let go = if block_size == DEFAULT_BLOCK_SIZE {
        Compressor::Pgzip.compress(plain)
    } else {
        pgzip_with(&["-1", &block_size.to_string()], plain)
    };
    compare(what, block_size, plain, &go, &ours(block_size, plain));
}

/// Asserts the port writes exactly what Go with klauspost/compress
/// 1.18.2's behaviour writes.
#[track_caller]
fn assert_same_1_18_2(what: &str, block_size: usize, plain: &[u8]) {
    let go = pgzip_1_18_2_with(&["-1", &block_size.to_string()], plain);
    let rust = ours_as(FlateVersion::V1_18_2, block_size, plain);
    compare(what, block_size, plain, &go, &rust);
}

/// Names the first differing byte (a whole-vector diff of megabytes is
/// unreadable).
#[track_caller]
fn compare(what: &str, block_size: usize, plain: &[u8], go: &[u8], rust: &[u8]) {
    if go != rust {
        let at = go.iter().zip(rust).position(|(a, b)| a != b);
        panic!(
            "{what} ({} bytes, blocks of {block_size}): Go wrote {} bytes, the port {}; first difference at {at:?}",
            plain.len(),
            go.len(),
            rust.len()
        );
    }
}

#[test]
fn tiny_inputs_and_window_edges_match_go() {
    // Stored (<= 32 bytes), Huffman-only (< 128) and matcher paths, and the
    // edges of the 65535-byte windows.
    for n in [
        0, 1, 12, 13, 16, 32, 33, 100, 127, 128, 129, 1000, 65534, 65535, 65536, 70000,
    ] {
        assert_same(&format!("sample({n})"), DEFAULT_BLOCK_SIZE, &sample(n, 1));
    }
}

#[test]
fn block_edges_match_go() {
    // Around one and two 1 MiB blocks: an exact multiple ends with an
    // empty closed block; 16 KiB tails are the next block's dictionary.
    let mib = DEFAULT_BLOCK_SIZE;
    for n in [mib - 1, mib, mib + 1, mib + TAIL_SIZE + 7] {
        assert_same(&format!("sample({n})"), mib, &sample(n, 2));
    }
}

#[test]
fn small_blocks_exercise_many_dictionaries() {
    // Blocks just above the tail size: every block starts from the
    // previous one's tail, many times in little data.
    let plain = sample(600_000, 3);
    for block in [TAIL_SIZE + 1, 20_000, 65_535, 65_536, 131_071, 256 << 10] {
        assert_same("sample(600000)", block, &plain);
    }
}

#[test]
fn content_kinds_match_go() {
    let mib = DEFAULT_BLOCK_SIZE;
    // Incompressible: stored blocks.
    assert_same("random", mib, &random(mib + 5000, 7));
    // Highly repetitive: long matches split at 258, table reuse.
    assert_same("zeros", mib, &vec![0u8; 2 * mib + 3]);
    let repeat: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz0123456789"
        .iter()
        .copied()
        .cycle()
        .take(mib + 99)
        .collect();
    assert_same("repeating text", mib, &repeat);
    // Mostly random with a little text: Huffman-only windows.
    let mut skewed = random(300_000, 9);
    for (i, b) in skewed.iter_mut().enumerate() {
        if i % 3 == 0 {
            *b &= 0x0f;
        }
    }
    assert_same("skewed", mib, &skewed);
}

#[test]
fn the_previous_tail_is_the_dictionary() {
    // Block 2 starts with what block 1 ended with: only the dictionary
    // lets it match, and the port must find the same matches.
    let block = 40_000;
    let mut plain = random(block, 11);
    let tail = plain[block - TAIL_SIZE..].to_vec();
    plain.extend_from_slice(&tail);
    plain.extend_from_slice(&random(5000, 12));
    let with_dict = ours(block, &plain);
    let mut without = random(block, 13);
    without.extend_from_slice(&plain[block..]);
    assert!(
        with_dict.len() + TAIL_SIZE / 2 < ours(block, &without).len(),
        "the dictionary made no difference"
    );
    assert_same("tail repeated", block, &plain);
}

/// A tar of real files (this machine's /usr/bin, up to `limit` bytes).
fn real_tar(limit: usize) -> Vec<u8> {
    crate::test_inputs::binaries_tar(limit, usize::MAX, |_| {})
}

#[test]
fn a_tar_of_real_binaries_matches_go() {
    let tar = real_tar(3 << 20);
    assert!(tar.len() > 2 << 20, "too little in /usr/bin");
    assert_same("tar of /usr/bin", DEFAULT_BLOCK_SIZE, &tar);
}

#[test]
fn the_1_18_2_behaviour_matches_its_reference() {
    let tar = real_tar(2 << 20);
    let mixed = sample(DEFAULT_BLOCK_SIZE + 70_000, 21);
    for (what, plain) in [("tar of /usr/bin", &tar), ("sample", &mixed)] {
        assert_same_1_18_2(what, DEFAULT_BLOCK_SIZE, plain);
    }
    // Real binaries reuse tables across windows, where the two behaviours
    // part: the version matters.
    assert!(
        ours_as(FlateVersion::V1_15_12, DEFAULT_BLOCK_SIZE, &tar)
            != ours_as(FlateVersion::V1_18_2, DEFAULT_BLOCK_SIZE, &tar)
    );
    for n in [0, 33, 128, 65535, 65536, 200_000] {
        assert_same_1_18_2(&format!("sample({n})"), 50_000, &sample(n, 22));
    }
    assert_same_1_18_2("zeros", 100_000, &vec![0u8; 300_000]);
}

#[test]
fn best_speed_matches_go() {
    let tar = real_tar(2 << 20);
    let cases: [(&str, Vec<u8>, usize); 6] = [
        ("tar of /usr/bin", tar, DEFAULT_BLOCK_SIZE),
        ("sample", sample(700_000, 31), 100_000),
        ("zeros", vec![0u8; 300_000], 65_535),
        ("random", random(150_000, 32), 65_536),
        ("tiny", sample(100, 33), DEFAULT_BLOCK_SIZE),
        ("empty", Vec::new(), DEFAULT_BLOCK_SIZE),
    ];
    for (what, plain, block_size) in cases {
        let bs = block_size.to_string();
        for (version, go) in [
            (FlateVersion::V1_15_12, pgzip_with(&["1", &bs], &plain)),
            (
                FlateVersion::V1_18_2,
                pgzip_1_18_2_with(&["1", &bs], &plain),
            ),
        ] {
            let rust = ours_at(1, version, block_size, &plain);
            compare(what, block_size, &plain, &go, &rust);
        }
    }
}

#[test]
fn the_output_does_not_depend_on_the_offset_base() {
    // Go's pooled writers carry `cur` from block to block until it nears
    // 2^31 and is rebased; the bytes must not depend on where it stands.
    // The history moves down (and `cur` up by ~290 KiB) every few windows
    // of a long block, so these distances cross the rebase with history
    // present, mid-block, and with none, at a reset.
    use super::deflate::Deflater;
    let plain = real_tar(1 << 20);
    assert!(plain.len() > 900_000);
    let run = |level: u8, distance: Option<u32>| {
        let mut d = Deflater::new(level, FlateVersion::V1_15_12).unwrap();
        if let Some(distance) = distance {
            d.set_cur_below_reset(distance);
        }
        let mut out = Vec::new();
        for block in plain.chunks(600_000) {
            d.reset_dict(&[]);
            d.write(block);
            d.flush();
            out.extend_from_slice(&d.w.sink.out);
            d.w.sink.out.clear();
        }
        out
    };
    for level in [1, 5] {
        let fresh = run(level, None);
        for distance in [1, 200_000, 400_000, 700_000] {
            assert!(
                run(level, Some(distance)) == fresh,
                "level {level}, {distance} below the rebase"
            );
        }
    }
}

/// A reader that hands out a few bytes at a time.
struct Dribble<'a>(&'a [u8], usize);

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 = self.1 % 4093 + 1;
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn short_reads_do_not_change_output() {
    let plain = sample(300_000, 5);
    let mut out = Vec::new();
    pgzip::compress(
        5,
        FlateVersion::V1_15_12,
        50_000,
        &mut Dribble(&plain, 0),
        &mut out,
    )
    .unwrap();
    assert_eq!(out, ours(50_000, &plain));
}

#[test]
fn a_block_size_at_or_below_the_tail_is_refused() {
    let err = pgzip::deflate(
        5,
        FlateVersion::V1_15_12,
        TAIL_SIZE,
        &mut &b""[..],
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}
