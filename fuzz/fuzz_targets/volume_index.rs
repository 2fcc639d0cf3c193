//! The volume index (bundle-spec §12), `NAME.tender.volumes.json`, which
//! comes off the stick with the volumes and is not signed. The fuzzed
//! index sits next to a real split of the `valid-minimal` vector and is
//! then used every way tender uses one: the size check, the full check,
//! the bundle read over the volumes, and the joining stream.
#![no_main]

use std::io;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tender_format::reader::discard;
use tender_format::volumes::{self, VolumeSet};

fn split_once() {
    static SPLIT: OnceLock<()> = OnceLock::new();
    SPLIT.get_or_init(|| {
        volumes::split(
            &tender_fuzz::volume_bundle(),
            tender_fuzz::scratch(),
            tender_fuzz::VOLUME_BASE,
            tender_fuzz::VOLUME_SIZE,
        )
        .expect("splitting the valid-minimal vector");
    });
}

fuzz_target!(
    init: tender_fuzz::seeds::write_if_asked("volume_index"),
    |data: &[u8]| {
    split_once();
    let index = tender_fuzz::scratch_file("input.tender.volumes.json", data);
    let Ok(set) = VolumeSet::open(&index) else {
        return;
    };
    let _ = set.check_sizes();
    let _ = set.check();
    if let Ok(bundle) = set.open_bundle() {
        let _ = bundle.read_entries(&discard, &mut |_| {});
    }
    let _ = io::copy(&mut set.reader(), &mut io::sink());
});
