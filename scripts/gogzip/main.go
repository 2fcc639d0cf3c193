// gogzip: compress stdin to stdout with Go's compress/gzip at a level
// (default: gzip.DefaultCompression). Tests and the delta scenario use it to
// make layers exactly as Go-built images (ko, umoci, crane) compress them.
package main

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"strconv"
)

func main() {
	level := gzip.DefaultCompression
	if len(os.Args) > 1 {
		l, err := strconv.Atoi(os.Args[1])
		if err != nil {
			os.Stderr.WriteString("usage: gogzip [level]\n")
			os.Exit(2)
		}
		level = l
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	zw, err := gzip.NewWriterLevel(out, level)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	if _, err := io.Copy(zw, bufio.NewReaderSize(os.Stdin, 1<<20)); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	if err := zw.Close(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	if err := out.Flush(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
