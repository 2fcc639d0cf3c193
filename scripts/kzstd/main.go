// kzstd: compress stdin to stdout with github.com/klauspost/compress/zstd
// as containers/image (podman, buildah, skopeo --dest-compress-format zstd,
// zstd:chunked) writes zstd layers: zstd.NewWriter(out,
// zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level))) fed by io.Copy,
// which uses the Encoder's ReadFrom. Tests use it as the reference encoder
// that tender's klauspost_zstd port must match byte for byte.
//
//	kzstd [-level 3] [-frames n1,n2,...] [-write n] [-flush n] [-concurrency n] [-window n]
//
// -frames: the first n1 bytes make one frame (Close, then Reset for the
// next, as zstd:chunked does per file), the next n2 the next, and so on;
// the rest of the input is the last frame. -write n feeds the encoder with
// Write calls of n bytes instead of io.Copy, -flush n calls Flush after
// every n bytes written (both to show what does and does not change the
// output). -concurrency sets WithEncoderConcurrency (default: GOMAXPROCS,
// as containers/image leaves it), -window WithWindowSize (to reach the
// history's edges with little input).
// Built in GOPATH mode against Debian's golang-github-klauspost-compress-dev
// (see crates/test-support).
package main

import (
	"bufio"
	"flag"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

func fail(code int, msg string) {
	os.Stderr.WriteString(msg + "\n")
	os.Exit(code)
}

// onlyReader hides any WriterTo of the source, so io.Copy uses the
// Encoder's ReadFrom as it does in containers/image.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func main() {
	level := flag.Int("level", 3, "zstd level, mapped by zstd.EncoderLevelFromZstd")
	frames := flag.String("frames", "", "comma-separated frame lengths")
	write := flag.Int("write", 0, "feed with Write calls of this many bytes (0: io.Copy)")
	flush := flag.Int("flush", 0, "call Flush after every this many bytes (0: never)")
	concurrency := flag.Int("concurrency", 0, "WithEncoderConcurrency (0: default)")
	window := flag.Int("window", 0, "WithWindowSize (0: the level's default)")
	flag.Parse()

	opts := []zstd.EOption{zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(*level))}
	if *concurrency > 0 {
		opts = append(opts, zstd.WithEncoderConcurrency(*concurrency))
	}
	if *window > 0 {
		opts = append(opts, zstd.WithWindowSize(*window))
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	enc, err := zstd.NewWriter(out, opts...)
	if err != nil {
		fail(2, err.Error())
	}
	var lengths []int64
	if *frames != "" {
		for _, f := range strings.Split(*frames, ",") {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil || n < 0 {
				fail(2, "bad frame length "+f)
			}
			lengths = append(lengths, n)
		}
	}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	for i := 0; ; i++ {
		var src io.Reader = onlyReader{in}
		last := i >= len(lengths)
		if !last {
			src = io.LimitReader(in, lengths[i])
		}
		if err := feed(enc, src, *write, *flush); err != nil {
			fail(1, err.Error())
		}
		if err := enc.Close(); err != nil {
			fail(1, err.Error())
		}
		if last {
			break
		}
		enc.Reset(out)
	}
	if err := out.Flush(); err != nil {
		fail(1, err.Error())
	}
}

func feed(enc *zstd.Encoder, src io.Reader, write, flush int) error {
	if write == 0 && flush == 0 {
		_, err := io.Copy(enc, src)
		return err
	}
	piece := write
	if piece == 0 {
		piece = 1 << 16
	}
	buf := make([]byte, piece)
	sinceFlush := 0
	for {
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			if _, err := enc.Write(buf[:n]); err != nil {
				return err
			}
			sinceFlush += n
			if flush > 0 && sinceFlush >= flush {
				if err := enc.Flush(); err != nil {
					return err
				}
				sinceFlush = 0
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
