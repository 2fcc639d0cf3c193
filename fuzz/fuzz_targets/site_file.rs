//! The site file (docs/site.md, YAML), which `tender import` and `serve`
//! read first.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tender_import::Site;

fuzz_target!(
    init: tender_fuzz::seeds::write_if_asked("site_file"),
    |data: &[u8]| {
    let path = tender_fuzz::scratch_file("site/site.yaml", data);
    if let Ok(site) = Site::load(&path) {
        assert!(!site.clusters.is_empty(), "accepted a site without clusters");
        let _ = site.store_dir();
        let _ = site.check_site_key();
    }
});
