//! Layer compressors as real images use them: GNU gzip, Go's
//! `compress/gzip` (through `scripts/gogzip`, built once per test run) and
//! the zstd CLI. Delta tests need the exact encoders, not look-alikes:
//! rebuilding their bytes exactly is the point.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::tools::repo_root;

/// How a test layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    /// `gzip -6 -n`.
    GnuGzip6,
    /// Go `compress/gzip` at level 1 (gzip.BestSpeed).
    GoGzip1,
    /// Go `compress/gzip` at its default level (6), all input in one
    /// `Write` (see [`GoWrites`]).
    GoGzipDefault,
    /// `zstd -3` (the CLI default level).
    Zstd3,
}

impl Compressor {
    pub const ALL_GZIP: [Compressor; 3] = [
        Compressor::GnuGzip6,
        Compressor::GoGzip1,
        Compressor::GoGzipDefault,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Compressor::GnuGzip6 => "gnu-gzip-6",
            Compressor::GoGzip1 => "go-gzip-1",
            Compressor::GoGzipDefault => "go-gzip-default",
            Compressor::Zstd3 => "zstd-3",
        }
    }

    pub fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Compressor::GnuGzip6 => pipe(Command::new("gzip").args(["-6", "-n", "-c"]), data),
            Compressor::GoGzip1 => go_gzip(data, 1, GoWrites::All),
            Compressor::GoGzipDefault => go_gzip(data, -1, GoWrites::All),
            Compressor::Zstd3 => pipe(Command::new("zstd").args(["-3", "-q", "-c"]), data),
        }
    }
}

/// How the input reaches Go's `gzip.Writer.Write`. At levels 2 to 9 Go's
/// output can depend on where the calls end (rarely), so tests that compare
/// bytes name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoWrites {
    /// One call with the whole input.
    All,
    /// Calls of exactly this many bytes, the last one shorter.
    Size(usize),
}

/// Compresses `data` with Go's `compress/gzip` at `level` (-1 is
/// `gzip.DefaultCompression`), fed as `writes` says.
pub fn go_gzip(data: &[u8], level: i32, writes: GoWrites) -> Vec<u8> {
    let writes = match writes {
        GoWrites::All => "all".to_string(),
        GoWrites::Size(n) => n.to_string(),
    };
    pipe(
        Command::new(gogzip()).args([level.to_string(), writes]),
        data,
    )
}

/// Builds `scripts/gogzip` once (needs `go`, from scripts/install-deps.sh).
pub fn gogzip() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = repo_root();
            let out = root.join("target/gogzip/gogzip");
            let status = Command::new("go")
                .args(["build", "-o"])
                .arg(&out)
                .arg(".")
                .current_dir(root.join("scripts/gogzip"))
                .env("GOCACHE", root.join("target/gogzip/cache"))
                .env("GOPATH", root.join("target/gogzip/gopath"))
                .env("GOFLAGS", "-mod=mod")
                .env("GOTOOLCHAIN", "local")
                .status()
                .unwrap_or_else(|e| {
                    panic!("cannot run go ({e}); run scripts/install-deps.sh to install golang-go")
                });
            assert!(status.success(), "go build scripts/gogzip failed");
            out
        })
        .clone()
}

fn pipe(command: &mut Command, data: &[u8]) -> Vec<u8> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("compressor output");
    writer
        .join()
        .expect("writer thread")
        .expect("writing input");
    assert!(out.status.success(), "{command:?} failed");
    out.stdout
}
