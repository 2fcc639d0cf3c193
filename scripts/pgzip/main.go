// pgzip: compress stdin to stdout with github.com/klauspost/pgzip, as
// containers/image (podman, buildah, skopeo --dest-compress) and umoci write
// gzip layers. Tests use it as the reference encoder that tender's
// klauspost port must match byte for byte.
//
//	pgzip [level [blocksize [name]]]
//
// level defaults to pgzip.DefaultCompression, blocksize to pgzip's 1 MiB;
// name, if given, is stored in the gzip header (to test header variants).
// Built in GOPATH mode against Debian's golang-github-klauspost-pgzip-dev
// and golang-github-klauspost-compress-dev (see crates/test-support).
package main

import (
	"bufio"
	"io"
	"os"
	"runtime"
	"strconv"

	"github.com/klauspost/pgzip"
)

func fail(code int, msg string) {
	os.Stderr.WriteString(msg + "\n")
	os.Exit(code)
}

func main() {
	level := pgzip.DefaultCompression
	blockSize := 1 << 20
	var err error
	if len(os.Args) > 1 {
		if level, err = strconv.Atoi(os.Args[1]); err != nil {
			fail(2, "usage: pgzip [level [blocksize [name]]]")
		}
	}
	if len(os.Args) > 2 {
		if blockSize, err = strconv.Atoi(os.Args[2]); err != nil {
			fail(2, "usage: pgzip [level [blocksize [name]]]")
		}
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	zw, err := pgzip.NewWriterLevel(out, level)
	if err != nil {
		fail(2, err.Error())
	}
	if len(os.Args) > 3 {
		zw.Name = os.Args[3]
	}
	if err := zw.SetConcurrency(blockSize, runtime.GOMAXPROCS(0)); err != nil {
		fail(2, err.Error())
	}
	if _, err := io.Copy(zw, bufio.NewReaderSize(os.Stdin, 1<<20)); err != nil {
		fail(1, err.Error())
	}
	if err := zw.Close(); err != nil {
		fail(1, err.Error())
	}
	if err := out.Flush(); err != nil {
		fail(1, err.Error())
	}
}
