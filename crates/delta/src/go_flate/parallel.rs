//! Levels 4 to 9 on several threads, byte for byte what one thread writes.
//!
//! Almost all the time of these levels goes into walking hash chains. At
//! levels 4 to 9 Go hashes every position whatever it decides, so the
//! chains at any position depend on the input alone, and a search at
//! position `p` finds the same match whoever runs it, given the last 32 KiB
//! before `p` hashed and the window slid where Go slides it (a window base
//! that is a multiple of 32 KiB keeps Go's slide points). What depends on
//! the past is only the parse state at each step: the pending match and
//! whether a byte waits for its token.
//!
//! So the input is cut into pieces. A worker searches each piece on its
//! own, from a guessed state, and records every match it finds and its
//! parse state near both ends of the piece. The worker before it, exact by
//! induction, runs a little into the piece; the first position where both
//! stand in the same state joins them: from there the later worker's
//! searches are Go's. (A long periodic run, such as zeros, can keep the
//! two parses out of step; then the exact worker simply carries on through
//! the piece.) One thread then replays Go's loop with the searches' outcomes
//! given, writing tokens and blocks exactly as Go would: no hashing, no
//! searching.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::thread;

use super::lazy::{Lazy, Role, WINDOW_SIZE};

/// How the work is cut.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pieces {
    /// Bytes per piece, a multiple of the 32 KiB window.
    pub(super) size: u64,
    /// Bytes past a piece's start in which its worker and the one before
    /// try to meet.
    pub(super) zone: u64,
    /// Workers at once.
    pub(super) threads: usize,
}

impl Pieces {
    /// One worker per core but one, which replays (at most 4): on two
    /// cores the search overhead (priming, overrun, replay; 15-30 % more
    /// CPU) ate the gain when anything else ran, so they encode on one.
    pub(super) fn for_this_machine() -> Pieces {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let threads = if cores >= 3 { (cores - 1).min(4) } else { 1 };
        Pieces {
            size: 2 << 20,
            zone: 16 << 10,
            threads,
        }
    }

    fn start(&self, piece: u64) -> u64 {
        piece * self.size
    }

    /// Input a worker is given past its piece: the meeting zone, and a
    /// window more, so that Go's full-window steps reach the zone's end.
    fn tail(&self) -> u64 {
        self.zone + 2 * WINDOW_SIZE as u64 + 1024
    }
}

/// A loop step's parse state: the pending match and the waiting byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct State(u32);

impl State {
    pub(super) fn new(length: i64, offset: i64, byte_available: bool) -> Self {
        State(length as u32 | (offset as u32) << 9 | u32::from(byte_available) << 25)
    }
}

/// A search's outcome: a match at `at`, counted from its list's origin
/// (8 bytes: a worker finds up to one match per byte of its piece).
#[derive(Debug, Clone, Copy)]
struct Found {
    at: u32,
    length: u16,
    offset: u16,
}

/// Matches found, in input order.
#[derive(Default)]
pub(super) struct Matches {
    /// Position in the whole input that `Found::at` counts from.
    origin: u64,
    list: VecDeque<Found>,
}

impl Matches {
    fn push(&mut self, at: u64, length: i64, offset: i64) {
        if self.list.is_empty() {
            self.origin = at;
        } else if at - self.origin > u64::from(u32::MAX / 2) {
            self.rebase();
        }
        let at = u32::try_from(at - self.origin).expect("matches span less than 4 GiB");
        self.list.push_back(Found {
            at,
            length: length as u16,
            offset: offset as u16,
        });
    }

    /// Counts from the first match again.
    fn rebase(&mut self) {
        if let Some(shift) = self.list.front().map(|f| f.at) {
            self.origin += u64::from(shift);
            self.list.iter_mut().for_each(|f| f.at -= shift);
        }
    }

    fn front_at(&self) -> Option<u64> {
        self.list.front().map(|f| self.origin + u64::from(f.at))
    }

    /// Moves the matches before `at` to the end of `to` (or drops them).
    fn move_before(&mut self, at: u64, mut to: Option<&mut Matches>) {
        while let Some(first) = self.front_at().filter(|&first| first < at) {
            let f = self.list.pop_front().expect("a first match");
            if let Some(to) = to.as_deref_mut() {
                to.push(first, i64::from(f.length), i64::from(f.offset));
            }
        }
        self.rebase();
    }
}

/// What a worker saw.
pub(super) struct Record {
    /// Matches found from `from` on; `until` ends the end zone.
    from: u64,
    until: u64,
    zone: u64,
    found: Matches,
    /// Parse states at loop steps in `from..from + zone`.
    start_states: Vec<(u64, State)>,
    /// Parse states at loop steps in `until - zone..until`.
    end_states: Vec<(u64, State)>,
}

impl Record {
    fn new(from: u64, until: u64, zone: u64) -> Self {
        Record {
            from,
            until,
            zone,
            found: Matches::default(),
            start_states: Vec::new(),
            end_states: Vec::new(),
        }
    }

    pub(super) fn state(&mut self, at: u64, state: State) {
        if at >= self.from && at < self.from + self.zone {
            self.start_states.push((at, state));
        }
        if at < self.until && at >= self.until.saturating_sub(self.zone) {
            self.end_states.push((at, state));
        }
    }

    pub(super) fn found(&mut self, at: u64, length: i64, offset: i64) {
        // Past `until` too: an exact worker that carries on must not lose
        // what it found on the way there.
        if at >= self.from {
            self.found.push(at, length, offset);
        }
    }
}

/// The searches' outcomes, in input order, for the replaying thread.
#[derive(Default)]
pub(super) struct Oracle {
    found: Matches,
}

impl Oracle {
    /// Where the next match was found.
    pub(super) fn next_at(&self) -> Option<u64> {
        self.found.front_at()
    }

    /// The match found at the loop step at `at`, if any.
    pub(super) fn found(&mut self, at: u64) -> Option<(i64, i64)> {
        let first = self.found.front_at()?;
        debug_assert!(first >= at, "a recorded search was skipped");
        (first == at).then(|| {
            let f = self.found.list.pop_front().expect("a first match");
            (i64::from(f.length), i64::from(f.offset))
        })
    }
}

fn record(lz: &mut Lazy) -> &mut Record {
    match lz.role_mut() {
        Role::Search(r) => r,
        _ => unreachable!("workers search"),
    }
}

fn oracle(lz: &mut Lazy) -> &mut Oracle {
    match lz.role_mut() {
        Role::Replay(o) => o,
        _ => unreachable!("the writer replays"),
    }
}

/// The first loop step at which both parses stand at the same place in
/// the same state.
fn meeting(a: &[(u64, State)], b: &[(u64, State)]) -> Option<u64> {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal if a[i].1 == b[j].1 => return Some(a[i].0),
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    None
}

/// Searches one piece: `input` starts 32 KiB before the piece (for its
/// history) at `base`, and is the rest of the whole input if `last`.
fn search_piece(level: u8, p: Pieces, piece: u64, base: u64, input: &[u8], last: bool) -> Lazy {
    let from = p.start(piece);
    let until = if last {
        u64::MAX
    } else {
        p.start(piece + 1) + p.zone
    };
    let record = Record::new(from, until, p.zone);
    let mut lz = Lazy::with_role(level, base, Role::Search(Box::new(record)));
    let n = lz.fill_only(&input[..input.len().min(2 * WINDOW_SIZE as usize)]);
    lz.prime((from - base) as i64);
    lz.write_more(&input[n..]);
    if last {
        lz.finish();
    }
    lz
}

/// The input read so far that some step still needs.
struct Input<'a> {
    reader: &'a mut dyn Read,
    bytes: Vec<u8>,
    /// Position in the whole input of `bytes[0]`.
    start: u64,
    eof: bool,
    crc: u32,
    size: u32,
}

impl Input<'_> {
    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// Reads until the input reaches `to` or ends.
    fn fill_to(&mut self, to: u64) -> io::Result<()> {
        while !self.eof && self.end() < to {
            let want = (to - self.end()).min(1 << 20) as usize;
            let old = self.bytes.len();
            self.bytes.resize(old + want, 0);
            let n = super::read_full(self.reader, &mut self.bytes[old..])?;
            self.bytes.truncate(old + n);
            self.crc = super::crc32_update(self.crc, &self.bytes[old..]);
            self.size = self.size.wrapping_add(n as u32);
            self.eof = n < want;
        }
        Ok(())
    }

    fn range(&self, from: u64, to: u64) -> &[u8] {
        let to = to.min(self.end());
        &self.bytes[(from - self.start) as usize..(to - self.start) as usize]
    }

    /// Forgets everything before `at`.
    fn forget_before(&mut self, at: u64) {
        let n = (at - self.start) as usize;
        self.bytes.drain(..n);
        self.start = at;
    }
}

/// Encodes all of `plain` at `level` (4 to 9) as one `Write`, writing the
/// DEFLATE blocks to `out`. Returns the writer, still to be closed, and the
/// input's CRC-32 and size; or, when the input is too short to be worth
/// cutting, all of it for the one-thread encoder.
pub(super) fn deflate(
    level: u8,
    plain: &mut dyn Read,
    out: &mut dyn Write,
    p: Pieces,
) -> io::Result<Result<(Lazy, u32, u32), Vec<u8>>> {
    debug_assert!(Lazy::hashes_every_position(level));
    // A piece holds its worker's overrun, so that an exact worker carrying
    // on has not yet passed the next zone.
    debug_assert!(p.size.is_multiple_of(WINDOW_SIZE as u64) && p.size >= p.tail());
    let mut input = Input {
        reader: plain,
        bytes: Vec::new(),
        start: 0,
        eof: false,
        crc: 0,
        size: 0,
    };
    input.fill_to(p.start(1) + p.tail() + 1)?;
    if input.eof {
        return Ok(Err(input.bytes));
    }

    let mut writer = Lazy::with_role(level, 0, Role::Replay(Box::default()));
    let mut written = 0u64;
    // The worker whose parse is Go's, up to where the next one joins it.
    let mut exact: Option<Lazy> = None;
    thread::scope(|scope| -> io::Result<()> {
        let mut running = VecDeque::new();
        let mut next_piece = 0u64;
        let mut all_spawned = false;
        loop {
            // Keep the workers busy with the next pieces.
            while !all_spawned && running.len() < p.threads.max(1) {
                let piece = next_piece;
                next_piece += 1;
                let end = p.start(piece + 1) + p.tail();
                input.fill_to(end + 1)?;
                let last = input.eof;
                all_spawned = last;
                let base = p.start(piece).saturating_sub(WINDOW_SIZE as u64);
                let bytes = input.range(base, end.min(input.end())).to_vec();
                let worker = move || search_piece(level, p, piece, base, &bytes, last);
                running.push_back((piece, last, scope.spawn(worker)));
            }
            let Some((piece, last, handle)) = running.pop_front() else {
                return Ok(());
            };
            let mut worker = handle.join().expect("a search worker panicked");
            let mut carrier = match exact.take() {
                None => worker,
                Some(mut before) => {
                    let meet = meeting(
                        &record(&mut before).end_states,
                        &record(&mut worker).start_states,
                    );
                    if let Some(at) = meet {
                        let to = &mut oracle(&mut writer).found;
                        record(&mut before).found.move_before(at, Some(to));
                        record(&mut worker).found.move_before(at, None);
                        worker
                    } else {
                        // Out of step through the whole zone (a periodic
                        // run): the exact worker carries on through this
                        // piece instead.
                        carry_on(before, &input, p, piece, last)
                    }
                }
            };
            // Every search before this piece is settled: write up to it.
            let settled_to = if last { u64::MAX } else { p.start(piece) };
            let to = &mut oracle(&mut writer).found;
            record(&mut carrier).found.move_before(settled_to, Some(to));
            to.rebase();
            exact = Some(carrier);
            let to = settled_to.min(input.end());
            writer.write_more(input.range(written, to));
            written = to;
            writer.drain_to(out)?;
            input.forget_before(written);
        }
    })?;
    Ok(Ok((writer, input.crc, input.size)))
}

/// The exact worker `before`, carried on through `piece` in place of the
/// worker that never met its parse, and ready to hand over to the next
/// piece's (or finished, if `piece` is the `last`).
fn carry_on(mut before: Lazy, input: &Input, p: Pieces, piece: u64, last: bool) -> Lazy {
    let end = if last {
        u64::MAX
    } else {
        p.start(piece + 1) + p.tail()
    };
    let r = record(&mut before);
    r.until = if last {
        u64::MAX
    } else {
        p.start(piece + 1) + p.zone
    };
    r.end_states.clear();
    let from = before.filled_to();
    before.write_more(input.range(from, end));
    if last {
        before.finish();
    }
    before
}
