//! The diff section as several frames (bundle spec §8.3 `frames`): the
//! target's plain text in pieces, each one zstd frame whose reference
//! prefix is the slice of the source's plain text where that piece's
//! content was before.
//!
//! Why: zstd's match finders index only the last 2^(chainLog − 1) bytes
//! before the byte they encode. With the whole source as one prefix, the
//! old version of a 24 MB binary sits beyond their reach, and only
//! long-distance matching (runs of 64 bytes and more) finds it; machine
//! code changes every few dozen bytes, so most of the match is lost. A
//! frame per 4 MiB of target against the 8 MiB of source around the same
//! content keeps every match in reach, and the repeated offsets into the
//! old file cost almost nothing: on the bench's ruff binary the diff is a
//! quarter smaller, in less time and memory (§8.4).
//!
//! Where the content was: a tar's files are found by path in the source's
//! tar, so an inserted or removed file moves the reference with it;
//! without a matching file the last file's shift is kept, and without any
//! (not a tar) a piece is compared with the same offset in the source.

use std::io::{self, BufRead, Read, Write};
use std::sync::{Mutex, mpsc};

use serde::{Deserialize, Serialize};
use zstd::stream::raw::{CParameter, DParameter, Decoder, Encoder};
use zstd::stream::zio;
use zstd::zstd_safe::{self, CCtx, ResetDirective};

/// One frame of a segmented diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffFrame {
    /// Bytes of target plain text this frame decodes to.
    pub plain: u64,
    /// Where its reference prefix starts in the source's plain text.
    pub source_offset: u64,
    /// Bytes of reference prefix.
    pub source_size: u64,
}

/// How a target is cut into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameShape {
    /// Bytes of target plain text per frame (the last one may be shorter).
    pub target: u64,
    /// Bytes of source before and after the piece's place in the source.
    pub slack: u64,
}

impl FrameShape {
    /// 4 MiB pieces against 8 MiB of source: the whole frame (12 MiB)
    /// stays within level 19's binary tree with 2^24 entries. Measured on
    /// the bench scenario: 1 MiB pieces lose 4 %, 8 MiB ones gain < 1 %.
    pub const DEFAULT: FrameShape = FrameShape {
        target: 4 << 20,
        slack: 2 << 20,
    };

    /// Whether a target is worth cutting: not when it and its source fit
    /// one frame's span, where one frame against all of it reaches every
    /// match already.
    pub fn cuts(&self, source_size: u64, target_size: u64) -> bool {
        let span = self.target.saturating_add(self.slack.saturating_mul(2));
        self.target > 0 && source_size.saturating_add(target_size) > span
    }
}

/// A regular file in a tar: path and where its data starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarFile {
    pub path: Vec<u8>,
    pub data_offset: u64,
    pub size: u64,
}

/// The files of a tar stream, or `None` if it is not a tar.
pub fn tar_files(input: impl Read) -> Option<Vec<TarFile>> {
    let mut archive = tar::Archive::new(input);
    let mut files = Vec::new();
    for entry in archive.entries().ok()? {
        let entry = entry.ok()?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        files.push(TarFile {
            path: normalized(&entry.path_bytes()).to_vec(),
            data_offset: entry.raw_file_position(),
            size: entry.size(),
        });
    }
    Some(files)
}

/// `./usr/bin/x`, `/usr/bin/x` and `usr/bin/x` are one file.
fn normalized(path: &[u8]) -> &[u8] {
    let mut path = path;
    loop {
        if let Some(rest) = path.strip_prefix(b"./") {
            path = rest;
        } else if let Some(rest) = path.strip_prefix(b"/") {
            path = rest;
        } else {
            return path;
        }
    }
}

/// The frames for a target of `target_size` bytes against `source_size`
/// bytes of source (`shape.target` must not be 0).
pub fn plan(
    source_files: Option<&[TarFile]>,
    target_files: Option<&[TarFile]>,
    source_size: u64,
    target_size: u64,
    shape: FrameShape,
) -> Vec<DiffFrame> {
    let anchors = anchors(source_files.unwrap_or(&[]), target_files.unwrap_or(&[]));
    let mut frames = Vec::new();
    let mut start = 0u64;
    while start < target_size {
        let plain = shape.target.min(target_size - start);
        // Where this piece's content sat in the source: the same file's
        // offset, else the last file's shift, else the same offset.
        let shift = match anchors.partition_point(|a| a.target <= start) {
            0 => 0,
            i => anchors[i - 1].source as i128 - anchors[i - 1].target as i128,
        };
        let place = start as i128 + shift;
        let from = (place - shape.slack as i128).clamp(0, source_size as i128) as u64;
        let to = (place + plain as i128 + shape.slack as i128).clamp(0, source_size as i128) as u64;
        frames.push(DiffFrame {
            plain,
            source_offset: from,
            source_size: to - from,
        });
        start += plain;
    }
    frames
}

/// A target file's data offset and the same file's in the source.
struct Anchor {
    target: u64,
    source: u64,
}

fn anchors(source: &[TarFile], target: &[TarFile]) -> Vec<Anchor> {
    let by_path: std::collections::HashMap<&[u8], u64> = source
        .iter()
        .map(|f| (f.path.as_slice(), f.data_offset))
        .collect();
    let mut anchors: Vec<Anchor> = target
        .iter()
        .filter_map(|f| {
            by_path.get(f.path.as_slice()).map(|&source| Anchor {
                target: f.data_offset,
                source,
            })
        })
        .collect();
    anchors.sort_by_key(|a| a.target);
    anchors
}

/// The zstd window that lets every byte of a frame's target reach back
/// to the start of its reference: the smallest power of two (2^20 at
/// least) covering `span`, their sizes together.
pub fn window_log(span: u64) -> u32 {
    let bits = 64 - span.max(1).saturating_sub(1).leading_zeros();
    bits.clamp(20, 31)
}

/// The window log a header states for these frames: the largest any
/// frame needs.
pub fn frames_window_log(frames: &[DiffFrame]) -> u32 {
    frames
        .iter()
        .map(|f| window_log(f.source_size.saturating_add(f.plain)))
        .max()
        .unwrap_or(20)
}

/// Checks frames read from a header against the sizes it states.
pub fn check(
    frames: &[DiffFrame],
    source_plain_size: u64,
    target_plain_size: u64,
    max_log: u32,
) -> Result<(), String> {
    if frames.is_empty() {
        return Err("frames is empty".into());
    }
    let mut total = 0u64;
    for (i, frame) in frames.iter().enumerate() {
        if frame.plain == 0 {
            return Err(format!("frame {i} decodes to no bytes"));
        }
        if frame
            .source_offset
            .checked_add(frame.source_size)
            .is_none_or(|end| end > source_plain_size)
        {
            return Err(format!(
                "frame {i} refers to source bytes past its {source_plain_size}"
            ));
        }
        if window_log(frame.source_size.saturating_add(frame.plain)) > max_log {
            return Err(format!("frame {i} needs a window over 2^{max_log}"));
        }
        total = total.saturating_add(frame.plain);
    }
    if total != target_plain_size {
        return Err(format!(
            "frames decode to {total} bytes, the target's plain text is {target_plain_size}"
        ));
    }
    Ok(())
}

/// Memory one frame encoder holds: level 19's tables with a 2^24 binary
/// tree and 2^20 hash heads (68 MiB), its optimal parser's buffers, and a
/// piece of target in and its frame out.
pub const FRAME_ENCODER_MEMORY: u64 = 80 << 20;

/// How the diff is encoded: the level plus `search`, and how many frames
/// are encoded at once (each in its own thread, with its own tables).
pub struct FrameEncoding<'p> {
    pub level: i32,
    pub search: &'p [CParameter],
    pub threads: usize,
}

/// Writes the diff of `plain` (`target_size` bytes) against `reference`:
/// one frame against all of it when `frames` is `None`, else one per frame
/// against its slice.
pub fn write_diff(
    reference: &[u8],
    frames: Option<&[DiffFrame]>,
    window_log: u32,
    target_size: u64,
    encoding: &FrameEncoding,
    plain: &mut dyn Read,
    out: &mut dyn Write,
) -> io::Result<()> {
    match frames {
        Some(frames) => write_frames(reference, frames, encoding, plain, out),
        None => write_one_frame(reference, window_log, target_size, encoding, plain, out),
    }
}

/// One streamed frame against the whole reference, with long-distance
/// matching to reach what lies beyond the match finder's tables.
fn write_one_frame(
    reference: &[u8],
    window_log: u32,
    target_size: u64,
    encoding: &FrameEncoding,
    plain: &mut dyn Read,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut encoder = Encoder::with_ref_prefix(encoding.level, reference)?;
    for parameter in [
        CParameter::WindowLog(window_log),
        CParameter::EnableLongDistanceMatching(true),
        CParameter::ContentSizeFlag(true),
        CParameter::ChecksumFlag(false),
    ]
    .into_iter()
    .chain(encoding.search.iter().cloned())
    {
        encoder.set_parameter(parameter)?;
    }
    encoder.set_pledged_src_size(Some(target_size))?;
    let mut writer = zio::Writer::new(out, encoder);
    let copied = io::copy(plain, &mut writer)?;
    if copied != target_size {
        return Err(ended_early());
    }
    writer.finish()?;
    Ok(())
}

fn ended_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the target's plain text ended early",
    )
}

/// Frames encoded `encoding.threads` at a time and written in order. This
/// thread reads the pieces and writes the frames; a piece waits in a
/// channel of one, so at most 2 × threads + 2 pieces are held at once.
fn write_frames(
    reference: &[u8],
    frames: &[DiffFrame],
    encoding: &FrameEncoding,
    plain: &mut dyn Read,
    out: &mut dyn Write,
) -> io::Result<()> {
    let (pieces, pieces_in) = mpsc::sync_channel::<(usize, Vec<u8>)>(1);
    let pieces_in = Mutex::new(pieces_in);
    let (done, encoded) = mpsc::channel::<(usize, io::Result<Vec<u8>>)>();
    std::thread::scope(|scope| {
        for _ in 0..encoding.threads.max(1) {
            let (pieces_in, done) = (&pieces_in, done.clone());
            scope.spawn(move || {
                let mut cctx = CCtx::create();
                loop {
                    // The lock is held only while waiting for a piece.
                    let next = pieces_in
                        .lock()
                        .map_err(|_| ())
                        .and_then(|r| r.recv().map_err(|_| ()));
                    let Ok((i, piece)) = next else { break };
                    let frame = encode_frame(&mut cctx, reference, &frames[i], &piece, encoding);
                    if done.send((i, frame)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        let mut writer = InOrder::new(out);
        let mut outcome = Ok(());
        for (i, frame) in frames.iter().enumerate() {
            let mut piece = vec![0u8; usize::try_from(frame.plain).unwrap_or(usize::MAX)];
            if let Err(e) = plain.read_exact(&mut piece) {
                outcome = Err(match e.kind() {
                    io::ErrorKind::UnexpectedEof => ended_early(),
                    _ => e,
                });
                break;
            }
            if pieces.send((i, piece)).is_err() {
                break;
            }
            if let Err(e) = writer.take_ready(&encoded) {
                outcome = Err(e);
                break;
            }
        }
        drop(pieces);
        // The rest, in order, once the workers finish (after an error they
        // stop at the closed channel and what they made is dropped).
        for (i, frame) in encoded.iter() {
            if outcome.is_ok() {
                outcome = writer.put(i, frame);
            }
        }
        outcome?;
        if writer.next != frames.len() {
            return Err(io::Error::other(
                "a frame encoder stopped without its frame",
            ));
        }
        Ok(())
    })
}

/// Encodes one frame: `piece` against its slice of `reference`.
fn encode_frame<'r>(
    cctx: &mut CCtx<'r>,
    reference: &'r [u8],
    frame: &DiffFrame,
    piece: &[u8],
    encoding: &FrameEncoding,
) -> io::Result<Vec<u8>> {
    let zstd = |code: usize| io::Error::other(zstd_safe::get_error_name(code));
    cctx.reset(ResetDirective::SessionOnly).map_err(zstd)?;
    for parameter in [
        CParameter::CompressionLevel(encoding.level),
        CParameter::WindowLog(window_log(frame.source_size + frame.plain)),
        // Within a frame's span the binary tree sees every byte.
        CParameter::EnableLongDistanceMatching(false),
        CParameter::ContentSizeFlag(true),
        CParameter::ChecksumFlag(false),
    ]
    .into_iter()
    .chain(encoding.search.iter().cloned())
    {
        cctx.set_parameter(parameter).map_err(zstd)?;
    }
    cctx.ref_prefix(slice(reference, frame)).map_err(zstd)?;
    let mut out = Vec::with_capacity(zstd_safe::compress_bound(piece.len()));
    cctx.compress2(&mut out, piece).map_err(zstd)?;
    Ok(out)
}

/// Writes frames in their order as they come back from the encoders.
struct InOrder<'w> {
    out: &'w mut dyn Write,
    next: usize,
    waiting: std::collections::BTreeMap<usize, Vec<u8>>,
}

impl<'w> InOrder<'w> {
    fn new(out: &'w mut dyn Write) -> Self {
        InOrder {
            out,
            next: 0,
            waiting: Default::default(),
        }
    }

    fn put(&mut self, i: usize, frame: io::Result<Vec<u8>>) -> io::Result<()> {
        self.waiting.insert(i, frame?);
        while let Some(frame) = self.waiting.remove(&self.next) {
            self.out.write_all(&frame)?;
            self.next += 1;
        }
        Ok(())
    }

    fn take_ready(
        &mut self,
        encoded: &mpsc::Receiver<(usize, io::Result<Vec<u8>>)>,
    ) -> io::Result<()> {
        while let Ok((i, frame)) = encoded.try_recv() {
            self.put(i, frame)?;
        }
        Ok(())
    }
}

fn slice<'r>(reference: &'r [u8], frame: &DiffFrame) -> &'r [u8] {
    let start = usize::try_from(frame.source_offset).unwrap_or(usize::MAX);
    let end = usize::try_from(frame.source_offset + frame.source_size).unwrap_or(usize::MAX);
    &reference[start.min(reference.len())..end.min(reference.len())]
}

/// Reads the target's plain text out of a diff section, frame by frame.
/// Each frame must decode to exactly its stated size and end there.
pub struct DiffReader<'r, R: BufRead> {
    reference: &'r [u8],
    frames: Vec<DiffFrame>,
    next: usize,
    window_log: u32,
    /// The frame being read and the bytes it still owes.
    current: Option<(zio::Reader<R, Decoder<'r>>, u64)>,
    /// The input between frames.
    idle: Option<R>,
}

impl<'r, R: BufRead> DiffReader<'r, R> {
    /// `frames` as the header states them (checked with [`check`]), or
    /// one frame of `target_size` against the whole reference.
    pub fn new(
        reference: &'r [u8],
        frames: Option<&[DiffFrame]>,
        window_log: u32,
        target_size: u64,
        input: R,
    ) -> Self {
        let frames = match frames {
            Some(frames) => frames.to_vec(),
            None => vec![DiffFrame {
                plain: target_size,
                source_offset: 0,
                source_size: reference.len() as u64,
            }],
        };
        DiffReader {
            reference,
            frames,
            next: 0,
            window_log,
            current: None,
            idle: Some(input),
        }
    }

    fn start_next(&mut self) -> io::Result<bool> {
        let Some(frame) = self.frames.get(self.next).copied() else {
            return Ok(false);
        };
        self.next += 1;
        let input = self.idle.take().expect("input is idle between frames");
        let mut decoder = Decoder::with_ref_prefix(slice(self.reference, &frame))?;
        decoder.set_parameter(DParameter::WindowLogMax(self.window_log))?;
        let mut reader = zio::Reader::new(input, decoder);
        reader.set_single_frame();
        self.current = Some((reader, frame.plain));
        Ok(true)
    }

    /// Ends the current frame: it must end exactly where it said.
    fn finish_current(&mut self) -> io::Result<()> {
        let (mut reader, _) = self.current.take().expect("a frame is open");
        let mut probe = [0u8; 1];
        if reader.read(&mut probe)? != 0 {
            return Err(invalid(format!(
                "diff frame {} holds more plain text than the header says",
                self.next - 1
            )));
        }
        self.idle = Some(reader.into_inner());
        Ok(())
    }
}

impl<R: BufRead> DiffReader<'_, R> {
    /// After the last frame the diff section must end.
    fn check_nothing_follows(&mut self) -> io::Result<()> {
        let input = self
            .idle
            .as_mut()
            .expect("input is idle after the last frame");
        if !input.fill_buf()?.is_empty() {
            return Err(invalid(
                "the diff section holds bytes after its last frame".into(),
            ));
        }
        Ok(())
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl<R: BufRead> Read for DiffReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.current {
                None => {
                    if !self.start_next()? {
                        return self.check_nothing_follows().map(|()| 0);
                    }
                }
                Some((_, 0)) => self.finish_current()?,
                Some((reader, left)) => {
                    let max = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = reader.read(&mut buf[..max])?;
                    if n == 0 {
                        return Err(invalid(format!(
                            "diff frame {} ends {left} bytes short of its size",
                            self.next - 1
                        )));
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_inputs::mixed;

    const SMALL: FrameShape = FrameShape {
        target: 64 << 10,
        slack: 32 << 10,
    };

    fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// Writes the diff of `target` against `source` in `frames` and reads
    /// it back.
    fn round_trip(source: &[u8], target: &[u8], frames: Option<&[DiffFrame]>) -> Vec<u8> {
        let log = match frames {
            Some(frames) => frames_window_log(frames),
            None => window_log((source.len() + target.len()) as u64),
        };
        let diff = encode(source, target, frames, log, &LEVEL_3);
        let mut out = Vec::new();
        DiffReader::new(source, frames, log, target.len() as u64, &diff[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    const LEVEL_3: FrameEncoding = FrameEncoding {
        level: 3,
        search: &[],
        threads: 2,
    };

    fn encode(
        source: &[u8],
        target: &[u8],
        frames: Option<&[DiffFrame]>,
        log: u32,
        encoding: &FrameEncoding,
    ) -> Vec<u8> {
        let mut diff = Vec::new();
        write_diff(
            source,
            frames,
            log,
            target.len() as u64,
            encoding,
            &mut &target[..],
            &mut diff,
        )
        .unwrap();
        diff
    }

    #[test]
    fn an_inserted_file_moves_the_reference_with_the_files_after_it() {
        let big = mixed(300_000, 1);
        let inserted = mixed(200_000, 2);
        let source = tar(&[("./usr/bin/app", &big)]);
        let target = tar(&[("usr/share/new", &inserted), ("usr/bin/app", &big)]);
        let source_files = tar_files(&source[..]).unwrap();
        let target_files = tar_files(&target[..]).unwrap();
        let frames = plan(
            Some(&source_files),
            Some(&target_files),
            source.len() as u64,
            target.len() as u64,
            SMALL,
        );
        let app_in_target = target_files[1].data_offset;
        let app_in_source = source_files[0].data_offset;
        // A frame starting inside the app's data refers to the same bytes
        // of the source's app, within the slack.
        let mut start = 0;
        let mut checked = 0;
        for frame in &frames {
            if start >= app_in_target {
                let place = start - app_in_target + app_in_source;
                assert_eq!(frame.source_offset, place.saturating_sub(SMALL.slack));
                checked += 1;
            }
            start += frame.plain;
        }
        assert!(checked >= 3, "{frames:?}");
        assert_eq!(start, target.len() as u64);
        assert_eq!(round_trip(&source, &target, Some(&frames)), target);
    }

    #[test]
    fn frames_find_what_one_frame_cannot_reach() {
        // Machine code between releases: runs too short for long-distance
        // matching, and the old version a whole file back, beyond a binary
        // tree of 2^16 entries. Framed, every piece has its old version
        // within the tree's reach.
        let mut x = 0x2545_f491_u32;
        let old: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        // Every 40th byte changed, and a byte inserted every 1,000, so
        // the offset of the old copy keeps moving (as code does when a
        // function grows) and must be found again each time.
        let mut new = Vec::new();
        for (i, chunk) in old.chunks(1_000).enumerate() {
            let start = new.len();
            new.extend_from_slice(chunk);
            for b in new[start..].iter_mut().step_by(40) {
                *b ^= 0xff;
            }
            new.push(i as u8);
        }
        let source = tar(&[("lib/big.so", &old)]);
        let target = tar(&[("lib/big.so", &new)]);
        let shape = FrameShape {
            target: 16 << 10,
            slack: 8 << 10,
        };
        let frames = plan(
            tar_files(&source[..]).as_deref(),
            tar_files(&target[..]).as_deref(),
            source.len() as u64,
            target.len() as u64,
            shape,
        );
        let narrow = FrameEncoding {
            level: 19,
            search: &[CParameter::ChainLog(16), CParameter::HashLog(16)],
            threads: 2,
        };
        let framed = encode(
            &source,
            &target,
            Some(&frames),
            frames_window_log(&frames),
            &narrow,
        );
        let whole_log = window_log((source.len() + target.len()) as u64);
        let whole = encode(&source, &target, None, whole_log, &narrow);
        assert!(
            framed.len() * 2 < whole.len(),
            "framed {} bytes, one frame {}",
            framed.len(),
            whole.len()
        );
        assert_eq!(round_trip(&source, &target, Some(&frames)), target);
    }

    #[test]
    fn without_a_tar_pieces_refer_to_the_same_offset() {
        let frames = plan(None, None, 1 << 20, 300 << 10, SMALL);
        assert_eq!(frames.len(), 5);
        assert_eq!(frames[2].source_offset, (128 - 32) << 10);
        assert_eq!(frames[2].source_size, 128 << 10);
        assert_eq!(frames[4].plain, (300 - 256) << 10);
        assert!(!SMALL.cuts(64 << 10, 64 << 10));
        assert!(SMALL.cuts(100 << 10, 64 << 10));
    }

    #[test]
    fn frames_that_do_not_add_up_are_refused() {
        let ok = [
            DiffFrame {
                plain: 10,
                source_offset: 0,
                source_size: 20,
            },
            DiffFrame {
                plain: 5,
                source_offset: 10,
                source_size: 20,
            },
        ];
        assert_eq!(check(&ok, 30, 15, 20), Ok(()));
        let refused = |frames: &[DiffFrame], source, target, log| {
            check(frames, source, target, log).unwrap_err()
        };
        assert!(refused(&ok, 30, 16, 20).contains("decode to 15 bytes"));
        assert!(refused(&ok, 29, 15, 20).contains("past its 29"));
        assert!(refused(&[], 30, 0, 20).contains("empty"));
        let zero = [DiffFrame { plain: 0, ..ok[0] }];
        assert!(refused(&zero, 30, 0, 20).contains("no bytes"));
        let past_the_end = [DiffFrame {
            source_offset: u64::MAX,
            ..ok[0]
        }];
        assert!(refused(&past_the_end, 30, 10, 20).contains("past"));
        let wide = [DiffFrame {
            plain: 3 << 20,
            ..ok[0]
        }];
        assert!(refused(&wide, 30, 3 << 20, 21).contains("window"));
    }

    #[test]
    fn a_frame_decoding_to_another_size_than_stated_is_refused() {
        let source = mixed(100_000, 4);
        let target = mixed(100_000, 5);
        let stated = [
            DiffFrame {
                plain: 60_000,
                source_offset: 0,
                source_size: 100_000,
            },
            DiffFrame {
                plain: 40_000,
                source_offset: 0,
                source_size: 100_000,
            },
        ];
        let diff = encode(&source, &target, Some(&stated), 20, &LEVEL_3);
        let read = |frames: &[DiffFrame], diff: &[u8]| {
            let mut out = Vec::new();
            DiffReader::new(&source, Some(frames), 20, 100_000, diff)
                .read_to_end(&mut out)
                .map(|_| out)
        };
        assert_eq!(read(&stated, &diff).unwrap(), target);
        let shorter = [
            DiffFrame {
                plain: 50_000,
                ..stated[0]
            },
            DiffFrame {
                plain: 50_000,
                ..stated[1]
            },
        ];
        let err = read(&shorter, &diff).unwrap_err();
        assert!(err.to_string().contains("more plain text"), "{err}");
        let longer = [
            DiffFrame {
                plain: 70_000,
                ..stated[0]
            },
            DiffFrame {
                plain: 30_000,
                ..stated[1]
            },
        ];
        let err = read(&longer, &diff).unwrap_err();
        assert!(err.to_string().contains("short of its size"), "{err}");
        let mut trailing = diff.clone();
        trailing.extend_from_slice(&diff[..100]);
        let err = read(&stated, &trailing).unwrap_err();
        assert!(err.to_string().contains("after its last frame"), "{err}");
    }

    #[test]
    fn frames_encoded_side_by_side_are_the_frames_encoded_one_by_one() {
        let source = mixed(600_000, 6);
        let mut target = source.clone();
        target[300_000..300_100].fill(7);
        let frames = plan(None, None, 600_000, 600_000, SMALL);
        let with = |threads| {
            let encoding = FrameEncoding {
                level: 3,
                search: &[],
                threads,
            };
            encode(&source, &target, Some(&frames), 20, &encoding)
        };
        let one = with(1);
        assert_eq!(with(2), one);
        assert_eq!(with(5), one);
        assert_eq!(round_trip(&source, &target, Some(&frames)), target);
    }

    #[test]
    fn a_target_ending_early_is_an_error_not_a_hang() {
        let source = mixed(600_000, 7);
        let frames = plan(None, None, 600_000, 600_000, SMALL);
        let mut diff = Vec::new();
        let err = write_diff(
            &source,
            Some(&frames),
            20,
            600_000,
            &LEVEL_3,
            &mut &source[..400_000],
            &mut diff,
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    }
}
