//! The patch container (bundle-spec §8.3): its header, then `apply` on the
//! whole fuzzed patch against a small fixed source blob, as an importer
//! rebuilds a layer. The rebuilt bytes go nowhere (the digest check is
//! apply's own); the memory limit is small so a hostile header cannot
//! make the fuzzer itself run out of memory.
#![no_main]

use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tender_delta::{ApplyLimits, PatchHeader, apply};
use tender_format::Digest;

fn source() -> &'static PathBuf {
    static SOURCE: OnceLock<PathBuf> = OnceLock::new();
    SOURCE.get_or_init(|| tender_fuzz::scratch_file("source", &tender_fuzz::patch_source()))
}

fuzz_target!(
    init: tender_fuzz::seeds::write_if_asked("patch_container"),
    |data: &[u8]| {
    let header = PatchHeader::read(&mut &data[..]);
    if let Ok((header, len)) = &header {
        assert_eq!(
            header.encode(),
            data[..*len],
            "accepted a patch header that is not its own encoding"
        );
        let _ = header.window_bytes();
    }
    let target = match header {
        Ok((header, _)) => header.target.digest,
        Err(_) => Digest::of(b""),
    };
    let patch = tender_fuzz::scratch_file("patch", data);
    let limits = ApplyLimits { window: 64 << 20 };
    if let Ok((digest, _)) = apply(&patch, target, source(), &mut io::sink(), limits) {
        assert_eq!(digest, target, "apply returned bytes of another digest");
    }
});
