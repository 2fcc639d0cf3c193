//! Building a length-limited Huffman table from the histogram
//! (`buildCTable`, `huffSort`, `setMaxHeight` of `huff0/compress.go`) and
//! writing it as zstd's Huffman tree description (`cTable.write` of
//! `huff0/huff0.go`: weights FSE-coded with table log 6, or packed 4 bits
//! each when that is not smaller), with the size estimates the reuse
//! decision runs on. BSD-3-Clause (klauspost/compress), after Yann
//! Collet's BSD Huff0.

use super::{
    CTable, CTableEntry, HUFF_NODES_LEN, Huff0Error, MIN_TABLELOG, NodeElt, Scratch, TABLE_LOG_MAX,
};
use crate::klauspost_zstd::fse;
use crate::klauspost_zstd::fse_table::high_bit;

/// `huffNodesMask`.
const HUFF_NODES_MASK: u32 = HUFF_NODES_LEN as u32 - 1;
/// `maxFSETableLog`: the table log for coding weights.
const MAX_FSE_TABLE_LOG: u8 = 6;

impl Scratch {
    /// `minTableLog`: the smallest table log that represents the histogram.
    fn min_table_log(&self) -> u8 {
        let min_bits_src = high_bit(self.src_len as u32).wrapping_add(1);
        let min_bits_symbols = high_bit(u32::from(self.symbol_len.wrapping_sub(1))).wrapping_add(2);
        if min_bits_src < min_bits_symbols {
            return min_bits_src as u8;
        }
        min_bits_symbols as u8
    }

    /// `optimalTableLog`: sets `actual_table_log` (5 to 11).
    fn optimal_table_log(&mut self) {
        let mut table_log = self.table_log;
        let min_bits = self.min_table_log();
        let max_bits_src = (high_bit((self.src_len as u32).wrapping_sub(1)) as u8).wrapping_sub(1);
        if max_bits_src < table_log {
            // Accuracy can be reduced.
            table_log = max_bits_src;
        }
        if min_bits > table_log {
            table_log = min_bits;
        }
        // Need a minimum to safely represent all symbol values.
        self.actual_table_log = table_log.clamp(MIN_TABLELOG, TABLE_LOG_MAX);
    }

    /// `buildCTable`: a Huffman code for the histogram, no code longer than
    /// the chosen table log.
    // Exact port of klauspost's huff0.(*Scratch).buildCTable (huff0/compress.go):
    // kept line for line so it can be checked against the original.
    #[allow(clippy::too_many_lines)]
    pub(super) fn build_ctable(&mut self) -> Result<(), Huff0Error> {
        self.optimal_table_log();
        self.huff_sort();
        let symbol_len = usize::from(self.symbol_len);
        self.c_table.clear();
        self.c_table.resize(symbol_len, CTableEntry::default());

        let start_node = i32::from(self.symbol_len);
        let mut non_null_rank = self.symbol_len.wrapping_sub(1);

        // Go's huffNode is nodes[1..] and huffNode0 is nodes: the "-1"
        // index of huffNode is the barrier entry nodes[0].
        let nodes = &mut self.nodes[..HUFF_NODES_LEN + 1];
        let ix = |n: i32| (n + 1) as usize;

        while nodes[ix(i32::from(non_null_rank))].count == 0 {
            non_null_rank = non_null_rank.wrapping_sub(1);
        }

        let mut node_nb = start_node;
        let mut low_s = i32::from(non_null_rank);
        let node_root = node_nb + low_s - 1;
        let mut low_n = node_nb;
        nodes[ix(node_nb)].count = nodes[ix(low_s)]
            .count
            .wrapping_add(nodes[ix(low_s - 1)].count);
        nodes[ix(low_s)].parent = node_nb as u16;
        nodes[ix(low_s - 1)].parent = node_nb as u16;
        node_nb += 1;
        low_s -= 2;
        for n in node_nb..=node_root {
            nodes[ix(n)].count = 1 << 30;
        }
        // Fake entry, strong barrier.
        nodes[0].count = 1 << 31;

        // Create parents.
        while node_nb <= node_root {
            let n1 = if nodes[ix(low_s)].count < nodes[ix(low_n)].count {
                low_s -= 1;
                low_s + 1
            } else {
                low_n += 1;
                low_n - 1
            };
            let n2 = if nodes[ix(low_s)].count < nodes[ix(low_n)].count {
                low_s -= 1;
                low_s + 1
            } else {
                low_n += 1;
                low_n - 1
            };
            nodes[ix(node_nb)].count = nodes[ix(n1)].count.wrapping_add(nodes[ix(n2)].count);
            nodes[ix(n1)].parent = node_nb as u16;
            nodes[ix(n2)].parent = node_nb as u16;
            node_nb += 1;
        }

        // Distribute weights (unlimited tree height).
        nodes[ix(node_root)].nb_bits = 0;
        let mut n = node_root - 1;
        while n >= start_node {
            let parent = i32::from(nodes[ix(n)].parent);
            nodes[ix(n)].nb_bits = nodes[ix(parent)].nb_bits.wrapping_add(1);
            n -= 1;
        }
        for n in 0..=i32::from(non_null_rank) {
            let parent = i32::from(nodes[ix(n)].parent);
            nodes[ix(n)].nb_bits = nodes[ix(parent)].nb_bits.wrapping_add(1);
        }
        self.actual_table_log = self.set_max_height(usize::from(non_null_rank));
        let max_nb_bits = self.actual_table_log;

        // Fill the result into the tree (val, nbBits).
        if max_nb_bits > TABLE_LOG_MAX {
            return Err(Huff0Error::MaxNbBits(max_nb_bits));
        }
        let huff_node = &self.nodes[1..=HUFF_NODES_LEN];
        let mut nb_per_rank = [0u16; TABLE_LOG_MAX as usize + 1];
        let mut val_per_rank = [0u16; 16];
        for v in &huff_node[..=usize::from(non_null_rank)] {
            nb_per_rank[usize::from(v.nb_bits)] += 1;
        }
        // The starting value within each rank.
        let mut min = 0u16;
        for n in (1..=usize::from(max_nb_bits)).rev() {
            val_per_rank[n] = min;
            min = min.wrapping_add(nb_per_rank[n]);
            min >>= 1;
        }

        // Push nbBits per symbol, in symbol order.
        for v in &huff_node[..=usize::from(non_null_rank)] {
            self.c_table[usize::from(v.symbol)].n_bits = v.nb_bits;
        }

        // Assign values within each rank, in symbol order.
        for e in self.c_table.iter_mut() {
            let nbits = usize::from(e.n_bits & 15);
            let v = val_per_rank[nbits];
            e.val = v;
            val_per_rank[nbits] = v.wrapping_add(1);
        }
        Ok(())
    }

    /// `huffSort`: symbols into `nodes[1..]` by decreasing count (bucketed
    /// by the count's bit length, then insertion within a bucket).
    fn huff_sort(&mut self) {
        #[derive(Clone, Copy, Default)]
        struct RankPos {
            base: u32,
            current: u32,
        }

        let nodes = &mut self.nodes[1..=HUFF_NODES_LEN];
        let count = &self.count[..usize::from(self.symbol_len)];

        // Sort into buckets based on the length of the symbol count.
        let mut rank = [RankPos::default(); 32];
        for &v in count {
            let r = high_bit(v.wrapping_add(1)) & 31;
            rank[r as usize].base += 1;
        }
        // maxBitLength is log2(BlockSizeMax) + 1.
        const MAX_BIT_LENGTH: usize = 18 + 1;
        for n in (1..=MAX_BIT_LENGTH).rev() {
            rank[n - 1].base = rank[n - 1].base.wrapping_add(rank[n].base);
        }
        for r in &mut rank[..MAX_BIT_LENGTH] {
            r.current = r.base;
        }
        for (n, &c) in count.iter().enumerate() {
            let r = (high_bit(c.wrapping_add(1)).wrapping_add(1) & 31) as usize;
            let mut pos = rank[r].current;
            rank[r].current += 1;
            let mut prev = nodes[(pos.wrapping_sub(1) & HUFF_NODES_MASK) as usize];
            while pos > rank[r].base && c > prev.count {
                nodes[(pos & HUFF_NODES_MASK) as usize] = prev;
                pos -= 1;
                prev = nodes[(pos.wrapping_sub(1) & HUFF_NODES_MASK) as usize];
            }
            nodes[(pos & HUFF_NODES_MASK) as usize] = NodeElt {
                count: c,
                symbol: n as u8,
                ..NodeElt::default()
            };
        }
    }

    /// `setMaxHeight`: limits code lengths to `actual_table_log`, repaying
    /// the cost by lengthening the cheapest shorter codes (Huff0's
    /// `HUF_setMaxHeight`); returns the longest code length.
    // Exact port of klauspost's huff0.(*Scratch).setMaxHeight (huff0/compress.go):
    // kept line for line so it can be checked against the original.
    #[allow(clippy::too_many_lines)]
    fn set_max_height(&mut self, last_non_null: usize) -> u8 {
        let max_nb_bits = self.actual_table_log;
        let huff_node = &mut self.nodes[1..=HUFF_NODES_LEN];

        let largest_bits = huff_node[last_non_null].nb_bits;

        // Early exit: no element longer than maxNbBits.
        if largest_bits <= max_nb_bits {
            return largest_bits;
        }
        let mut total_cost: i64 = 0;
        let base_cost: i64 = 1 << (largest_bits - max_nb_bits);
        let mut n = last_non_null as u32;

        while huff_node[n as usize].nb_bits > max_nb_bits {
            total_cost += base_cost - (1i64 << (largest_bits - huff_node[n as usize].nb_bits));
            huff_node[n as usize].nb_bits = max_nb_bits;
            n = n.wrapping_sub(1);
        }
        // n stops at huffNode[n].nbBits <= maxNbBits.
        while huff_node[n as usize].nb_bits == max_nb_bits {
            n = n.wrapping_sub(1);
        }
        // n ends at the index of the smallest symbol using < maxNbBits.

        // Renormalize totalCost (necessarily a multiple of baseCost).
        total_cost >>= largest_bits - max_nb_bits;

        // Repay the normalized cost.
        const NO_SYMBOL: u32 = 0xF0F0_F0F0;
        let mut rank_last = [NO_SYMBOL; TABLE_LOG_MAX as usize + 2];

        // The position of the last (smallest) symbol per rank.
        {
            let mut current_nb_bits = max_nb_bits;
            for pos in (0..=n as usize).rev() {
                if huff_node[pos].nb_bits >= current_nb_bits {
                    continue;
                }
                current_nb_bits = huff_node[pos].nb_bits; // < maxNbBits
                rank_last[usize::from(max_nb_bits - current_nb_bits)] = pos as u32;
            }
        }

        while total_cost > 0 {
            let mut n_bits_to_decrease = (high_bit(total_cost as u32) as u8).wrapping_add(1);

            while n_bits_to_decrease > 1 {
                let high_pos = rank_last[usize::from(n_bits_to_decrease)];
                let low_pos = rank_last[usize::from(n_bits_to_decrease - 1)];
                if high_pos == NO_SYMBOL {
                    n_bits_to_decrease -= 1;
                    continue;
                }
                if low_pos == NO_SYMBOL {
                    break;
                }
                let high_total = huff_node[high_pos as usize].count;
                let low_total = 2u32.wrapping_mul(huff_node[low_pos as usize].count);
                if high_total <= low_total {
                    break;
                }
                n_bits_to_decrease -= 1;
            }
            // Only when no rank-1 symbol is left: find the closest one
            // (there is necessarily at least one).
            while n_bits_to_decrease <= TABLE_LOG_MAX
                && rank_last[usize::from(n_bits_to_decrease)] == NO_SYMBOL
            {
                n_bits_to_decrease += 1;
            }
            let nbd = usize::from(n_bits_to_decrease);
            total_cost -= 1 << (n_bits_to_decrease - 1);
            if rank_last[nbd - 1] == NO_SYMBOL {
                // This rank is no longer empty.
                rank_last[nbd - 1] = rank_last[nbd];
            }
            let node = &mut huff_node[rank_last[nbd] as usize];
            node.nb_bits = node.nb_bits.wrapping_add(1);
            if rank_last[nbd] == 0 {
                // Special case: reached the largest symbol.
                rank_last[nbd] = NO_SYMBOL;
            } else {
                rank_last[nbd] -= 1;
                if huff_node[rank_last[nbd] as usize].nb_bits
                    != max_nb_bits.wrapping_sub(n_bits_to_decrease)
                {
                    // This rank is now empty.
                    rank_last[nbd] = NO_SYMBOL;
                }
            }
        }

        while total_cost < 0 {
            // Cost correction sometimes overshoots.
            if rank_last[1] == NO_SYMBOL {
                // No rank-1 symbol (using maxNbBits-1): make one from the
                // largest rank 0 (using maxNbBits).
                while huff_node[n as usize].nb_bits == max_nb_bits {
                    n = n.wrapping_sub(1);
                }
                let node = &mut huff_node[n.wrapping_add(1) as usize];
                node.nb_bits = node.nb_bits.wrapping_sub(1);
                rank_last[1] = n.wrapping_add(1);
                total_cost += 1;
                continue;
            }
            let node = &mut huff_node[rank_last[1] as usize + 1];
            node.nb_bits = node.nb_bits.wrapping_sub(1);
            rank_last[1] += 1;
            total_cost += 1;
        }
        max_nb_bits
    }

    /// Fills `huff_weight` and the fse histogram from the table's code
    /// lengths and tries to FSE-code the weights: the coded length, or
    /// `None` when the 4-bit packing must be used (`cTable.write` and
    /// `estTableSize` share this). Returns the number of weights too (the
    /// last symbol's is implied).
    fn code_weights(&mut self) -> (u8, Option<usize>) {
        let huff_log = self.actual_table_log;
        // Last weight is not saved.
        let max_symbol_value = self.symbol_len.wrapping_sub(1) as u8;
        // Convert code lengths to weights.
        let mut bits_to_weight = [0u8; TABLE_LOG_MAX as usize + 1];
        for n in 1..=huff_log {
            bits_to_weight[usize::from(n)] = huff_log + 1 - n;
        }

        // Acquire the histogram for FSE.
        let hist = self.fse.histogram();
        hist[..16].fill(0);
        for n in 0..usize::from(max_symbol_value) {
            let v = bits_to_weight[usize::from(self.c_table[n].n_bits)] & 15;
            self.huff_weight[n] = v;
            hist[usize::from(v)] += 1;
        }

        // FSE-compress if feasible.
        if max_symbol_value >= 2 {
            let mut huff_max_cnt = 0u32;
            let mut huff_max = 0u8;
            for (i, &v) in hist[..16].iter().enumerate() {
                if v == 0 {
                    continue;
                }
                huff_max = i as u8;
                huff_max_cnt = huff_max_cnt.max(v);
            }
            self.fse.histogram_finished(huff_max, huff_max_cnt as usize);
            self.fse.table_log = MAX_FSE_TABLE_LOG;
            if let Ok(b) = fse::compress(
                &self.huff_weight[..usize::from(max_symbol_value)],
                &mut self.fse,
            ) && b.len() < usize::from(self.symbol_len >> 1)
            {
                return (max_symbol_value, Some(b.len()));
            }
            // Unable to compress (RLE/incompressible).
        }
        (max_symbol_value, None)
    }

    /// `cTable.write`: appends the table description of `c_table` to `out`.
    pub(super) fn write_ctable(&mut self) -> Result<(), Huff0Error> {
        let (max_symbol_value, fse_len) = self.code_weights();
        if let Some(len) = fse_len {
            self.out.push(len as u8);
            self.out.extend_from_slice(&self.fse.out);
            return Ok(());
        }
        // Write raw values as 4 bits (max: 15).
        if max_symbol_value > (256 - 128) as u8 {
            // Should not happen: likely means the source cannot be compressed.
            return Err(Huff0Error::Incompressible);
        }
        // Special case, pack weights 4 bits/weight.
        self.out.push(128 | max_symbol_value.wrapping_sub(1));
        // Be sure it doesn't cause msan issue in final combination.
        self.huff_weight[usize::from(max_symbol_value)] = 0;
        for n in (0..usize::from(max_symbol_value)).step_by(2) {
            self.out
                .push((self.huff_weight[n] << 4) | self.huff_weight[n + 1]);
        }
        Ok(())
    }

    /// `cTable.estTableSize`: the size `write_ctable` would write.
    #[cfg(test)]
    pub(super) fn est_table_size(&mut self) -> Result<usize, Huff0Error> {
        let (max_symbol_value, fse_len) = self.code_weights();
        if let Some(len) = fse_len {
            return Ok(1 + len);
        }
        if max_symbol_value > (256 - 128) as u8 {
            return Err(Huff0Error::Incompressible);
        }
        Ok(1 + usize::from(max_symbol_value / 2))
    }
}

/// `cTable.estimateSize`: the size in bytes of the histogram `hist` coded
/// with `c`.
pub(super) fn estimate_size(c: &CTable, hist: &[u32]) -> usize {
    let mut nb_bits = 7u32;
    for (e, &h) in c[..hist.len()].iter().zip(hist) {
        nb_bits = nb_bits.wrapping_add(u32::from(e.n_bits).wrapping_mul(h));
    }
    (nb_bits >> 3) as usize
}
