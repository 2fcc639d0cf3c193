//! `scripts/kzstd-parts`: klauspost/compress's entropy coders (huff0, fse
//! and zstd's internal FSE encoder), the reference for the byte-exact port
//! in tender-delta. zstd's encoder tables are internal to its package, so
//! the harness is built against a private GOPATH copy of Debian's
//! klauspost/compress packages it needs, with the exported wrappers of
//! `scripts/kzstd-parts/export` added to zstd and huff0 (cespare/xxhash
//! comes from /usr/share/gocode).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::compress::{build_go, copy_zstd_packages, pipe};
use crate::tools::repo_root;

/// Runs `scripts/kzstd-parts` on a JSON request (see its main.go) and
/// returns its JSON answer.
pub fn kzstd_parts_run(request: &[u8]) -> Vec<u8> {
    pipe(&mut Command::new(kzstd_parts()), request)
}

/// Builds `scripts/kzstd-parts` once (needs `go` and
/// golang-github-klauspost-compress-dev, from scripts/install-deps.sh).
pub fn kzstd_parts() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = repo_root();
            let work = root.join("target/kzstd-parts");
            let gopath = work.join("gopath");
            let klauspost = gopath.join("src/github.com/klauspost");
            copy_zstd_packages(&klauspost);
            for package in ["zstd", "huff0"] {
                std::fs::copy(
                    root.join("scripts/kzstd-parts/export")
                        .join(package)
                        .join("tender_export.go"),
                    klauspost
                        .join("compress")
                        .join(package)
                        .join("tender_export.go"),
                )
                .expect("copying the harness's export file");
            }
            build_go(
                "kzstd-parts",
                "kzstd-parts",
                format!("{}:/usr/share/gocode", gopath.display()),
            )
        })
        .clone()
}
