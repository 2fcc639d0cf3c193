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
        EntryType::Regular => None,
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
    // Base-256 sizes are a GNU extension; bundles state sizes in octal.
    if block[124] & 0x80 != 0 {
        return malformed("size field uses the GNU base-256 extension");
    }
    let size = header
        .size()
        .map_err(|_| HeaderProblem::Malformed("unreadable size field".into()))?;
    Ok(CheckedHeader { path: shown, size })
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
    fn padding_sizes() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
    }
}
