// Exported views of klauspost/compress zstd's internal FSE encoder, added
// to a private GOPATH copy of the package (crates/test-support) so that
// scripts/kzstd-parts can drive it. Not part of klauspost/compress.

package zstd

// TenderFSE is an fseEncoder (fresh, or one of the predefined ones).
type TenderFSE struct{ e *fseEncoder }

// TenderNewFSE returns a fresh encoder.
func TenderNewFSE() TenderFSE { return TenderFSE{e: &fseEncoder{}} }

// TenderPredefFSE returns predefined encoder i (0 ll, 1 of, 2 ml).
func TenderPredefFSE(i int) TenderFSE {
	initPredefined()
	return TenderFSE{e: &fsePredefEnc[i]}
}

func (t TenderFSE) Histogram() *[256]uint32 { return t.e.Histogram() }
func (t TenderFSE) HistogramFinished(maxSymbol uint8, maxCount int) {
	t.e.HistogramFinished(maxSymbol, maxCount)
}
func (t TenderFSE) NormalizeCount(length int) error       { return t.e.normalizeCount(length) }
func (t TenderFSE) SetRLE(v byte)                         { t.e.setRLE(v) }
func (t TenderFSE) WriteCount(out []byte) ([]byte, error) { return t.e.writeCount(out) }
func (t TenderFSE) ApproxSize(hist []uint32) uint32       { return t.e.approxSize(hist) }
func (t TenderFSE) MaxHeaderSize() uint32                 { return t.e.maxHeaderSize() }
func (t TenderFSE) BitCost(s uint8, acc uint32) uint32    { return t.e.bitCost(s, acc) }
func (t TenderFSE) UseRLE() bool                          { return t.e.useRLE }
func (t TenderFSE) ZeroBits() bool                        { return t.e.zeroBits }
func (t TenderFSE) ActualTableLog() uint8                 { return t.e.actualTableLog }
func (t TenderFSE) SymbolLen() uint16                     { return t.e.symbolLen }
func (t TenderFSE) MaxBits() uint8                        { return t.e.maxBits }
func (t TenderFSE) Norm() []int16                         { return append([]int16(nil), t.e.norm[:t.e.symbolLen]...) }
func (t TenderFSE) StateTable() []uint16                  { return append([]uint16(nil), t.e.ct.stateTable...) }

// SetBits calls setBits with the ll (0), of (1: nil) or ml (2) bit table.
func (t TenderFSE) SetBits(table int) { t.e.setBits(bitTables[table]) }

// Transforms lists deltaNbBits, deltaFindState and outBits of each symbol
// below the symbol length.
func (t TenderFSE) Transforms() [][3]int64 {
	var out [][3]int64
	for _, tt := range t.e.ct.symbolTT[:t.e.symbolLen] {
		out = append(out, [3]int64{int64(tt.deltaNbBits), int64(tt.deltaFindState), int64(tt.outBits)})
	}
	return out
}

// TenderSeq is one sequence with its codes.
type TenderSeq struct {
	LLCode, OfCode, MLCode   uint8
	LitLen, MatchLen, Offset uint32
}

// TenderEncodeSeqs writes the three table headers (writeCount) and the
// sequence bit stream exactly as blockEnc.encode does, with the given
// encoders (already normalized, or RLE, or predefined).
func TenderEncodeSeqs(out []byte, seqs []TenderSeq, llT, ofT, mlT TenderFSE) ([]byte, error) {
	llEnc, ofEnc, mlEnc := llT.e, ofT.e, mlT.e
	var err error
	if out, err = llEnc.writeCount(out); err != nil {
		return nil, err
	}
	if out, err = ofEnc.writeCount(out); err != nil {
		return nil, err
	}
	if out, err = mlEnc.writeCount(out); err != nil {
		return nil, err
	}
	var wr bitWriter
	wr.reset(out)

	// From here to the end: blockenc.go's encode, verbatim but for names.
	var ll, of, ml cState

	seq := len(seqs) - 1
	s := seqs[seq]
	llEnc.setBits(llBitsTable[:])
	mlEnc.setBits(mlBitsTable[:])
	ofEnc.setBits(nil)

	llTT, ofTT, mlTT := llEnc.ct.symbolTT[:256], ofEnc.ct.symbolTT[:256], mlEnc.ct.symbolTT[:256]

	llB, ofB, mlB := llTT[s.LLCode], ofTT[s.OfCode], mlTT[s.MLCode]
	ll.init(&wr, &llEnc.ct, llB)
	of.init(&wr, &ofEnc.ct, ofB)
	wr.flush32()
	ml.init(&wr, &mlEnc.ct, mlB)

	wr.addBits32NC(s.LitLen, llB.outBits)
	wr.addBits32NC(s.MatchLen, mlB.outBits)
	wr.flush32()
	wr.addBits32NC(s.Offset, ofB.outBits)
	seq--
	for seq >= 0 {
		s = seqs[seq]

		ofB := ofTT[s.OfCode]
		wr.flush32()
		nbBitsOut := (uint32(of.state) + ofB.deltaNbBits) >> 16
		dstState := int32(of.state>>(nbBitsOut&15)) + int32(ofB.deltaFindState)
		wr.addBits16NC(of.state, uint8(nbBitsOut))
		of.state = of.stateTable[dstState]

		outBits := ofB.outBits & 31
		extraBits := uint64(s.Offset & bitMask32[outBits])
		extraBitsN := outBits

		mlB := mlTT[s.MLCode]
		nbBitsOut = (uint32(ml.state) + mlB.deltaNbBits) >> 16
		dstState = int32(ml.state>>(nbBitsOut&15)) + int32(mlB.deltaFindState)
		wr.addBits16NC(ml.state, uint8(nbBitsOut))
		ml.state = ml.stateTable[dstState]

		outBits = mlB.outBits & 31
		extraBits = extraBits<<outBits | uint64(s.MatchLen&bitMask32[outBits])
		extraBitsN += outBits

		llB := llTT[s.LLCode]
		nbBitsOut = (uint32(ll.state) + llB.deltaNbBits) >> 16
		dstState = int32(ll.state>>(nbBitsOut&15)) + int32(llB.deltaFindState)
		wr.addBits16NC(ll.state, uint8(nbBitsOut))
		ll.state = ll.stateTable[dstState]

		outBits = llB.outBits & 31
		extraBits = extraBits<<outBits | uint64(s.LitLen&bitMask32[outBits])
		extraBitsN += outBits

		wr.flush32()
		wr.addBits64NC(extraBits, extraBitsN)
		seq--
	}
	ml.flush(mlEnc.actualTableLog)
	of.flush(ofEnc.actualTableLog)
	ll.flush(llEnc.actualTableLog)
	if err := wr.close(); err != nil {
		return nil, err
	}
	return wr.out, nil
}
