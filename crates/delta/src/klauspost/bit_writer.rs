//! Block output (`huffman_bit_writer.go`): stored, fixed, dynamic and
//! Huffman-only blocks, and the heuristics that choose between them.
//!
//! The part that makes klauspost's output its own: a dynamic table may be
//! *reused* by the next window of the same block (no end-of-block code, no
//! new header) when the estimated size of a fresh table (`EstimatedBits`
//! plus the last header, plus a penalty of `1 / 2^logNewTablePenalty`) is
//! not smaller. An end-of-block code is then "owed" (`lastHeader > 0`) and
//! written before whatever comes next.
//!
//! Go buffers 48 bits and ~250 bytes before writing; the bytes depend only
//! on the sequence of bits, so a plain accumulator into a vector is exact.

use super::huffman::{HCode, HuffmanEncoder};
use super::tokens::{
    END_BLOCK_MARKER, LENGTH_BASE, LENGTH_EXTRA_BITS, LITERAL_COUNT, MATCH_OFFSET_ONLY_MASK,
    MAX_STORE_BLOCK_SIZE, OFFSET_BASE, OFFSET_CODE_COUNT, OFFSET_EXTRA_BITS, Tokens, token_length,
    token_offset,
};

const LENGTH_CODES_START: usize = 257;
const CODEGEN_CODE_COUNT: usize = 19;
const BAD_CODE: u8 = crate::code_lengths::END;
/// Blocks with fewer tokens also try the fixed code.
const MAX_PREDEFINED_TOKENS: usize = 250;
const LENGTH_EXTRA_BITS_MIN_CODE: usize = 8;
const OFFSET_EXTRA_BITS_MIN_CODE: usize = 4;
/// `maxNumLit`, `maxNumDist`: table sizes written for a reusable table.
const MAX_NUM_LIT: usize = 286;
const MAX_NUM_DIST: usize = 30;

const CODEGEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// The bit stream: bits are appended LSB first, whole bytes go to `out`.
pub(super) struct Sink {
    bits: u64,
    nbits: u32,
    /// Finished bytes, drained by the caller.
    pub(super) out: Vec<u8>,
}

impl Sink {
    #[inline]
    fn spill(&mut self) {
        self.out.extend_from_slice(&self.bits.to_le_bytes()[..6]);
        self.bits >>= 48;
        self.nbits -= 48;
    }

    #[inline]
    fn write_bits(&mut self, b: u32, nb: u32) {
        self.bits |= u64::from(b) << (self.nbits & 63);
        self.nbits += nb;
        if self.nbits >= 48 {
            self.spill();
        }
    }

    #[inline]
    fn write_code(&mut self, c: HCode) {
        self.bits |= u64::from(c.code) << (self.nbits & 63);
        self.nbits += u32::from(c.len);
        if self.nbits >= 48 {
            self.spill();
        }
    }

    /// Pads to a byte boundary.
    fn pad(&mut self) {
        while self.nbits != 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits = self.nbits.saturating_sub(8);
        }
        self.bits = 0;
    }

    /// `writeBytes`: raw bytes on a byte boundary.
    fn write_bytes(&mut self, bytes: &[u8]) {
        debug_assert!(self.nbits & 7 == 0, "writeBytes with unfinished bits");
        self.pad();
        self.out.extend_from_slice(bytes);
    }
}

pub(super) struct BitWriter {
    pub(super) sink: Sink,
    last_huff_man: bool,
    literal_encoding: HuffmanEncoder,
    tmp_lit_encoding: HuffmanEncoder,
    offset_encoding: HuffmanEncoder,
    codegen_encoding: HuffmanEncoder,
    fixed_literal: HuffmanEncoder,
    fixed_offset: HuffmanEncoder,
    /// The offset code of Huffman-only blocks: one code for offset 0.
    huff_offset: HuffmanEncoder,
    /// Header bits of the table that may still be reused; 0: none.
    last_header: i32,
    log_new_table_penalty: u32,
    /// klauspost/compress 1.18.2 and later: a reusable table is written
    /// with exact sizes and always counts the end-of-block code.
    exact_tables: bool,
    literal_freq: [u16; LENGTH_CODES_START + 32],
    offset_freq: [u16; 32],
    codegen_freq: [u16; CODEGEN_CODE_COUNT],
    codegen: [u8; LITERAL_COUNT + OFFSET_CODE_COUNT + 1],
}

impl BitWriter {
    pub(super) fn new(log_new_table_penalty: u32, exact_tables: bool) -> Self {
        let mut huff_offset = HuffmanEncoder::new(OFFSET_CODE_COUNT);
        let mut freq = [0u16; OFFSET_CODE_COUNT];
        freq[0] = 1;
        huff_offset.generate(&freq, 15);
        BitWriter {
            sink: Sink {
                bits: 0,
                nbits: 0,
                out: Vec::with_capacity(MAX_STORE_BLOCK_SIZE + 1024),
            },
            last_huff_man: false,
            literal_encoding: HuffmanEncoder::new(LITERAL_COUNT),
            tmp_lit_encoding: HuffmanEncoder::new(LITERAL_COUNT),
            offset_encoding: HuffmanEncoder::new(OFFSET_CODE_COUNT),
            codegen_encoding: HuffmanEncoder::new(CODEGEN_CODE_COUNT),
            fixed_literal: HuffmanEncoder::fixed_literal(),
            fixed_offset: HuffmanEncoder::fixed_offset(),
            huff_offset,
            last_header: 0,
            log_new_table_penalty,
            exact_tables,
            literal_freq: [0; LENGTH_CODES_START + 32],
            offset_freq: [0; 32],
            codegen_freq: [0; CODEGEN_CODE_COUNT],
            codegen: [0; LITERAL_COUNT + OFFSET_CODE_COUNT + 1],
        }
    }

    /// `reset`: a new stream (the encoders keep stale codes, which nothing
    /// reads before they are generated again).
    pub(super) fn reset(&mut self) {
        self.sink.bits = 0;
        self.sink.nbits = 0;
        self.last_header = 0;
        self.last_huff_man = false;
    }

    /// Writes the end-of-block code the reused table still owes.
    fn pay_owed_eob(&mut self) {
        if self.last_header > 0 {
            self.sink
                .write_code(self.literal_encoding.codes[END_BLOCK_MARKER]);
            self.last_header = 0;
        }
    }

    /// `flush`: pay any owed end of block, pad to a byte boundary.
    pub(super) fn flush(&mut self) {
        self.pay_owed_eob();
        self.sink.pad();
    }

    /// `writeStoredHeader`; an empty final block is written as a fixed one.
    pub(super) fn write_stored_header(&mut self, length: usize, is_eof: bool) {
        self.pay_owed_eob();
        if length == 0 && is_eof {
            self.write_fixed_header(is_eof);
            // End of block in the fixed code: 7 zero bits.
            self.sink.write_bits(0, 7);
            self.flush();
            return;
        }
        self.sink.write_bits(u32::from(is_eof), 3);
        self.flush();
        self.sink.write_bits(length as u32, 16);
        self.sink.write_bits(u32::from(!(length as u16)), 16);
    }

    fn write_stored(&mut self, input: &[u8], eof: bool) {
        self.write_stored_header(input.len(), eof);
        self.sink.write_bytes(input);
    }

    /// `writeStoredBlock` of deflate.go.
    pub(super) fn write_stored_block(&mut self, input: &[u8]) {
        self.write_stored(input, false);
    }

    fn write_fixed_header(&mut self, is_eof: bool) {
        self.pay_owed_eob();
        self.sink.write_bits(if is_eof { 3 } else { 2 }, 3);
    }

    /// `generateCodegen`: the run-length coded code lengths of both
    /// tables, and the frequencies of the code-length symbols.
    fn generate_codegen(&mut self, num_literals: usize, num_offsets: usize, huffman_only: bool) {
        self.codegen_freq = [0; CODEGEN_CODE_COUNT];
        let off_enc = if huffman_only {
            &self.huff_offset
        } else {
            &self.offset_encoding
        };
        let codegen = &mut self.codegen;
        for (i, c) in codegen[..num_literals].iter_mut().enumerate() {
            *c = self.literal_encoding.codes[i].len;
        }
        for (i, c) in codegen[num_literals..num_literals + num_offsets]
            .iter_mut()
            .enumerate()
        {
            *c = off_enc.codes[i].len;
        }
        codegen[num_literals + num_offsets] = BAD_CODE;
        let freq = &mut self.codegen_freq;
        crate::code_lengths::run_length_code(codegen, |symbol| freq[symbol] += 1);
    }

    /// `codegens`: how many code-length code lengths the header lists.
    fn codegens(&self) -> usize {
        let mut num = self.codegen_freq.len();
        while num > 4 && self.codegen_freq[CODEGEN_ORDER[num - 1]] == 0 {
            num -= 1;
        }
        num
    }

    /// `headerSize`: bits of a dynamic header, and its codegen count.
    fn header_size(&self) -> (i32, usize) {
        let num = self.codegens();
        let f = &self.codegen_freq;
        let size = 3
            + 5
            + 5
            + 4
            + 3 * num as i32
            + self.codegen_encoding.bit_length(f)
            + i32::from(f[16]) * 2
            + i32::from(f[17]) * 3
            + i32::from(f[18]) * 7;
        (size, num)
    }

    /// `dynamicReuseSize` with the current tables.
    fn dynamic_reuse_size(&self) -> i32 {
        self.literal_encoding.bit_length(&self.literal_freq)
            + self.offset_encoding.bit_length(&self.offset_freq)
    }

    /// `dynamicSize` with the current tables.
    fn dynamic_size(&self, extra_bits: i32) -> (i32, usize) {
        let (header, num_codegens) = self.header_size();
        let size = header
            + self.literal_encoding.bit_length(&self.literal_freq)
            + self.offset_encoding.bit_length(&self.offset_freq)
            + extra_bits;
        (size, num_codegens)
    }

    /// `extraBitSize`: length and offset extra bits of the block.
    fn extra_bit_size(&self) -> i32 {
        let mut total = 0i32;
        for (i, &n) in self.literal_freq[257..LITERAL_COUNT].iter().enumerate() {
            total += i32::from(n) * i32::from(LENGTH_EXTRA_BITS[i & 31]);
        }
        for (i, &n) in self.offset_freq[..OFFSET_CODE_COUNT].iter().enumerate() {
            total += i32::from(n) * i32::from(OFFSET_EXTRA_BITS[i & 31]);
        }
        total
    }

    /// `fixedSize`.
    fn fixed_size(&self, extra_bits: i32) -> i32 {
        3 + self.fixed_literal.bit_length(&self.literal_freq)
            + self.fixed_offset.bit_length(&self.offset_freq)
            + extra_bits
    }

    /// `writeDynamicHeader`.
    fn write_dynamic_header(
        &mut self,
        num_literals: usize,
        num_offsets: usize,
        num_codegens: usize,
        is_eof: bool,
    ) {
        self.sink.write_bits(if is_eof { 5 } else { 4 }, 3);
        self.sink.write_bits((num_literals - 257) as u32, 5);
        self.sink.write_bits((num_offsets - 1) as u32, 5);
        self.sink.write_bits((num_codegens - 4) as u32, 4);
        for &sym in &CODEGEN_ORDER[..num_codegens] {
            let len = self.codegen_encoding.codes[sym].len;
            self.sink.write_bits(u32::from(len), 3);
        }
        let mut i = 0;
        loop {
            let code_word = self.codegen[i];
            i += 1;
            if code_word == BAD_CODE {
                break;
            }
            self.sink
                .write_code(self.codegen_encoding.codes[code_word as usize]);
            let extra = match code_word {
                16 => 2,
                17 => 3,
                18 => 7,
                _ => continue,
            };
            self.sink.write_bits(u32::from(self.codegen[i]), extra);
            i += 1;
        }
    }

    /// `canReuse`: whether the current tables code every symbol of `t`.
    fn can_reuse(&self, t: &Tokens) -> bool {
        let off = &self.offset_encoding.codes;
        let lit = &self.literal_encoding.codes;
        t.off_hist[..OFFSET_CODE_COUNT]
            .iter()
            .zip(off.iter())
            .all(|(&v, c)| v == 0 || !c.zero())
            && t.extra_hist[..LITERAL_COUNT - 256]
                .iter()
                .zip(lit[256..LITERAL_COUNT].iter())
                .all(|(&v, c)| v == 0 || !c.zero())
            && t.lit_hist
                .iter()
                .zip(lit[..256].iter())
                .all(|(&v, c)| v == 0 || !c.zero())
    }

    /// `indexTokens`: the block's frequencies, and the table sizes to
    /// write. Up to 1.18.0 a table that may be reused (`!sync`) is written
    /// at full size; from 1.18.2 every table has exact sizes and counts
    /// the end-of-block code (`alwaysEOB`).
    fn index_tokens(&mut self, t: &Tokens, sync: bool) -> (usize, usize) {
        self.literal_freq[..256].copy_from_slice(&t.lit_hist);
        self.literal_freq[256..288].copy_from_slice(&t.extra_hist);
        self.offset_freq = t.off_hist;
        if t.n == 0 {
            return (0, 0);
        }
        if self.exact_tables {
            self.literal_freq[END_BLOCK_MARKER] = 1;
        } else if !sync {
            return (MAX_NUM_LIT, MAX_NUM_DIST);
        }
        let mut num_literals = self.literal_freq.len();
        while self.literal_freq[num_literals - 1] == 0 {
            num_literals -= 1;
        }
        let mut num_offsets = self.offset_freq.len();
        while num_offsets > 0 && self.offset_freq[num_offsets - 1] == 0 {
            num_offsets -= 1;
        }
        if num_offsets == 0 {
            // A dynamic header needs at least one offset code.
            self.offset_freq[0] = 1;
            num_offsets = 1;
        }
        (num_literals, num_offsets)
    }

    fn generate(&mut self) {
        self.literal_encoding
            .generate(&self.literal_freq[..LITERAL_COUNT], 15);
        self.offset_encoding
            .generate(&self.offset_freq[..OFFSET_CODE_COUNT], 15);
    }

    /// `writeBlockDynamic`: the tokens with the current table reused, a new
    /// dynamic table, the fixed code or stored, whichever the estimates
    /// favour. Without `sync` a new table stays open for reuse.
    // Exact port of klauspost's flate.(*huffmanBitWriter).writeBlockDynamic
    // (flate/huffman_bit_writer.go):
    // kept line for line so it can be checked against the original.
    #[allow(clippy::too_many_lines)]
    pub(super) fn write_block_dynamic(
        &mut self,
        tokens: &mut Tokens,
        eof: bool,
        input: &[u8],
        sync: bool,
    ) {
        let sync = sync || eof;
        if sync {
            tokens.add_eob();
        }
        // A Huffman-only table cannot be reused, and eof ends every table.
        if (self.last_huff_man || eof) && self.last_header > 0 {
            self.sink
                .write_code(self.literal_encoding.codes[END_BLOCK_MARKER]);
            self.last_header = 0;
            self.last_huff_man = false;
        }
        if self.last_header > 0 && !self.can_reuse(tokens) {
            self.sink
                .write_code(self.literal_encoding.codes[END_BLOCK_MARKER]);
            self.last_header = 0;
        }

        let (num_literals, num_offsets) = self.index_tokens(tokens, sync);
        let mut extra_bits = 0;
        let storable = input.len() <= MAX_STORE_BLOCK_SIZE;
        let ssize = if storable {
            (input.len() as i32 + 5) * 8
        } else {
            0
        };
        if storable || self.last_header > 0 {
            extra_bits = self.extra_bit_size();
        }

        let mut size;
        if self.last_header > 0 {
            // Estimate a new table: the last header as its header size.
            let mut new_size = self.last_header + tokens.estimated_bits();
            new_size += i32::from(self.literal_encoding.codes[END_BLOCK_MARKER].len)
                + (new_size >> self.log_new_table_penalty);
            let reuse_size = self.dynamic_reuse_size() + extra_bits;
            if new_size < reuse_size {
                self.sink
                    .write_code(self.literal_encoding.codes[END_BLOCK_MARKER]);
                size = new_size;
                self.last_header = 0;
            } else {
                size = reuse_size;
            }
            if tokens.n < MAX_PREDEFINED_TOKENS {
                let pre_size = self.fixed_size(extra_bits) + 7;
                if pre_size < size {
                    if storable && ssize <= size {
                        self.write_stored(input, eof);
                        return;
                    }
                    self.write_fixed_header(eof);
                    if !sync {
                        tokens.add_eob();
                    }
                    self.write_tokens_fixed(tokens.slice());
                    return;
                }
            }
            if storable && ssize <= size {
                self.write_stored(input, eof);
                return;
            }
        }

        if self.last_header == 0 {
            self.literal_freq[END_BLOCK_MARKER] = 1;
            self.generate();
            self.generate_codegen(num_literals, num_offsets, false);
            self.codegen_encoding.generate(&self.codegen_freq, 7);
            let num_codegens;
            (size, num_codegens) = self.dynamic_size(extra_bits);

            if tokens.n < MAX_PREDEFINED_TOKENS {
                let pre_size = self.fixed_size(extra_bits);
                if pre_size <= size {
                    if storable && ssize <= pre_size {
                        self.write_stored(input, eof);
                        return;
                    }
                    self.write_fixed_header(eof);
                    if !sync {
                        tokens.add_eob();
                    }
                    self.write_tokens_fixed(tokens.slice());
                    return;
                }
            }
            if storable && ssize <= size {
                self.write_stored(input, eof);
                return;
            }
            self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
            if !sync {
                self.last_header = self.header_size().0;
            }
            self.last_huff_man = false;
        }
        if sync {
            self.last_header = 0;
        }
        self.write_tokens_dynamic(tokens.slice());
    }

    fn write_tokens_fixed(&mut self, tokens: &[u32]) {
        let (lit, off) = (&self.fixed_literal.codes, &self.fixed_offset.codes);
        write_tokens(&mut self.sink, tokens, lit, off);
    }

    fn write_tokens_dynamic(&mut self, tokens: &[u32]) {
        let (lit, off) = (&self.literal_encoding.codes, &self.offset_encoding.codes);
        write_tokens(&mut self.sink, tokens, lit, off);
    }

    /// `writeBlockHuff`: the bytes as literals with their own table (or the
    /// open table reused), or stored when that gains too little.
    pub(super) fn write_block_huff(&mut self, eof: bool, input: &[u8], sync: bool) {
        self.literal_freq = [0; LENGTH_CODES_START + 32];
        if !self.last_huff_man {
            self.offset_freq = [0; 32];
        }
        const NUM_LITERALS: usize = END_BLOCK_MARKER + 1;
        const NUM_OFFSETS: usize = 1;
        // Assume the header is around 70 bytes.
        const GUESS_HEADER_SIZE_BITS: i32 = 70 * 8;
        for &b in input {
            self.literal_freq[b as usize] = self.literal_freq[b as usize].wrapping_add(1);
        }
        let storable = input.len() <= MAX_STORE_BLOCK_SIZE;
        let ssize = if storable {
            (input.len() as i32 + 5) * 8
        } else {
            0
        };
        if storable && input.len() > 1024 {
            // Quick check for incompressible content.
            let mut abs = 0f64;
            let avg = input.len() as f64 / 256.0;
            let max = (input.len() * 2) as f64;
            for &v in &self.literal_freq[..256] {
                let diff = f64::from(v) - avg;
                abs += diff * diff;
                if abs > max {
                    break;
                }
            }
            if abs < max {
                self.write_stored(input, eof);
                return;
            }
        }
        self.literal_freq[END_BLOCK_MARKER] = 1;
        self.tmp_lit_encoding
            .generate(&self.literal_freq[..NUM_LITERALS], 15);
        let mut est_bits = self
            .tmp_lit_encoding
            .can_reuse_bits(&self.literal_freq[..NUM_LITERALS]);
        if est_bits < i32::MAX {
            est_bits += self.last_header;
            if self.last_header == 0 {
                est_bits += GUESS_HEADER_SIZE_BITS;
            }
            est_bits += est_bits >> self.log_new_table_penalty;
        }
        if storable && ssize <= est_bits {
            self.write_stored(input, eof);
            return;
        }
        if self.last_header > 0 {
            let reuse_size = self
                .literal_encoding
                .can_reuse_bits(&self.literal_freq[..256]);
            if est_bits < reuse_size {
                self.sink
                    .write_code(self.literal_encoding.codes[END_BLOCK_MARKER]);
                self.last_header = 0;
            }
        }
        if self.last_header == 0 {
            std::mem::swap(&mut self.literal_encoding, &mut self.tmp_lit_encoding);
            self.generate_codegen(NUM_LITERALS, NUM_OFFSETS, true);
            self.codegen_encoding.generate(&self.codegen_freq, 7);
            let num_codegens = self.codegens();
            self.write_dynamic_header(NUM_LITERALS, NUM_OFFSETS, num_codegens, eof);
            self.last_huff_man = true;
            self.last_header = self.header_size().0;
        }
        let codes = &self.literal_encoding.codes;
        for &b in input {
            self.sink.write_code(codes[b as usize]);
        }
        if eof || sync {
            self.sink
                .write_code(self.literal_encoding.codes[END_BLOCK_MARKER]);
            self.last_header = 0;
            self.last_huff_man = false;
        }
    }
}

/// `writeTokens`: a trailing end-of-block token is written last, any
/// other token is a literal or a match.
fn write_tokens(sink: &mut Sink, mut tokens: &[u32], le_codes: &[HCode], oe_codes: &[HCode]) {
    if tokens.is_empty() {
        return;
    }
    let mut defer_eob = false;
    if tokens[tokens.len() - 1] == END_BLOCK_MARKER as u32 {
        tokens = &tokens[..tokens.len() - 1];
        defer_eob = true;
    }
    let lengths = &le_codes[LENGTH_CODES_START..];
    for &t in tokens {
        if t < 256 {
            sink.write_code(le_codes[t as usize]);
            continue;
        }
        let length = token_length(t);
        let length_code = super::tokens::LENGTH_CODES[length as usize] as usize & 31;
        sink.write_code(lengths[length_code]);
        if length_code >= LENGTH_EXTRA_BITS_MIN_CODE {
            let extra = u32::from(length - LENGTH_BASE[length_code]);
            sink.write_bits(extra, u32::from(LENGTH_EXTRA_BITS[length_code]));
        }
        let offset = token_offset(t);
        let offset_code = ((offset >> 16) & 31) as usize;
        sink.write_code(oe_codes[offset_code]);
        if offset_code >= OFFSET_EXTRA_BITS_MIN_CODE {
            let extra = offset.wrapping_sub(OFFSET_BASE[offset_code]) & MATCH_OFFSET_ONLY_MASK;
            sink.write_bits(extra, u32::from(OFFSET_EXTRA_BITS[offset_code]));
        }
    }
    if defer_eob {
        sink.write_code(le_codes[END_BLOCK_MARKER]);
    }
}
