//! RFC 1951 §3.2.7: the run-length coding of a dynamic block's code
//! lengths, exactly as Go writes it (`generateCodegen`'s loop, the same in
//! the standard library and in klauspost/compress).

/// Ends the lengths in a codegen buffer (Go's `badCode`).
pub(crate) const END: u8 = 255;

/// Run-length codes, in place, the code lengths in `codegen` (the literal
/// then the offset code lengths, ended by [`END`]) into code-length
/// symbols (0-15, and 16/17/18 each followed by its repeat count), ended by
/// [`END`] again; `count(symbol)` is called for every symbol written.
pub(crate) fn run_length_code(codegen: &mut [u8], mut count: impl FnMut(usize)) {
    let mut size = codegen[0];
    let mut run: i32 = 1;
    let mut out_index = 0usize;
    let mut in_index = 1usize;
    while size != END {
        let next_size = codegen[in_index];
        in_index += 1;
        if next_size == size {
            run += 1;
            continue;
        }
        if size != 0 {
            codegen[out_index] = size;
            out_index += 1;
            count(size as usize);
            run -= 1;
            while run >= 3 {
                let n = run.min(6);
                codegen[out_index] = 16;
                codegen[out_index + 1] = (n - 3) as u8;
                out_index += 2;
                count(16);
                run -= n;
            }
        } else {
            while run >= 11 {
                let n = run.min(138);
                codegen[out_index] = 18;
                codegen[out_index + 1] = (n - 11) as u8;
                out_index += 2;
                count(18);
                run -= n;
            }
            if run >= 3 {
                codegen[out_index] = 17;
                codegen[out_index + 1] = (run - 3) as u8;
                out_index += 2;
                count(17);
                run = 0;
            }
        }
        run -= 1;
        while run >= 0 {
            codegen[out_index] = size;
            out_index += 1;
            count(size as usize);
            run -= 1;
        }
        size = next_size;
        run = 1;
    }
    codegen[out_index] = END;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_become_repeat_codes() {
        // 8 eights, 20 zeros, 2 fives, 4 zeros.
        let mut codegen: Vec<u8> =
            [vec![8; 8], vec![0; 20], vec![5; 2], vec![0; 4], vec![END]].concat();
        let mut freq = [0u32; 19];
        run_length_code(&mut codegen, |s| freq[s] += 1);
        let end = codegen.iter().position(|&c| c == END).unwrap();
        // 8, then 16 (repeat 6: 6-3=3), then 8 once more; 18 (20-11=9);
        // 5, 5; 17 (4-3=1).
        assert_eq!(&codegen[..end], &[8, 16, 3, 8, 18, 9, 5, 5, 17, 1]);
        assert_eq!(
            (freq[8], freq[16], freq[18], freq[5], freq[17]),
            (2, 1, 1, 2, 1)
        );
    }
}
