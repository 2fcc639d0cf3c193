//! Bit output and block writing (`huffman_bit_writer.go`).

use super::huffman::{HCode, HuffmanEncoder};
use super::tokens::*;

/// The bit stream. Go buffers 48 bits at a time and 240 bytes before writing,
/// but the byte sequence only depends on the sequence of bits, so a plain
/// accumulator into a byte vector produces the same bytes.
pub(super) struct BitSink {
    pub(super) bits: u64,
    pub(super) nbits: u32,
    pub(super) out: Vec<u8>,
}

impl BitSink {
    #[inline]
    pub(super) fn write_bits(&mut self, b: i32, nb: u32) {
        self.bits |= (i64::from(b) as u64) << self.nbits;
        self.nbits += nb;
        if self.nbits >= 48 {
            self.spill();
        }
    }

    #[inline]
    pub(super) fn write_code(&mut self, c: HCode) {
        self.bits |= u64::from(c.code) << self.nbits;
        self.nbits += u32::from(c.len);
        if self.nbits >= 48 {
            self.spill();
        }
    }

    #[inline]
    pub(super) fn spill(&mut self) {
        let bytes = self.bits.to_le_bytes();
        self.out.extend_from_slice(&bytes[..6]);
        self.bits >>= 48;
        self.nbits -= 48;
    }

    /// `flush`: pad to a byte boundary.
    pub(super) fn flush(&mut self) {
        while self.nbits != 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits = self.nbits.saturating_sub(8);
        }
        self.bits = 0;
    }

    /// `writeBytes`: raw bytes; only called on a byte boundary.
    pub(super) fn write_bytes(&mut self, bytes: &[u8]) {
        debug_assert!(self.nbits & 7 == 0, "writeBytes with unfinished bits");
        while self.nbits != 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits -= 8;
        }
        self.out.extend_from_slice(bytes);
    }

    pub(super) fn write_stored_header(&mut self, length: usize, is_eof: bool) {
        self.write_bits(i32::from(is_eof), 3);
        self.flush();
        self.write_bits(length as i32, 16);
        self.write_bits(i32::from(!(length as u16)), 16);
    }
}

pub(super) struct HuffmanBitWriter {
    pub(super) sink: BitSink,
    pub(super) codegen_freq: [i32; CODEGEN_CODE_COUNT],
    pub(super) literal_freq: [i32; MAX_NUM_LIT],
    pub(super) offset_freq: [i32; OFFSET_CODE_COUNT],
    pub(super) codegen: [u8; MAX_NUM_LIT + OFFSET_CODE_COUNT + 1],
    pub(super) literal_encoding: HuffmanEncoder,
    pub(super) offset_encoding: HuffmanEncoder,
    pub(super) codegen_encoding: HuffmanEncoder,
    /// `huffOffset`: the offset code used by Huffman-only blocks.
    pub(super) huff_offset: HuffmanEncoder,
    /// `fixedLiteralEncoding` and `fixedOffsetEncoding`.
    fixed_literal: HuffmanEncoder,
    fixed_offset: HuffmanEncoder,
}

/// `generateCodegen`: run-length encode the concatenated literal and offset
/// code lengths into `codegen` (in place), counting symbols in `freq`.
pub(super) fn generate_codegen(
    codegen: &mut [u8],
    freq: &mut [i32; CODEGEN_CODE_COUNT],
    num_literals: usize,
    num_offsets: usize,
    lit: &[HCode],
    off: &[HCode],
) {
    freq.fill(0);
    for (dst, c) in codegen[..num_literals].iter_mut().zip(lit) {
        *dst = c.len as u8;
    }
    for (dst, c) in codegen[num_literals..num_literals + num_offsets]
        .iter_mut()
        .zip(off)
    {
        *dst = c.len as u8;
    }
    codegen[num_literals + num_offsets] = BAD_CODE;
    crate::code_lengths::run_length_code(codegen, |symbol| freq[symbol] += 1);
}

impl HuffmanBitWriter {
    pub(super) fn new() -> Self {
        let mut huff_offset = HuffmanEncoder::new(OFFSET_CODE_COUNT);
        let mut offset_freq = [0i32; OFFSET_CODE_COUNT];
        offset_freq[0] = 1;
        huff_offset.generate(&offset_freq, 15);
        HuffmanBitWriter {
            sink: BitSink {
                bits: 0,
                nbits: 0,
                out: Vec::with_capacity(MAX_STORE_BLOCK_SIZE + 1024),
            },
            codegen_freq: [0; CODEGEN_CODE_COUNT],
            literal_freq: [0; MAX_NUM_LIT],
            offset_freq: [0; OFFSET_CODE_COUNT],
            codegen: [0; MAX_NUM_LIT + OFFSET_CODE_COUNT + 1],
            literal_encoding: HuffmanEncoder::new(MAX_NUM_LIT),
            offset_encoding: HuffmanEncoder::new(OFFSET_CODE_COUNT),
            codegen_encoding: HuffmanEncoder::new(CODEGEN_CODE_COUNT),
            huff_offset,
            fixed_literal: HuffmanEncoder::fixed_literal(),
            fixed_offset: HuffmanEncoder::fixed_offset(),
        }
    }

    /// `dynamicSize` in bits, and the number of code-length codes to send.
    pub(super) fn dynamic_size(
        &self,
        lit: &HuffmanEncoder,
        off: &HuffmanEncoder,
        extra_bits: i64,
    ) -> (i64, usize) {
        let mut num_codegens = CODEGEN_CODE_COUNT;
        while num_codegens > 4 && self.codegen_freq[CODEGEN_ORDER[num_codegens - 1]] == 0 {
            num_codegens -= 1;
        }
        let header = 3
            + 5
            + 5
            + 4
            + 3 * num_codegens as i64
            + self.codegen_encoding.bit_length(&self.codegen_freq)
            + i64::from(self.codegen_freq[16]) * 2
            + i64::from(self.codegen_freq[17]) * 3
            + i64::from(self.codegen_freq[18]) * 7;
        let size = header
            + lit.bit_length(&self.literal_freq)
            + off.bit_length(&self.offset_freq)
            + extra_bits;
        (size, num_codegens)
    }

    /// `writeDynamicHeader`, with the code lengths of `codegen_encoding`.
    pub(super) fn write_dynamic_header(
        &mut self,
        num_literals: usize,
        num_offsets: usize,
        num_codegens: usize,
        is_eof: bool,
    ) {
        let sink = &mut self.sink;
        sink.write_bits(if is_eof { 5 } else { 4 }, 3);
        sink.write_bits(num_literals as i32 - 257, 5);
        sink.write_bits(num_offsets as i32 - 1, 5);
        sink.write_bits(num_codegens as i32 - 4, 4);
        for &order in &CODEGEN_ORDER[..num_codegens] {
            sink.write_bits(i32::from(self.codegen_encoding.codes[order].len), 3);
        }
        let mut i = 0;
        loop {
            let code_word = self.codegen[i];
            i += 1;
            if code_word == BAD_CODE {
                break;
            }
            sink.write_code(self.codegen_encoding.codes[code_word as usize]);
            let extra = match code_word {
                16 => 2,
                17 => 3,
                18 => 7,
                _ => continue,
            };
            sink.write_bits(i32::from(self.codegen[i]), extra);
            i += 1;
        }
    }

    /// `writeStoredHeader` + `writeBytes`: `input` as a stored block.
    pub(super) fn write_stored(&mut self, input: &[u8], eof: bool) {
        self.sink.write_stored_header(input.len(), eof);
        self.sink.write_bytes(input);
    }

    /// `storedSize` (inputs here are never larger than one stored block).
    pub(super) fn stored_size(input: &[u8]) -> Option<i64> {
        (input.len() <= MAX_STORE_BLOCK_SIZE).then(|| (input.len() as i64 + 5) * 8)
    }

    /// `writeBlockHuff`: literals only, or stored when that is not worth it.
    pub(super) fn write_block_huff(&mut self, eof: bool, input: &[u8]) {
        self.literal_freq.fill(0);
        for &b in input {
            self.literal_freq[b as usize] += 1;
        }
        self.literal_freq[END_BLOCK_MARKER] = 1;
        const NUM_LITERALS: usize = END_BLOCK_MARKER + 1;
        self.offset_freq[0] = 1;
        const NUM_OFFSETS: usize = 1;

        self.literal_encoding.generate(&self.literal_freq, 15);
        generate_codegen(
            &mut self.codegen,
            &mut self.codegen_freq,
            NUM_LITERALS,
            NUM_OFFSETS,
            &self.literal_encoding.codes,
            &self.huff_offset.codes,
        );
        self.codegen_encoding.generate(&self.codegen_freq, 7);
        let (size, num_codegens) = self.dynamic_size(&self.literal_encoding, &self.huff_offset, 0);

        if let Some(ssize) = Self::stored_size(input)
            && ssize < size + (size >> 4)
        {
            self.write_stored(input, eof);
            return;
        }

        self.write_dynamic_header(NUM_LITERALS, NUM_OFFSETS, num_codegens, eof);
        let codes = &self.literal_encoding.codes;
        for &b in input {
            self.sink.write_code(codes[b as usize]);
        }
        self.sink.write_code(codes[END_BLOCK_MARKER]);
    }

    /// `indexTokens`: symbol frequencies and the two dynamic codes.
    pub(super) fn index_tokens(&mut self, tokens: &[u32]) -> (usize, usize) {
        self.literal_freq.fill(0);
        self.offset_freq.fill(0);
        for &t in tokens {
            if t < MATCH_TYPE {
                self.literal_freq[t as usize] += 1;
                continue;
            }
            self.literal_freq[LENGTH_CODES_START + length_code(token_length(t))] += 1;
            self.offset_freq[offset_code(token_offset(t))] += 1;
        }
        let mut num_literals = MAX_NUM_LIT;
        while self.literal_freq[num_literals - 1] == 0 {
            num_literals -= 1;
        }
        let mut num_offsets = OFFSET_CODE_COUNT;
        while num_offsets > 0 && self.offset_freq[num_offsets - 1] == 0 {
            num_offsets -= 1;
        }
        if num_offsets == 0 {
            self.offset_freq[0] = 1;
            num_offsets = 1;
        }
        self.literal_encoding.generate(&self.literal_freq, 15);
        self.offset_encoding.generate(&self.offset_freq, 15);
        (num_literals, num_offsets)
    }

    /// `writeBlockDynamic`: `tokens` must already end with the end-of-block
    /// marker.
    pub(super) fn write_block_dynamic(&mut self, tokens: &[u32], eof: bool, input: &[u8]) {
        let (num_literals, num_offsets) = self.index_tokens(tokens);
        generate_codegen(
            &mut self.codegen,
            &mut self.codegen_freq,
            num_literals,
            num_offsets,
            &self.literal_encoding.codes,
            &self.offset_encoding.codes,
        );
        self.codegen_encoding.generate(&self.codegen_freq, 7);
        let (size, num_codegens) =
            self.dynamic_size(&self.literal_encoding, &self.offset_encoding, 0);

        if let Some(ssize) = Self::stored_size(input)
            && ssize < size + (size >> 4)
        {
            self.write_stored(input, eof);
            return;
        }

        self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
        self.write_tokens(tokens, false);
    }

    /// `writeBlock` (levels 2 to 9): the smallest of a fixed-code block, a
    /// dynamic-code block and, when the block's input is still in the
    /// window (`input` given), a stored block. `tokens` must already end with
    /// the end-of-block marker.
    pub(super) fn write_block(&mut self, tokens: &[u32], eof: bool, input: Option<&[u8]>) {
        let (num_literals, num_offsets) = self.index_tokens(tokens);
        let stored_size = input.and_then(Self::stored_size);
        // The extra bits of lengths and offsets cost the same in both
        // Huffman encodings: Go counts them only to compare with stored.
        let mut extra_bits = 0i64;
        if stored_size.is_some() {
            let lengths = &self.literal_freq[LENGTH_CODES_START..num_literals];
            for (freq, bits) in lengths.iter().zip(LENGTH_EXTRA_BITS).skip(8) {
                extra_bits += i64::from(*freq) * i64::from(bits);
            }
            for (freq, bits) in self.offset_freq[..num_offsets]
                .iter()
                .zip(OFFSET_EXTRA_BITS)
                .skip(4)
            {
                extra_bits += i64::from(*freq) * i64::from(bits);
            }
        }
        // `fixedSize`.
        let mut size = 3
            + self.fixed_literal.bit_length(&self.literal_freq)
            + self.fixed_offset.bit_length(&self.offset_freq)
            + extra_bits;

        generate_codegen(
            &mut self.codegen,
            &mut self.codegen_freq,
            num_literals,
            num_offsets,
            &self.literal_encoding.codes,
            &self.offset_encoding.codes,
        );
        self.codegen_encoding.generate(&self.codegen_freq, 7);
        let (dynamic_size, num_codegens) =
            self.dynamic_size(&self.literal_encoding, &self.offset_encoding, extra_bits);
        let dynamic = dynamic_size < size;
        if dynamic {
            size = dynamic_size;
        }

        if let (Some(input), Some(ssize)) = (input, stored_size)
            && ssize < size
        {
            self.write_stored(input, eof);
            return;
        }
        if dynamic {
            self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
        } else {
            // `writeFixedHeader`.
            self.sink.write_bits(if eof { 3 } else { 2 }, 3);
        }
        self.write_tokens(tokens, !dynamic);
    }

    /// `writeTokens`, with the fixed codes or the block's dynamic codes.
    pub(super) fn write_tokens(&mut self, tokens: &[u32], fixed: bool) {
        let (le, oe) = if fixed {
            (&self.fixed_literal.codes, &self.fixed_offset.codes)
        } else {
            (&self.literal_encoding.codes, &self.offset_encoding.codes)
        };
        let sink = &mut self.sink;
        for &t in tokens {
            if t < MATCH_TYPE {
                sink.write_code(le[t as usize]);
                continue;
            }
            let length = token_length(t);
            let lc = length_code(length);
            sink.write_code(le[lc + LENGTH_CODES_START]);
            let extra_length_bits = u32::from(LENGTH_EXTRA_BITS[lc]);
            if extra_length_bits > 0 {
                sink.write_bits((length - LENGTH_BASE[lc]) as i32, extra_length_bits);
            }
            let offset = token_offset(t);
            let oc = offset_code(offset);
            sink.write_code(oe[oc]);
            let extra_offset_bits = u32::from(OFFSET_EXTRA_BITS[oc]);
            if extra_offset_bits > 0 {
                sink.write_bits((offset - OFFSET_BASE[oc]) as i32, extra_offset_bits);
            }
        }
    }
}
