//! ed25519 key pairs on disk and their ids.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use tender_format::FromIo;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};
use tender_format::signatures::{Signature, signing_input};

pub use crate::error::TooOpen;
use crate::error::TrustError;

/// `ed25519:` and the first 16 bytes of sha256 of the raw 32-byte public
/// key, in hex. Derived, never chosen, so a policy cannot name a key id
/// that belongs to another key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    fn of(key: &VerifyingKey) -> Self {
        let hash = Sha256::digest(key.as_bytes());
        KeyId(format!("ed25519:{}", hex::encode(&hash[..16])))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A public key that can check signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl PublicKey {
    pub fn from_pem(pem: &str, origin: &Path) -> Result<Self, TrustError> {
        let key =
            VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| TrustError::BadKey {
                path: origin.to_path_buf(),
                what: "public",
                reason: e.to_string(),
            })?;
        Ok(PublicKey {
            id: KeyId::of(&key),
            key,
        })
    }

    pub fn read(path: &Path) -> Result<Self, TrustError> {
        let pem =
            fs::read_to_string(path).map_err(|e| TrustError::io_at("reading key", path, e))?;
        Self::from_pem(&pem, path)
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("an ed25519 public key always encodes")
    }

    /// Checks a signature over a manifest in a role. Strict verification:
    /// no malleable or small-order signatures.
    pub fn verifies(&self, role: &str, manifest_bytes: &[u8], sig_hex: &str) -> bool {
        self.verifies_message(&signing_input(role, manifest_bytes), sig_hex)
    }

    /// Checks a signature over exact bytes (a signing input with its
    /// context line already in front). Strict, as above.
    pub fn verifies_message(&self, message: &[u8], sig_hex: &str) -> bool {
        let mut raw = [0u8; 64];
        if hex::decode_to_slice(sig_hex, &mut raw).is_err() {
            return false;
        }
        let sig = ed25519_dalek::Signature::from_bytes(&raw);
        self.key.verify_strict(message, &sig).is_ok()
    }
}

/// A private signing key.
pub struct PrivateKey {
    key: SigningKey,
    name: String,
}

impl PrivateKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate(name: &str) -> Result<Self, TrustError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| TrustError::Random(e.to_string()))?;
        Ok(PrivateKey {
            key: SigningKey::from_bytes(&seed),
            name: name.to_string(),
        })
    }

    /// A key from a fixed seed: only for reproducible test vectors, whose
    /// signatures must come out byte-identical on every run.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Self {
        PrivateKey {
            key: SigningKey::from_bytes(&seed),
            name: name.to_string(),
        }
    }

    /// Reads a key that must be its owner's alone: refused, like ssh
    /// refuses it, when group or others may read or write the file (the
    /// site key: see `docs/site.md`).
    pub fn read_owner_only(path: &Path) -> Result<Self, TrustError> {
        if let Some(open) = too_open(path) {
            return Err(TrustError::KeyTooOpen(open));
        }
        Self::read(path)
    }

    /// Reads `NAME.key`; the key's name is the file stem. Its mode is not
    /// checked here: see [`too_open`] and [`PrivateKey::read_owner_only`].
    pub fn read(path: &Path) -> Result<Self, TrustError> {
        let pem =
            fs::read_to_string(path).map_err(|e| TrustError::io_at("reading key", path, e))?;
        let key = SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| TrustError::BadKey {
            path: path.to_path_buf(),
            what: "private",
            reason: e.to_string(),
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(PrivateKey { key, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public(&self) -> PublicKey {
        let key = self.key.verifying_key();
        PublicKey {
            id: KeyId::of(&key),
            key,
        }
    }

    /// Signs a manifest in a role, now.
    pub fn sign(&self, role: &str, manifest_bytes: &[u8], signer: &str) -> Signature {
        self.sign_at(role, manifest_bytes, signer, &now_rfc3339())
    }

    /// Signs with a given `signed_at` (informational, not signed).
    pub fn sign_at(&self, role: &str, manifest_bytes: &[u8], signer: &str, at: &str) -> Signature {
        self.sign_message(role, &signing_input(role, manifest_bytes), signer, at)
    }

    /// Signs exact bytes (a signing input with its context line in front):
    /// a policy update's root signature.
    pub fn sign_message(&self, role: &str, message: &[u8], signer: &str, at: &str) -> Signature {
        let sig = self.key.sign(message);
        Signature {
            key_id: self.public().id().to_string(),
            role: role.to_string(),
            signer: signer.to_string(),
            signed_at: at.to_string(),
            sig: hex::encode(sig.to_bytes()),
        }
    }

    /// Writes `DIR/NAME.key` (mode 0600) and `DIR/NAME.pub`, refusing to
    /// overwrite either: losing a release key is worse than an error.
    pub fn write_pair(&self, dir: &Path) -> Result<(PathBuf, PathBuf), TrustError> {
        let key_path = dir.join(format!("{}.key", self.name));
        let pub_path = dir.join(format!("{}.pub", self.name));
        for path in [&key_path, &pub_path] {
            if path.exists() {
                return Err(TrustError::KeyExists { path: path.clone() });
            }
        }
        // PKCS#8 v1 (seed only): OpenSSL 3.0 refuses the v2 form that
        // carries the public key too, and openssl must be able to read it.
        let v1 = KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        let pem = v1
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an ed25519 private key always encodes");
        write_new(&key_path, pem.as_bytes(), 0o600)?;
        write_new(&pub_path, self.public().to_pem().as_bytes(), 0o644)?;
        Ok((key_path, pub_path))
    }
}

/// Whether a private key file is open to group or others (never on
/// systems without Unix modes). A file that cannot be examined is not
/// judged here: reading it reports that.
pub fn too_open(path: &Path) -> Option<TooOpen> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).ok()?.permissions().mode() & 0o7777;
        (mode & 0o077 != 0).then(|| TooOpen {
            path: path.to_path_buf(),
            mode,
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), TrustError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    let mut file = options
        .open(path)
        .map_err(|e| TrustError::io_at("creating key", path, e))?;
    file.write_all(data)
        .and_then(|_| file.sync_all())
        .map_err(|e| TrustError::io_at("writing key", path, e))
}

/// Now, as RFC 3339 UTC with seconds precision.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero nanoseconds is valid");
    now.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC times format")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_key_open_to_others_is_named_with_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (key_path, _) = PrivateKey::generate("site")
            .unwrap()
            .write_pair(dir.path())
            .unwrap();
        assert_eq!(too_open(&key_path), None);
        assert!(PrivateKey::read_owner_only(&key_path).is_ok());
        for mode in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&key_path, fs::Permissions::from_mode(mode)).unwrap();
            let open = too_open(&key_path).expect("too open");
            assert_eq!(open.mode, mode);
            let err = PrivateKey::read_owner_only(&key_path).err().unwrap();
            assert!(matches!(err, TrustError::KeyTooOpen(_)), "{err}");
            assert!(
                err.to_string().starts_with(&format!(
                    "permissions {mode:04o} for {} are too open",
                    key_path.display()
                )),
                "{err}"
            );
            // A hub key is still readable: the CLI warns.
            assert!(PrivateKey::read(&key_path).is_ok());
        }
        // Owner-only modes stricter than 0600 are fine.
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(too_open(&key_path), None);
    }

    #[test]
    fn key_pair_round_trips_through_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate("hub").unwrap();
        let (key_path, pub_path) = key.write_pair(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = PrivateKey::read(&key_path).unwrap();
        let public = PublicKey::read(&pub_path).unwrap();
        assert_eq!(again.public(), public);
        assert!(key.write_pair(dir.path()).is_err(), "must not overwrite");

        let sig = again.sign("release", b"manifest", "ops");
        assert!(public.verifies("release", b"manifest", &sig.sig));
        assert!(!public.verifies("approver", b"manifest", &sig.sig));
        assert!(!public.verifies("release", b"manifest2", &sig.sig));
        assert!(sig.key_id.starts_with("ed25519:") && sig.key_id.len() == 8 + 32);
    }
}
