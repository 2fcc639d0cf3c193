//! The strict bundle reader on hostile bytes, by both of its paths: a
//! bundle file (positional reads, one per hashing thread) and a pipe
//! (`tender verify -`, one front-to-back stream). Beyond not panicking,
//! both paths must come to the same verdict on the same bytes: a bundle
//! one path accepts and the other refuses is a reader bug.
#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use tender_format::reader::discard;
use tender_format::{BundleReader, Digest, ReadSummary};

/// What a full read of a bundle came to: its identity and its summary.
fn read_all<R: Read>(
    open: Result<BundleReader<R>, tender_format::Error>,
) -> Option<(Digest, usize, u64)> {
    let reader = open.ok()?;
    let id = reader.manifest_digest();
    let ReadSummary {
        entries,
        payload_bytes,
        ..
    } = reader.read_entries(&discard, &mut |_| {}).ok()?;
    Some((id, entries, payload_bytes))
}

fuzz_target!(
    init: tender_fuzz::seeds::write_if_asked("bundle_reader"),
    |data: &[u8]| {
    let file = tender_fuzz::scratch_file("bundle.tender", data);
    let from_file = read_all(BundleReader::open_file(&file));
    let pipe: Box<dyn Read + Send> = Box::new(Cursor::new(data.to_vec()));
    let from_pipe = read_all(BundleReader::open(pipe));
    assert_eq!(
        from_file, from_pipe,
        "the file and pipe paths disagree on the same bytes"
    );
});
