// gogzip: compress stdin to stdout with Go's compress/gzip at a level
// (default: gzip.DefaultCompression). Tests and the delta scenario use it to
// make layers exactly as Go-built images (Docker, BuildKit, ko, umoci,
// crane) compress them.
//
//	gogzip [level [write-size]]
//
// write-size says how the input reaches gzip.Writer.Write: "copy" (the
// default) is io.Copy from a buffered stdin, so the calls follow however the
// pipe delivers; "all" is one Write of the whole input; a number N is calls
// of exactly N bytes (the last one shorter). At levels 2 to 9 Go's output
// can depend on where Write calls end, so byte-for-byte tests name one.
package main

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"strconv"
)

func fail(code int, msg string) {
	os.Stderr.WriteString(msg + "\n")
	os.Exit(code)
}

func main() {
	const usage = "usage: gogzip [level [copy|all|write-size]]"
	level := gzip.DefaultCompression
	if len(os.Args) > 3 {
		fail(2, usage)
	}
	if len(os.Args) > 1 {
		l, err := strconv.Atoi(os.Args[1])
		if err != nil {
			fail(2, usage)
		}
		level = l
	}
	writes := "copy"
	if len(os.Args) > 2 {
		writes = os.Args[2]
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	zw, err := gzip.NewWriterLevel(out, level)
	if err != nil {
		fail(2, err.Error())
	}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	switch writes {
	case "copy":
		_, err = io.Copy(zw, in)
	case "all":
		var data []byte
		if data, err = io.ReadAll(in); err == nil {
			_, err = zw.Write(data)
		}
	default:
		size, perr := strconv.Atoi(writes)
		if perr != nil || size < 1 {
			fail(2, usage)
		}
		buf := make([]byte, size)
		for {
			n, rerr := io.ReadFull(in, buf)
			if n > 0 {
				if _, err = zw.Write(buf[:n]); err != nil {
					break
				}
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				err = rerr
				break
			}
		}
	}
	if err != nil {
		fail(1, err.Error())
	}
	if err := zw.Close(); err != nil {
		fail(1, err.Error())
	}
	if err := out.Flush(); err != nil {
		fail(1, err.Error())
	}
}
