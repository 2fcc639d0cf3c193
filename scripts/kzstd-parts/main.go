// kzstd-parts: runs klauspost/compress's entropy coders (huff0, fse, and
// zstd's internal FSE encoder) on the cases of a JSON request read from
// stdin and writes what they produced as JSON to stdout. Tests use it as
// the reference that tender's port (crates/delta/src/klauspost_zstd) must
// match byte for byte.
//
// Built in GOPATH mode against a private copy of Debian's
// golang-github-klauspost-compress-dev (1.15.12) with the export/ files
// added to its zstd and huff0 packages (see crates/test-support).
//
// Request: {"cases": [case...]}; each case has "kind":
//
//	huff0        "steps": one Scratch through a sequence of blocks; each
//	             step sets reuse (0 Allow, 1 Prefer, 2 None, 3 Must),
//	             want_log_less, table_log and max_symbol_value, then runs op
//	             "1x", "4x", "estimate" (EstimateSizes, then minSize) or
//	             "transfer" (a fresh Scratch codes data with Compress4X and
//	             this one takes its table with TransferCTable).
//	fse          "steps": one fse.Scratch through fse.Compress calls, with
//	             table_log and, if histogram is set, a histogram counted
//	             by the caller (HistogramFinished).
//	fse_encoder  "symbols": a stream of codes; a fresh encoder counts them,
//	             normalizes (normalizeCount(len)), goes RLE if one symbol,
//	             sets bits ("bits": 0 ll, 1 of, 2 ml), writes its header
//	             after "prefix"; reports tables, approxSize of "approx"
//	             histograms and bitCost of every symbol.
//	predefined   the same report for predefined table "table".
//	sequences    "seqs" [[llCode, ofCode, mlCode, litLen, matchLen,
//	             offset]...] and "modes" (per ll/of/ml: "new" or "predef"):
//	             the headers and bit stream as blockEnc.encode writes them.
//
// Byte strings are hex; errors are "incompressible", "use_rle", "too_big"
// or "other".
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"os"

	"github.com/klauspost/compress/fse"
	"github.com/klauspost/compress/huff0"
	"github.com/klauspost/compress/zstd"
)

type request struct {
	Cases []kase `json:"cases"`
}

type kase struct {
	Kind    string      `json:"kind"`
	Steps   []step      `json:"steps"`
	Symbols string      `json:"symbols"`
	Bits    int         `json:"bits"`
	Prefix  string      `json:"prefix"`
	Approx  [][]uint32  `json:"approx"`
	Table   int         `json:"table"`
	Seqs    [][6]uint32 `json:"seqs"`
	Modes   [3]string   `json:"modes"`
}

type step struct {
	Op             string `json:"op"`
	Data           string `json:"data"`
	Reuse          int    `json:"reuse"`
	WantLogLess    uint8  `json:"want_log_less"`
	TableLog       uint8  `json:"table_log"`
	MaxSymbolValue uint8  `json:"max_symbol_value"`
	Histogram      bool   `json:"histogram"`
}

type stepResult struct {
	Err      string  `json:"err"`
	Out      string  `json:"out"`
	ReUsed   bool    `json:"reused"`
	OutTable *string `json:"out_table"`
	OutData  *string `json:"out_data"`
	Est      [3]int  `json:"est"`
	MinSize  int     `json:"min_size"`
}

type tableReport struct {
	Err            string      `json:"err"`
	UseRLE         bool        `json:"use_rle"`
	ZeroBits       bool        `json:"zero_bits"`
	ActualTableLog uint8       `json:"actual_table_log"`
	SymbolLen      uint16      `json:"symbol_len"`
	MaxBits        uint8       `json:"max_bits"`
	Norm           []int16     `json:"norm"`
	StateTable     []uint16    `json:"state_table"`
	Transforms     [][3]int64  `json:"transforms"`
	Header         string      `json:"header"`
	MaxHeaderSize  uint32      `json:"max_header_size"`
	Approx         [][4]uint32 `json:"approx"`
	BitCosts       []uint32    `json:"bit_costs"`
}

type caseResult struct {
	Steps  []stepResult `json:"steps,omitempty"`
	Table  *tableReport `json:"table,omitempty"`
	Stream *string      `json:"stream,omitempty"`
	Err    string       `json:"err,omitempty"`
}

func fail(msg string) {
	os.Stderr.WriteString("kzstd-parts: " + msg + "\n")
	os.Exit(1)
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		fail(err.Error())
	}
	return b
}

func errKind(err error) string {
	switch err {
	case nil:
		return ""
	case huff0.ErrIncompressible, fse.ErrIncompressible:
		return "incompressible"
	case huff0.ErrUseRLE, fse.ErrUseRLE:
		return "use_rle"
	case huff0.ErrTooBig:
		return "too_big"
	}
	return "other"
}

func hexPtr(b []byte) *string {
	if b == nil {
		return nil
	}
	s := hex.EncodeToString(b)
	return &s
}

func runHuff0(c kase) caseResult {
	var s huff0.Scratch
	var res caseResult
	for _, st := range c.Steps {
		data := unhex(st.Data)
		s.Reuse = huff0.ReusePolicy(st.Reuse)
		s.WantLogLess = st.WantLogLess
		s.TableLog = st.TableLog
		s.MaxSymbolValue = st.MaxSymbolValue
		var r stepResult
		var out []byte
		var err error
		switch st.Op {
		case "1x":
			out, r.ReUsed, err = huff0.Compress1X(data, &s)
		case "4x":
			out, r.ReUsed, err = huff0.Compress4X(data, &s)
		case "estimate":
			r.Est[0], r.Est[1], r.Est[2], err = huff0.EstimateSizes(data, &s)
			r.MinSize = s.TenderMinSize(len(data))
		case "transfer":
			var src huff0.Scratch
			out, r.ReUsed, err = huff0.Compress4X(data, &src)
			s.TransferCTable(&src)
		default:
			fail("unknown huff0 op " + st.Op)
		}
		r.Err = errKind(err)
		r.Out = hex.EncodeToString(out)
		if st.Op != "transfer" && st.Op != "estimate" {
			r.OutTable = hexPtr(s.OutTable)
			r.OutData = hexPtr(s.OutData)
		}
		res.Steps = append(res.Steps, r)
	}
	return res
}

func runFse(c kase) caseResult {
	var s fse.Scratch
	var res caseResult
	for _, st := range c.Steps {
		data := unhex(st.Data)
		s.TableLog = st.TableLog
		if st.Histogram {
			hist := s.Histogram()
			for i := range hist {
				hist[i] = 0
			}
			var maxSym uint8
			var maxCount int
			for _, b := range data {
				hist[b]++
				if b > maxSym {
					maxSym = b
				}
			}
			for _, v := range hist {
				if int(v) > maxCount {
					maxCount = int(v)
				}
			}
			s.HistogramFinished(maxSym, maxCount)
		}
		out, err := fse.Compress(data, &s)
		res.Steps = append(res.Steps, stepResult{Err: errKind(err), Out: hex.EncodeToString(out)})
	}
	return res
}

func report(t zstd.TenderFSE, c kase) *tableReport {
	r := &tableReport{
		UseRLE:         t.UseRLE(),
		ZeroBits:       t.ZeroBits(),
		ActualTableLog: t.ActualTableLog(),
		SymbolLen:      t.SymbolLen(),
		MaxBits:        t.MaxBits(),
		Norm:           t.Norm(),
		StateTable:     t.StateTable(),
		Transforms:     t.Transforms(),
		MaxHeaderSize:  t.MaxHeaderSize(),
	}
	header, err := t.WriteCount(unhex(c.Prefix))
	if err != nil {
		r.Err = "other"
	}
	r.Header = hex.EncodeToString(header)
	for _, h := range c.Approx {
		r.Approx = append(r.Approx, [4]uint32{
			t.ApproxSize(h),
			zstd.TenderPredefFSE(0).ApproxSize(h),
			zstd.TenderPredefFSE(1).ApproxSize(h),
			zstd.TenderPredefFSE(2).ApproxSize(h),
		})
	}
	if !t.UseRLE() {
		for i, n := range t.Norm() {
			if n != 0 {
				r.BitCosts = append(r.BitCosts, t.BitCost(uint8(i), 8))
			}
		}
	}
	return r
}

// newEncoder counts symbols into a fresh encoder and normalizes it as
// blockEnc does; an RLE stream gets setRLE with its first symbol.
func newEncoder(symbols []byte) (zstd.TenderFSE, error) {
	t := zstd.TenderNewFSE()
	hist := t.Histogram()
	var maxSym uint8
	for _, b := range symbols {
		hist[b]++
		if b > maxSym {
			maxSym = b
		}
	}
	var maxCount int
	for _, v := range hist[:int(maxSym)+1] {
		if int(v) > maxCount {
			maxCount = int(v)
		}
	}
	t.HistogramFinished(maxSym, maxCount)
	if err := t.NormalizeCount(len(symbols)); err != nil {
		return t, err
	}
	if t.UseRLE() {
		t.SetRLE(symbols[0])
	}
	return t, nil
}

func runFseEncoder(c kase) caseResult {
	t, err := newEncoder(unhex(c.Symbols))
	if err != nil {
		return caseResult{Err: "other"}
	}
	t.SetBits(c.Bits)
	return caseResult{Table: report(t, c)}
}

func runSequences(c kase) caseResult {
	seqs := make([]zstd.TenderSeq, len(c.Seqs))
	var codes [3][]byte
	for i, s := range c.Seqs {
		seqs[i] = zstd.TenderSeq{LLCode: uint8(s[0]), OfCode: uint8(s[1]), MLCode: uint8(s[2]),
			LitLen: s[3], MatchLen: s[4], Offset: s[5]}
		for j := range codes {
			codes[j] = append(codes[j], uint8(s[j]))
		}
	}
	var enc [3]zstd.TenderFSE
	for j, mode := range c.Modes {
		if mode == "predef" {
			enc[j] = zstd.TenderPredefFSE(j)
			continue
		}
		var err error
		if enc[j], err = newEncoder(codes[j]); err != nil {
			return caseResult{Err: "other"}
		}
	}
	out, err := zstd.TenderEncodeSeqs(unhex(c.Prefix), seqs, enc[0], enc[1], enc[2])
	if err != nil {
		return caseResult{Err: "other"}
	}
	return caseResult{Stream: hexPtr(out)}
}

func main() {
	var req request
	if err := json.NewDecoder(bufio.NewReader(os.Stdin)).Decode(&req); err != nil {
		fail("reading the request: " + err.Error())
	}
	results := make([]caseResult, 0, len(req.Cases))
	for _, c := range req.Cases {
		switch c.Kind {
		case "huff0":
			results = append(results, runHuff0(c))
		case "fse":
			results = append(results, runFse(c))
		case "fse_encoder":
			results = append(results, runFseEncoder(c))
		case "predefined":
			results = append(results, caseResult{Table: report(zstd.TenderPredefFSE(c.Table), c)})
		case "sequences":
			results = append(results, runSequences(c))
		default:
			fail("unknown case kind " + c.Kind)
		}
	}
	out := bufio.NewWriter(os.Stdout)
	if err := json.NewEncoder(out).Encode(map[string]interface{}{"results": results}); err != nil {
		fail(err.Error())
	}
	if err := out.Flush(); err != nil {
		fail(err.Error())
	}
}
