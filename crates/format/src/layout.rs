//! Names of the tar entries. A full bundle extracts to an OCI image layout,
//! so its entry names are the layout's file names.

use crate::digest::Digest;

/// Entry 0: the bundle manifest.
pub const MANIFEST_FILE: &str = "tender-manifest.json";
/// Entry 1: the fixed-size signature slot.
pub const SIGNATURES_FILE: &str = "tender-signatures.json";
/// The OCI image layout marker file.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// The OCI image layout's top-level index.
pub const OCI_INDEX_FILE: &str = "index.json";
/// The directory holding blobs, named by hex digest.
pub const BLOBS_DIR: &str = "blobs/sha256/";

/// An entry name the manifest may list, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryPath {
    OciLayout,
    OciIndex,
    Blob(Digest),
}

impl EntryPath {
    /// Accepts exactly the names the spec allows; anything else (other
    /// directories, `..`, absolute paths, uppercase hex) is refused here, so
    /// later code never joins an untrusted name onto a directory.
    pub fn parse(path: &str) -> Result<Self, String> {
        match path {
            OCI_LAYOUT_FILE => Ok(EntryPath::OciLayout),
            OCI_INDEX_FILE => Ok(EntryPath::OciIndex),
            _ => path
                .strip_prefix(BLOBS_DIR)
                .and_then(|hex| Digest::from_hex(hex).ok())
                .map(EntryPath::Blob)
                .ok_or_else(|| format!("{path:?} is not a name a bundle entry may have")),
        }
    }

    pub fn blob(digest: &Digest) -> String {
        format!("{BLOBS_DIR}{}", digest.hex())
    }
}

/// Why a tar member name is unsafe, whatever the manifest says. Checked
/// before the name is compared with the manifest, so the message names the
/// attack rather than a mismatch.
pub fn unsafe_path_reason(path: &[u8]) -> Option<&'static str> {
    if path.is_empty() {
        return Some("empty path");
    }
    if path.contains(&0) {
        return Some("NUL byte in path");
    }
    if path.contains(&b'\\') {
        return Some("backslash in path");
    }
    if path[0] == b'/' {
        return Some("absolute path");
    }
    for component in path.split(|&b| b == b'/') {
        match component {
            b".." => return Some("path climbs out with '..'"),
            b"." | b"" => return Some("path has an empty or '.' component"),
            _ => {}
        }
    }
    if std::str::from_utf8(path).is_err() {
        return Some("path is not UTF-8");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        let d = Digest::of(b"x");
        assert_eq!(
            EntryPath::parse(&EntryPath::blob(&d)).unwrap(),
            EntryPath::Blob(d)
        );
        assert_eq!(EntryPath::parse("index.json").unwrap(), EntryPath::OciIndex);
        for bad in [
            "blobs/sha256/../../etc/passwd",
            "blobs/sha512/00",
            "/index.json",
            "x",
        ] {
            assert!(EntryPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unsafe_paths_are_named() {
        assert_eq!(
            unsafe_path_reason(b"../x"),
            Some("path climbs out with '..'")
        );
        assert_eq!(
            unsafe_path_reason(b"a/../../x"),
            Some("path climbs out with '..'")
        );
        assert_eq!(unsafe_path_reason(b"/etc/passwd"), Some("absolute path"));
        assert_eq!(
            unsafe_path_reason(b"a//b"),
            Some("path has an empty or '.' component")
        );
        assert_eq!(unsafe_path_reason(b"blobs/sha256/ab"), None);
    }
}
