// kzstd-best: what klauspost/compress/zstd's SpeedBestCompression matcher
// (enc_best.go) makes of blocks of stdin, before the entropy stage. Tests
// use it to check tender's port (crates/delta/src/klauspost_zstd/best.rs)
// sequence by sequence; whole frames are checked against scripts/kzstd.
//
//	kzstd-best seqs WINDOW hist|nohist FRAMES
//	kzstd-best entropy LENGTHS
//
// FRAMES is frames separated by "/", each a comma-separated list of block
// lengths. hist runs Encode over each frame's blocks (the Encoder's
// streaming path), nohist runs EncodeNoHist over single-block frames (the
// EncodeAll path); one matcher serves all frames, as an Encoder's does.
// The output is, per block, the dump of export/export_best.go.
// entropy writes compress.ShannonEntropyBits of consecutive chunks of
// stdin as little-endian u32s (the literal cost the matcher scores with).
//
// Built in GOPATH mode against a private copy of Debian's
// golang-github-klauspost-compress-dev (1.15.12) zstd package with
// export/export_best.go added (see crates/test-support/src/compress.rs).
package main

import (
	"bufio"
	"encoding/binary"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/klauspost/compress"
	"github.com/klauspost/compress/zstd"
)

const usage = "usage: kzstd-best seqs WINDOW hist|nohist FRAMES | entropy LENGTHS"

func fail(code int, msg string) {
	os.Stderr.WriteString(msg + "\n")
	os.Exit(code)
}

func lengths(list string) []int {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			fail(2, usage)
		}
		out = append(out, n)
	}
	return out
}

func main() {
	if len(os.Args) < 2 {
		fail(2, usage)
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(1, err.Error())
	}
	out := bufio.NewWriter(os.Stdout)
	take := func(n int) []byte {
		if n > len(in) {
			fail(2, "input shorter than the lengths")
		}
		b := in[:n]
		in = in[n:]
		return b
	}
	switch {
	case os.Args[1] == "seqs" && len(os.Args) == 5:
		window, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fail(2, usage)
		}
		noHist := os.Args[3] == "nohist"
		if !noHist && os.Args[3] != "hist" {
			fail(2, usage)
		}
		m := zstd.NewBestMatcher(window)
		for _, frame := range strings.Split(os.Args[4], "/") {
			if !noHist {
				m.Reset(false)
			}
			for _, n := range lengths(frame) {
				if noHist {
					m.Reset(true)
				}
				if err := m.Encode(take(n), noHist, out); err != nil {
					fail(1, err.Error())
				}
			}
		}
	case os.Args[1] == "entropy" && len(os.Args) == 3:
		for _, n := range lengths(os.Args[2]) {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], uint32(compress.ShannonEntropyBits(take(n))))
			out.Write(b[:])
		}
	default:
		fail(2, usage)
	}
	if err := out.Flush(); err != nil {
		fail(1, err.Error())
	}
}
