//! Layer compressors as real images use them: GNU gzip, Go's
//! `compress/gzip` (through `scripts/gogzip`, built once per test run),
//! klauspost pgzip as containers/image and umoci use it (through
//! `scripts/pgzip`, likewise), klauspost/compress zstd as containers/image
//! writes zstd layers (through `scripts/kzstd`) and the zstd CLI. Delta tests need the exact encoders, not look-alikes:
//! rebuilding their bytes exactly is the point.

use std::io::Write;
use std::path::{Path, PathBuf};
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
    /// klauspost pgzip at its default level and 1 MiB blocks, as
    /// containers/image (podman, buildah, skopeo) writes gzip layers.
    Pgzip,
    /// `zstd -3` (the CLI default level).
    Zstd3,
    /// klauspost/compress zstd at `SpeedDefault` (zstd level 3), as
    /// containers/image writes `tar+zstd` layers.
    KlauspostZstd,
}

impl Compressor {
    pub const ALL_GZIP: [Compressor; 4] = [
        Compressor::GnuGzip6,
        Compressor::GoGzip1,
        Compressor::GoGzipDefault,
        Compressor::Pgzip,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Compressor::GnuGzip6 => "gnu-gzip-6",
            Compressor::GoGzip1 => "go-gzip-1",
            Compressor::GoGzipDefault => "go-gzip-default",
            Compressor::Pgzip => "pgzip",
            Compressor::Zstd3 => "zstd-3",
            Compressor::KlauspostZstd => "klauspost-zstd",
        }
    }

    pub fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Compressor::GnuGzip6 => pipe(Command::new("gzip").args(["-6", "-n", "-c"]), data),
            Compressor::GoGzip1 => go_gzip(data, 1, GoWrites::All),
            Compressor::GoGzipDefault => go_gzip(data, -1, GoWrites::All),
            Compressor::Pgzip => pgzip_with(&[], data),
            Compressor::Zstd3 => pipe(Command::new("zstd").args(["-3", "-q", "-c"]), data),
            Compressor::KlauspostZstd => kzstd_with(&[], data),
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

/// Compresses `data` with `scripts/pgzip` given `args`: `[level
/// [blocksize [name]]]` (see scripts/pgzip/main.go).
pub fn pgzip_with(args: &[&str], data: &[u8]) -> Vec<u8> {
    pipe(Command::new(pgzip()).args(args), data)
}

/// As [`pgzip_with`], over klauspost/compress 1.18.2's behaviour (see
/// [`pgzip_1_18_2`]).
pub fn pgzip_1_18_2_with(args: &[&str], data: &[u8]) -> Vec<u8> {
    pipe(Command::new(pgzip_1_18_2()).args(args), data)
}

/// Debian's klauspost sources (golang-github-klauspost-{pgzip,compress}-dev).
const GOCODE: &str = "/usr/share/gocode/src/github.com/klauspost";

/// Builds `scripts/pgzip` once, in GOPATH mode against the Debian packages
/// (klauspost/pgzip 1.2.5, klauspost/compress 1.15.12; see
/// scripts/install-deps.sh): the exact encoder tender's port models.
pub fn pgzip() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_pgzip("pgzip", "/usr/share/gocode".into()))
        .clone()
}

/// Builds `scripts/pgzip` once against Debian's sources with the one
/// change klauspost/compress 1.18.2 made to level 5's output (upstream
/// commit 444d5d9, "Fix invalid encoding on level 9 with single value
/// input": `writeBlockDynamic` indexes every table with exact sizes and an
/// end-of-block count). Go 1.19 cannot build 1.18.2 itself (it needs Go
/// 1.23); the rest of level 5's code path is unchanged through 1.19.1.
pub fn pgzip_1_18_2() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let gopath = repo_root().join("target/pgzip/gopath-1.18.2");
            let src = gopath.join("src/github.com/klauspost");
            for package in ["compress/flate", "pgzip"] {
                copy_go_package(package, &src.join(package));
            }
            let writer = src.join("compress/flate/huffman_bit_writer.go");
            let code = std::fs::read_to_string(&writer).expect("reading huffman_bit_writer.go");
            // The two hunks of 444d5d9 that reach level 5 (the parameter
            // keeps its old name; it now means alwaysEOB).
            let hunks = [
                (
                    "w.indexTokens(tokens, !sync)",
                    "w.indexTokens(tokens, true)",
                ),
                (
                    "\tif filled {\n\t\treturn maxNumLit, maxNumDist\n\t}",
                    "\tif filled {\n\t\tw.literalFreq[endBlockMarker] = 1\n\t}",
                ),
            ];
            let mut patched = code.clone();
            for (old, new) in hunks {
                assert_eq!(
                    patched.matches(old).count(),
                    1,
                    "huffman_bit_writer.go is not the 1.15.12 this patch expects"
                );
                patched = patched.replacen(old, new, 1);
            }
            std::fs::write(&writer, patched).expect("writing huffman_bit_writer.go");
            build_pgzip("pgzip-1.18.2", gopath.display().to_string())
        })
        .clone()
}

/// Compresses `data` with `scripts/kzstd` given `args` (`-level`,
/// `-frames`, `-write`, `-flush`, `-concurrency`: see scripts/kzstd/main.go).
pub fn kzstd_with(args: &[&str], data: &[u8]) -> Vec<u8> {
    pipe(Command::new(kzstd()).args(args), data)
}

/// As [`kzstd_with`], and what the matcher found: per block a line
/// `block <input bytes> lits <literals> extra <trailing literals> seqs <n>`
/// and then `<litLen> <matchLen - 3> <offset code>` per sequence, as Go's
/// `blockEnc` holds them right after `Encode`/`EncodeNoHist` (the
/// `kzstd-dump` build: see [`kzstd_dump_build`]).
pub fn kzstd_dump(args: &[&str], data: &[u8]) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let dump = dir.path().join("sequences");
    let out = pipe(
        Command::new(kzstd_dump_build())
            .args(args)
            .env("KZSTD_SEQ_DUMP", &dump),
        data,
    );
    let text = std::fs::read_to_string(&dump).unwrap_or_default();
    (out, text)
}

/// Builds `scripts/kzstd` once, in GOPATH mode against Debian's
/// klauspost/compress 1.15.12 (golang-github-klauspost-compress-dev).
pub fn kzstd() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_go("kzstd", "kzstd", "/usr/share/gocode".into()))
        .clone()
}

/// Builds `scripts/kzstd` once against a copy of Debian's zstd package
/// that writes each block's sequences to the file `KZSTD_SEQ_DUMP` names
/// right after the matcher ran (the output is unchanged).
pub fn kzstd_dump_build() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let gopath = repo_root().join("target/kzstd/gopath-dump");
            // The whole module: zstd imports its internal packages, which
            // GOPATH mode only allows from the same tree.
            let klauspost = gopath.join("src/github.com/klauspost");
            copy_zstd_packages(&klauspost);
            let dir = klauspost.join("compress/zstd");
            let encoder = dir.join("encoder.go");
            let code = std::fs::read_to_string(&encoder).expect("reading encoder.go");
            let mut patched = code.clone();
            for call in [
                "enc.Encode(blk, src)",
                "enc.EncodeNoHist(blk, src)",
                "enc.Encode(blk, todo)",
            ] {
                assert!(
                    patched.contains(call),
                    "encoder.go is not the 1.15.12 this patch expects"
                );
                patched = patched.replace(call, &format!("{call}; dumpSeqs(blk)"));
            }
            std::fs::write(&encoder, patched).expect("writing encoder.go");
            std::fs::write(dir.join("dump_tender.go"), DUMP_GO).expect("writing dump_tender.go");
            build_go(
                "kzstd",
                "kzstd-dump",
                format!("{}:/usr/share/gocode", gopath.display()),
            )
        })
        .clone()
}

/// The klauspost/compress releases whose `SpeedDefault` output differs
/// from 1.15.12's (Debian's), each modelled by patching Debian's sources
/// with the upstream hunks that change the bytes (cumulative):
/// - `1.16.4` (#792, #798): every block goes through the entropy stage
///   (no "all literals, so incompressible" shortcut), a block must save
///   1/64 of its size (was 1/32) to keep its sequences, a block coded
///   larger than its input is stored raw inside `encode`, and
///   `SpeedDefault` no longer Huffman-codes blocks without matches
///   (`allLitEntropy` only above `SpeedDefault`);
/// - `1.17.0` (#853): 17 to 32 literals are Huffman-coded too, unless
///   that is not smaller than raw;
/// - `1.17.8` (#938): a block that is one run of one byte is an RLE block;
/// - `1.18.5` (#1134): no input still makes a frame (`WithZeroFrames` on
///   by default).
pub const KZSTD_VERSIONS: [&str; 4] = ["1.16.4", "1.17.0", "1.17.8", "1.18.5"];

/// As [`kzstd_with`], as klauspost/compress `version` (one of
/// [`KZSTD_VERSIONS`]) writes it.
pub fn kzstd_as(version: &str, args: &[&str], data: &[u8]) -> Vec<u8> {
    pipe(Command::new(kzstd_version(version)).args(args), data)
}

/// Builds `scripts/kzstd` against Debian's sources patched to `version`'s
/// behaviour (see [`KZSTD_VERSIONS`]), once per version.
pub fn kzstd_version(version: &str) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(version) {
        return path.clone();
    }
    let upto = KZSTD_VERSIONS
        .iter()
        .position(|v| *v == version)
        .unwrap_or_else(|| panic!("klauspost/compress {version} is not modelled"));
    let gopath = repo_root().join(format!("target/kzstd/gopath-{version}"));
    let klauspost = gopath.join("src/github.com/klauspost");
    copy_zstd_packages(&klauspost);
    for (release, file, old, new) in KZSTD_HUNKS {
        let index = KZSTD_VERSIONS.iter().position(|v| v == release).unwrap();
        if index > upto {
            continue;
        }
        let path = klauspost.join("compress/zstd").join(file);
        let code = std::fs::read_to_string(&path).expect("reading the zstd sources");
        let count = code.matches(old).count();
        assert!(
            count >= 1,
            "zstd/{file} is not the 1.15.12 the {release} patch expects"
        );
        std::fs::write(&path, code.replace(old, new)).expect("writing the zstd sources");
    }
    let path = build_go(
        "kzstd",
        &format!("kzstd-{version}"),
        format!("{}:/usr/share/gocode", gopath.display()),
    );
    built.insert(version.to_string(), path.clone());
    path
}

/// The upstream changes to `SpeedDefault`'s output after 1.15.12, as
/// (release, file, old, new); each `old` is replaced wherever it occurs.
const KZSTD_HUNKS: &[(&str, &str, &str, &str)] = &[
    // 1.16.4 (dc198c1, 47eb6d4).
    (
        "1.16.4",
        "blockenc.go",
        "saved := b.size - len(b.literals) - (b.size >> 5)",
        "saved := b.size - len(b.literals) - (b.size >> 6)",
    ),
    (
        "1.16.4",
        "blockenc.go",
        "\t\tb.litEnc.Reuse = huff0.ReusePolicyNone\n\t\treturn errIncompressible\n",
        "\t\tb.output = b.encodeRawTo(b.output[:bhOffset], org)\n\t\tb.popOffsets()\n\t\tb.litEnc.Reuse = huff0.ReusePolicyNone\n\t\treturn nil\n",
    ),
    (
        "1.16.4",
        "encoder.go",
        "if len(src) != len(blk.literals) || len(src) != e.o.blockSize {",
        "if true {",
    ),
    (
        "1.16.4",
        "encoder.go",
        "if len(blk.literals) != len(src) || len(src) != e.o.blockSize {",
        "if true {",
    ),
    (
        "1.16.4",
        "encoder.go",
        "if len(blk.literals) != len(todo) || len(todo) != e.o.blockSize {",
        "if true {",
    ),
    (
        "1.16.4",
        "encoder_options.go",
        "o.allLitEntropy = l > SpeedFastest",
        "o.allLitEntropy = l > SpeedDefault",
    ),
    // 1.17.0 (11e91a1).
    (
        "1.17.0",
        "blockenc.go",
        "\t} else if len(lits) > 32 {\n\t\t// Use 1 stream\n\t\tsingle = true\n\t\tout, reUsed, err = huff0.Compress1X(lits, b.litEnc)\n\t} else {\n\t\terr = huff0.ErrIncompressible\n\t}\n",
        "\t} else if len(lits) > 16 {\n\t\t// Use 1 stream\n\t\tsingle = true\n\t\tout, reUsed, err = huff0.Compress1X(lits, b.litEnc)\n\t} else {\n\t\terr = huff0.ErrIncompressible\n\t}\n\tif err == nil && len(out)+5 > len(lits) {\n\t\tvar lh literalsHeader\n\t\tlh.setSizes(len(out), len(lits), single)\n\t\tif len(out)+lh.size() >= len(lits) {\n\t\t\terr = huff0.ErrIncompressible\n\t\t}\n\t}\n",
    ),
    (
        "1.17.0",
        "blockenc.go",
        "\t} else if len(b.literals) > 32 && !raw {\n\t\t// Use 1 stream\n\t\tsingle = true\n\t\tout, reUsed, err = huff0.Compress1X(b.literals, b.litEnc)\n\t} else {\n\t\terr = huff0.ErrIncompressible\n\t}\n",
        "\t} else if len(b.literals) > 16 && !raw {\n\t\t// Use 1 stream\n\t\tsingle = true\n\t\tout, reUsed, err = huff0.Compress1X(b.literals, b.litEnc)\n\t} else {\n\t\terr = huff0.ErrIncompressible\n\t}\n\tif err == nil && len(out)+5 > len(b.literals) {\n\t\tvar lh literalsHeader\n\t\tlh.setSize(len(b.literals))\n\t\tszRaw := lh.size()\n\t\tlh.setSizes(len(out), len(b.literals), single)\n\t\tszComp := lh.size()\n\t\tif len(out)+szComp >= len(b.literals)+szRaw {\n\t\t\terr = huff0.ErrIncompressible\n\t\t}\n\t}\n",
    ),
    // 1.17.8 (de4073a).
    (
        "1.17.8",
        "blockenc.go",
        "\t\treturn b.encodeLits(b.literals, rawAllLits)\n\t}\n\t// We want some",
        "\t\treturn b.encodeLits(b.literals, rawAllLits)\n\t}\n\tif len(b.sequences) == 1 && len(org) > 0 && len(b.literals) <= 1 {\n\t\tseq := b.sequences[0]\n\t\tif seq.litLen == uint32(len(b.literals)) && seq.offset-3 == 1 {\n\t\t\tvar bh blockHeader\n\t\t\tbh.setLast(b.last)\n\t\t\tbh.setSize(b.sequences[0].matchLen + zstdMinMatch + seq.litLen)\n\t\t\tbh.setType(blockTypeRLE)\n\t\t\tb.output = bh.appendTo(b.output)\n\t\t\tb.output = append(b.output, org[0])\n\t\t\treturn nil\n\t\t}\n\t}\n\t// We want some",
    ),
    // 1.18.5 (fd3f23e).
    (
        "1.18.5",
        "encoder_options.go",
        "\t\tlowMem:        false,\n\t}\n",
        "\t\tlowMem:        false,\n\t\tfullZero:      true,\n\t}\n",
    ),
];

const DUMP_GO: &str = r#"package zstd

import (
	"bytes"
	"fmt"
	"os"
)

var dumpFile *os.File

func init() {
	if p := os.Getenv("KZSTD_SEQ_DUMP"); p != "" {
		var err error
		if dumpFile, err = os.Create(p); err != nil {
			panic(err)
		}
	}
}

func dumpSeqs(blk *blockEnc) {
	if dumpFile == nil {
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "block %d lits %d extra %d seqs %d\n", blk.size, len(blk.literals), blk.extraLits, len(blk.sequences))
	for _, s := range blk.sequences {
		fmt.Fprintf(&b, "%d %d %d\n", s.litLen, s.matchLen, s.offset)
	}
	if _, err := dumpFile.Write(b.Bytes()); err != nil {
		panic(err)
	}
}
"#;

/// Copies Debian's zstd package and what it imports from its module to
/// `klauspost` (a GOPATH's `src/github.com/klauspost`): Go refuses internal
/// packages from another GOPATH entry, so a patched zstd needs them beside
/// it.
pub(crate) fn copy_zstd_packages(klauspost: &Path) {
    for package in [
        "compress",
        "compress/internal/cpuinfo",
        "compress/internal/snapref",
        "compress/fse",
        "compress/huff0",
        "compress/zstd",
    ] {
        copy_go_package(package, &klauspost.join(package));
    }
}

/// Copies the Go package `package` of Debian's klauspost sources (e.g.
/// `compress/flate`; its `.go` and `.s` files, tests left out) to `dir`,
/// for a private GOPATH where a test harness changes or extends it.
pub(crate) fn copy_go_package(package: &str, dir: &Path) {
    std::fs::create_dir_all(dir).expect("creating the GOPATH copy");
    for entry in std::fs::read_dir(format!("{GOCODE}/{package}"))
        .unwrap_or_else(|e| panic!("{GOCODE}/{package}: {e}; run scripts/install-deps.sh"))
    {
        let path = entry.expect("listing Go sources").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if (name.ends_with(".go") || name.ends_with(".s")) && !name.ends_with("_test.go") {
            std::fs::copy(&path, dir.join(&name)).expect("copying Go sources");
        }
    }
}

fn build_pgzip(name: &str, gopath: String) -> PathBuf {
    build_go("pgzip", name, gopath)
}

/// Builds `scripts/<script>` as `target/<script>/<name>` in GOPATH mode.
pub(crate) fn build_go(script: &str, name: &str, gopath: String) -> PathBuf {
    let root = repo_root();
    let out = root.join("target").join(script).join(name);
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(root.join("scripts").join(script))
        .env("GOCACHE", root.join("target").join(script).join("cache"))
        .env("GOPATH", gopath)
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run go ({e}); run scripts/install-deps.sh to install golang-go")
        });
    assert!(
        status.success(),
        "go build scripts/{script} failed (are golang-github-klauspost-pgzip-dev and \
         golang-github-klauspost-compress-dev installed? scripts/install-deps.sh)"
    );
    out
}

pub(crate) fn pipe(command: &mut Command, data: &[u8]) -> Vec<u8> {
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

/// Builds `scripts/kzstd-best` once: klauspost/compress 1.15.12's zstd
/// package (a private GOPATH copy of Debian's, with
/// `scripts/kzstd-best/export/export_best.go` added to reach the internal
/// SpeedBestCompression matcher) and a main that dumps the matcher's
/// sequences, literals and recent offsets per block, and computes
/// `compress.ShannonEntropyBits`. See scripts/kzstd-best/main.go.
pub fn kzstd_best() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = repo_root();
            let gopath = root.join("target/kzstd-best/gopath");
            let klauspost = gopath.join("src/github.com/klauspost");
            copy_zstd_packages(&klauspost);
            std::fs::copy(
                root.join("scripts/kzstd-best/export/export_best.go"),
                klauspost.join("compress/zstd/export_best.go"),
            )
            .expect("copying export_best.go");
            build_go(
                "kzstd-best",
                "kzstd-best",
                format!("{}:/usr/share/gocode", gopath.display()),
            )
        })
        .clone()
}

/// Runs `kzstd-best` with `args` over `data` (see [`kzstd_best`]).
pub fn kzstd_best_with(args: &[&str], data: &[u8]) -> Vec<u8> {
    pipe(Command::new(kzstd_best()).args(args), data)
}
