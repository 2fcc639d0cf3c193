// Copied into a private GOPATH copy of klauspost/compress/zstd (see
// crates/test-support/src/compress.rs, kzstd_best()): exports what
// SpeedBestCompression's matcher (enc_best.go) produces per block, before
// the entropy stage, so tender's port can be checked sequence by sequence.

package zstd

import (
	"encoding/binary"
	"io"
)

// BestMatcher is a bestFastEncoder with its own block, as the Encoder
// holds one.
type BestMatcher struct {
	e *bestFastEncoder
}

// NewBestMatcher makes the matcher SpeedBestCompression uses for a window.
func NewBestMatcher(window int) *BestMatcher {
	initPredefined()
	return &BestMatcher{e: &bestFastEncoder{fastBase: fastBase{maxMatchOff: int32(window)}}}
}

// Reset starts a new frame (Encoder.Reset: singleBlock false; EncodeAll of
// one block: true).
func (m *BestMatcher) Reset(singleBlock bool) {
	m.e.Reset(nil, singleBlock)
}

// Encode runs Encode (with history) or EncodeNoHist over one block and
// writes what it left in the block: literals, sequences, extra literals
// and recent offsets, as little-endian u32 fields.
func (m *BestMatcher) Encode(src []byte, noHist bool, w io.Writer) error {
	blk := m.e.Block()
	blk.reset(nil)
	if noHist {
		m.e.EncodeNoHist(blk, src)
	} else {
		m.e.Encode(blk, src)
	}
	out := make([]byte, 0, 16+len(blk.literals)+12*len(blk.sequences)+16)
	u32 := func(v uint32) { out = binary.LittleEndian.AppendUint32(out, v) }
	u32(uint32(len(blk.literals)))
	out = append(out, blk.literals...)
	u32(uint32(len(blk.sequences)))
	for _, s := range blk.sequences {
		u32(s.litLen)
		u32(s.matchLen)
		u32(s.offset)
	}
	u32(uint32(blk.extraLits))
	u32(uint32(blk.size))
	for _, o := range blk.recentOffsets {
		u32(o)
	}
	_, err := w.Write(out)
	return err
}
