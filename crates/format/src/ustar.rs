//! The subset of tar that bundles use: plain ustar headers for regular files.
//!
//! The `tar` crate encodes and decodes header fields; we walk the blocks
//! ourselves so that nothing the stream says is acted on before we checked
//! it (no PAX or GNU extensions, no links, no unpacking by the library).

use tar::{EntryType, Header};

use crate::layout::unsafe_path_reason;

pub const BLOCK: usize = 512;

/// Largest entry a plain ustar size field can state (11 octal digits).
pub const MAX_ENTRY_SIZE: u64 = 0o777_7777_7777;

/// Bytes of padding after `size` bytes of entry data.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// Encodes the header of a regular file entry. Every bundle entry has the
/// same owner, mode and time, so one set of contents has one byte stream.
pub fn encode_header(path: &str, size: u64, mtime: u64) -> std::io::Result<[u8; BLOCK]> {
    if path.len() > 100 || unsafe_path_reason(path.as_bytes()).is_some() {
        return Err(std::io::Error::other(format!(
            "unusable entry name {path:?}"
        )));
    }
    if size > MAX_ENTRY_SIZE {
        return Err(std::io::Error::other(format!(
            "entry {path} is {size} bytes; format v1 entries stop at {MAX_ENTRY_SIZE}"
        )));
    }
    let mut header = Header::new_ustar();
    header.set_path(path)?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_entry_type(EntryType::Regular);
    header.set_cksum();
    let mut block = [0u8; BLOCK];
    block.copy_from_slice(header.as_bytes());
    Ok(block)
}

/// A header that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedHeader {
    pub path: String,
    pub size: u64,
}

/// Why a header block was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Not a well-formed ustar header at all.
    Malformed(String),
    /// A well-formed header of a kind bundles never contain.
    Forbidden { path: String, kind: &'static str },
    /// A name that could escape a directory.
    UnsafePath { path: String, reason: &'static str },
    /// Owner or mode other than the fixed ones.
    Metadata { path: String, reason: String },
}

pub fn is_zero_block(block: &[u8; BLOCK]) -> bool {
    block.iter().all(|&b| b == 0)
}

/// Checks one header block strictly (bundle-spec §5).
pub fn check_header(block: &[u8; BLOCK]) -> Result<CheckedHeader, HeaderProblem> {
    let malformed = |m: &str| Err(HeaderProblem::Malformed(m.to_string()));
    let header = Header::from_byte_slice(block);
    let stored = header
        .cksum()
        .map_err(|_| HeaderProblem::Malformed("unreadable checksum".into()))?;
    let computed: u32 = block[..148]
        .iter()
        .chain([b' '; 8].iter())
        .chain(block[156..].iter())
        .map(|&b| u32::from(b))
        .sum();
    if stored != computed {
        return malformed("header checksum mismatch");
    }
    if &block[257..263] != b"ustar\0" || &block[263..265] != b"00" {
        return malformed("not a POSIX ustar header (GNU and v7 headers are not allowed)");
    }
    let name = trim_nul(&block[0..100]);
    let prefix = trim_nul(&block[345..500]);
    let shown = String::from_utf8_lossy(name).into_owned();
    let kind = match header.entry_type() {
        // Only '0': the old NUL type flag is a v7 relic bundles never use.
        EntryType::Regular if block[156] == b'0' => None,
        EntryType::Symlink => Some("symlink"),
        EntryType::Link => Some("hardlink"),
        EntryType::Directory => Some("directory"),
        EntryType::Char | EntryType::Block => Some("device"),
        EntryType::Fifo => Some("fifo"),
        EntryType::XHeader | EntryType::XGlobalHeader => Some("PAX extended header"),
        EntryType::GNULongName | EntryType::GNULongLink => Some("GNU long-name header"),
        EntryType::GNUSparse => Some("GNU sparse file"),
        _ => Some("non-regular"),
    };
    if let Some(kind) = kind {
        return Err(HeaderProblem::Forbidden { path: shown, kind });
    }
    if !prefix.is_empty() {
        return Err(HeaderProblem::UnsafePath {
            path: shown,
            reason: "ustar prefix field is not empty (bundle names fit in the name field)",
        });
    }
    if let Some(reason) = unsafe_path_reason(name) {
        return Err(HeaderProblem::UnsafePath {
            path: shown,
            reason,
        });
    }
    // Owner and mode are fixed, so a tar run as root cannot be talked into
    // making setuid files or files owned by someone else.
    let mode = octal(&block[100..108]);
    if mode != Some(0o644) {
        return Err(HeaderProblem::Metadata {
            path: shown,
            reason: format!("mode {:o} (bundle entries are 0644)", mode.unwrap_or(0)),
        });
    }
    if octal(&block[108..116]) != Some(0) || octal(&block[116..124]) != Some(0) {
        return Err(HeaderProblem::Metadata {
            path: shown,
            reason: "owner is not uid 0 / gid 0".into(),
        });
    }
    // Plain octal digits only: no GNU base-256, no signs, no 12th digit.
    let size = octal(&block[124..136])
        .filter(|&n| n <= MAX_ENTRY_SIZE)
        .ok_or_else(|| HeaderProblem::Malformed("size field is not 1 to 11 octal digits".into()))?;
    Ok(CheckedHeader { path: shown, size })
}

/// A numeric field: octal digits, then NULs or spaces to the end.
fn octal(field: &[u8]) -> Option<u64> {
    let end = field
        .iter()
        .position(|&b| b == 0 || b == b' ')
        .unwrap_or(field.len());
    let (digits, rest) = field.split_at(end);
    if digits.is_empty()
        || digits.len() > 11
        || !digits.iter().all(|b| (b'0'..=b'7').contains(b))
        || !rest.iter().all(|&b| b == 0 || b == b' ')
    {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(8)?.checked_add(u64::from(d - b'0'))
    })
}

fn trim_nul(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_headers_pass_the_check() {
        let block = encode_header("blobs/sha256/ab", 1234, 1_700_000_000).unwrap();
        assert_eq!(
            check_header(&block).unwrap(),
            CheckedHeader {
                path: "blobs/sha256/ab".into(),
                size: 1234
            }
        );
    }

    #[test]
    fn flipped_byte_fails_checksum() {
        let mut block = encode_header("index.json", 10, 0).unwrap();
        block[0] = b'j';
        assert!(matches!(
            check_header(&block),
            Err(HeaderProblem::Malformed(_))
        ));
    }

    #[test]
    fn link_and_pax_types_are_forbidden() {
        for (flag, kind) in [
            (b'2', "symlink"),
            (b'1', "hardlink"),
            (b'x', "PAX extended header"),
        ] {
            let mut header = Header::from_byte_slice(&encode_header("a", 0, 0).unwrap()).clone();
            header.set_entry_type(EntryType::new(flag));
            header.set_cksum();
            let mut block = [0u8; BLOCK];
            block.copy_from_slice(header.as_bytes());
            assert_eq!(
                check_header(&block),
                Err(HeaderProblem::Forbidden {
                    path: "a".into(),
                    kind
                })
            );
        }
    }

    #[test]
    fn setuid_mode_and_foreign_owner_are_refused() {
        let mut header = Header::from_byte_slice(&encode_header("a", 0, 0).unwrap()).clone();
        header.set_mode(0o4755);
        header.set_cksum();
        let mut block = [0u8; BLOCK];
        block.copy_from_slice(header.as_bytes());
        assert!(matches!(
            check_header(&block),
            Err(HeaderProblem::Metadata { .. })
        ));
        let mut header = Header::from_byte_slice(&encode_header("a", 0, 0).unwrap()).clone();
        header.set_uid(1000);
        header.set_cksum();
        block.copy_from_slice(header.as_bytes());
        assert!(matches!(
            check_header(&block),
            Err(HeaderProblem::Metadata { .. })
        ));
    }

    #[test]
    fn octal_fields_are_strict() {
        assert_eq!(octal(b"00000001750\0"), Some(0o1750));
        assert_eq!(octal(b"0000644 \0"), Some(0o644));
        assert_eq!(octal(b"+0000001750\0"), None);
        assert_eq!(octal(b"000000017500"), None);
        assert_eq!(octal(b"\0\0\0\0"), None);
    }

    #[test]
    fn padding_sizes() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
    }
}
