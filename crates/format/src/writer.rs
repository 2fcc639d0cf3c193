//! Writes a bundle: manifest, signature slot, then every listed entry in
//! order, each hashed again on the way out so a damaged staging file can
//! never be sealed into a signed bundle — unless its caller hashed that
//! very file moments before ([`EntrySource::Checked`]).

use crate::FromIo;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::digest::Hasher;
use crate::error::{Error, Rejection};
use crate::layout::{MANIFEST_FILE, SIGNATURES_FILE};
use crate::manifest::{BundleManifest, Entry};
use crate::reader::BundleReader;
use crate::signatures::SignatureSlot;
use crate::ustar::{self, BLOCK};

/// Where the bytes of a listed entry come from.
pub enum EntrySource {
    /// Hashed on the way out and checked against the manifest.
    Read(Box<dyn Read>),
    /// A file whose bytes the caller hashed against this entry's digest as
    /// it wrote them (a download into its own staging directory, moments
    /// ago): only its length is checked. Copied by the kernel
    /// (`copy_file_range`, `splice`) where the output is a file or a pipe,
    /// so the bytes pass through neither the hasher nor user space again.
    Checked(File),
}

/// Writes a whole bundle to `out`. `open` supplies each entry's bytes.
/// Returns the number of bytes written.
///
/// `out` stays a type parameter: the standard library copies a checked
/// file into a `BufWriter<&File>` or a `BufWriter<StdoutLock>` in the
/// kernel only when it sees those types.
pub fn write_bundle<W: Write>(
    out: &mut W,
    manifest_bytes: &[u8],
    slot: &SignatureSlot,
    open: &mut dyn FnMut(&Entry) -> io::Result<EntrySource>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, Error> {
    let manifest = BundleManifest::from_canonical_bytes(manifest_bytes).map_err(Rejection::from)?;
    let mtime = unix_time(&manifest.created);
    let mut written = 0u64;
    let slot_bytes = slot
        .encode(manifest.signature_slot_size)
        .map_err(Rejection::from)?;
    written += write_entry(out, MANIFEST_FILE, mtime, &mut &manifest_bytes[..], None)?;
    written += write_entry(out, SIGNATURES_FILE, mtime, &mut &slot_bytes[..], None)?;
    let mut payload = 0u64;
    for entry in &manifest.entries {
        let source = open(entry).map_err(|e| Error::io(format!("opening {}", entry.path), e))?;
        written += match source {
            EntrySource::Read(mut source) => {
                write_entry(out, &entry.path, mtime, &mut source, Some(entry))?
            }
            EntrySource::Checked(file) => write_checked_entry(out, mtime, file, entry)?,
        };
        payload += entry.size;
        progress(payload);
    }
    let end = [0u8; 2 * BLOCK];
    out.write_all(&end)
        .map_err(|e| Error::io("writing the bundle", e))?;
    out.flush()
        .map_err(|e| Error::io("writing the bundle", e))?;
    Ok(written + end.len() as u64)
}

/// Writes one entry. For listed entries the bytes are counted and hashed
/// against the manifest as they stream through.
fn write_entry<W: Write>(
    out: &mut W,
    path: &str,
    mtime: u64,
    source: &mut dyn Read,
    listed: Option<&Entry>,
) -> Result<u64, Error> {
    let size = match listed {
        Some(e) => e.size,
        None => {
            // Small in-memory entries: read them whole to learn the size.
            let mut data = Vec::new();
            source
                .read_to_end(&mut data)
                .map_err(|e| Error::io(format!("reading {path}"), e))?;
            return write_entry_bytes(out, path, mtime, &data);
        }
    };
    let wio = |e| Error::io("writing the bundle", e);
    let header = ustar::encode_header(path, size, mtime).map_err(wio)?;
    out.write_all(&header).map_err(wio)?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("reading {path}"), e)),
        };
        if hasher.len() + n as u64 > size {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(wio)?;
    }
    let (digest, len) = hasher.finish();
    let entry = listed.expect("listed");
    if len != size || digest != entry.digest {
        return Err(Error::Sink {
            context: format!("sealing {path}"),
            source: io::Error::other(format!(
                "source holds {len} bytes with digest {digest}, the manifest lists {size} bytes with {}",
                entry.digest
            )),
        });
    }
    out.write_all(&[0u8; BLOCK][..ustar::padding(size)])
        .map_err(wio)?;
    Ok((BLOCK + size as usize + ustar::padding(size)) as u64)
}

/// Writes one entry from a file already checked against it; see
/// [`EntrySource::Checked`].
fn write_checked_entry<W: Write>(
    out: &mut W,
    mtime: u64,
    file: File,
    entry: &Entry,
) -> Result<u64, Error> {
    let path = &entry.path;
    let wio = |e| Error::io("writing the bundle", e);
    let len = file
        .metadata()
        .map_err(|e| Error::io(format!("reading {path}"), e))?
        .len();
    let wrong_size = |len: u64| Error::Sink {
        context: format!("sealing {path}"),
        source: io::Error::other(format!(
            "source holds {len} bytes, the manifest lists {}",
            entry.size
        )),
    };
    if len != entry.size {
        return Err(wrong_size(len));
    }
    out.write_all(&ustar::encode_header(path, entry.size, mtime).map_err(wio)?)
        .map_err(wio)?;
    let copied = io::copy(&mut file.take(entry.size), out).map_err(wio)?;
    if copied != entry.size {
        return Err(wrong_size(copied)); // truncated since the check above
    }
    out.write_all(&[0u8; BLOCK][..ustar::padding(entry.size)])
        .map_err(wio)?;
    Ok(BLOCK as u64 + entry.size + ustar::padding(entry.size) as u64)
}

fn write_entry_bytes<W: Write>(
    out: &mut W,
    path: &str,
    mtime: u64,
    data: &[u8],
) -> Result<u64, Error> {
    let wio = |e| Error::io("writing the bundle", e);
    let size = data.len() as u64;
    out.write_all(&ustar::encode_header(path, size, mtime).map_err(wio)?)
        .map_err(wio)?;
    out.write_all(data).map_err(wio)?;
    out.write_all(&[0u8; BLOCK][..ustar::padding(size)])
        .map_err(wio)?;
    Ok((BLOCK + data.len() + ustar::padding(size)) as u64)
}

fn unix_time(rfc3339: &str) -> u64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp().max(0) as u64)
        .unwrap_or(0)
}

/// A bundle file opened to add signatures: only the signature slot is
/// rewritten, in place, so blobs are neither re-read nor re-written.
pub struct SlotEditor {
    file: File,
    manifest: BundleManifest,
    manifest_bytes: Vec<u8>,
    slot: SignatureSlot,
    slot_offset: u64,
}

impl SlotEditor {
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io_at("opening", path, e))?;
        // One signer at a time: two concurrent `tender sign` runs would
        // each rewrite the slot from what they read, losing a signature.
        file.lock().map_err(|e| Error::io_at("locking", path, e))?;
        let reader = BundleReader::open(BufReader::new(&file))?;
        Ok(SlotEditor {
            manifest: reader.manifest().clone(),
            manifest_bytes: reader.manifest_bytes().to_vec(),
            slot: reader.signatures().clone(),
            slot_offset: reader.slot_offset(),
            file,
        })
    }

    pub fn manifest(&self) -> &BundleManifest {
        &self.manifest
    }

    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    pub fn slot_mut(&mut self) -> &mut SignatureSlot {
        &mut self.slot
    }

    /// Writes the slot back and syncs the file. The new slot is encoded
    /// first, so a slot that would overflow leaves the file untouched.
    pub fn save(mut self) -> Result<(), Error> {
        // A full slot is a limit of this bundle, not a sign of tampering.
        let bytes = self
            .slot
            .encode(self.manifest.signature_slot_size)
            .map_err(|e| Error::io("adding the signature", std::io::Error::other(e)))?;
        let wio = |e| Error::io("rewriting the signature slot", e);
        self.file
            .seek(SeekFrom::Start(self.slot_offset))
            .map_err(wio)?;
        self.file.write_all(&bytes).map_err(wio)?;
        self.file.sync_all().map_err(wio)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom};

    use super::*;
    use crate::manifest::tests::sample;
    use crate::reader::DiscardSink;

    /// Writes the sample manifest's bundle to a file, its blob entry from
    /// a checked file holding `blob`.
    fn bundle_with_checked_blob(dir: &Path, blob: &[u8]) -> Result<File, Error> {
        let manifest = sample();
        let manifest_bytes = manifest.to_canonical_bytes().unwrap();
        let mut staged = tempfile::tempfile_in(dir).unwrap();
        staged.write_all(blob).unwrap();
        let mut staged = Some(staged);
        let mut open = |entry: &Entry| -> io::Result<EntrySource> {
            Ok(match entry.path.as_str() {
                "oci-layout" => {
                    EntrySource::Read(Box::new(&br#"{"imageLayoutVersion":"1.0.0"}"#[..]))
                }
                "index.json" => EntrySource::Read(Box::new(&b"{}"[..])),
                _ => {
                    let mut file = staged.take().expect("one blob");
                    file.seek(SeekFrom::Start(0))?;
                    EntrySource::Checked(file)
                }
            })
        };
        let out = tempfile::tempfile_in(dir).unwrap();
        {
            let mut w = io::BufWriter::new(&out);
            write_bundle(
                &mut w,
                &manifest_bytes,
                &SignatureSlot::default(),
                &mut open,
                &mut |_| {},
            )?;
        }
        Ok(out)
    }

    fn read_back(mut file: File) -> Result<(), Error> {
        file.seek(SeekFrom::Start(0)).unwrap();
        let reader = BundleReader::open(BufReader::new(file))?;
        let discard = |_: usize, _: &Entry| -> io::Result<Box<dyn crate::EntrySink>> {
            Ok(Box::new(DiscardSink))
        };
        reader.read_entries(&discard, &mut |_| {}).map(|_| ())
    }

    #[test]
    fn a_checked_file_is_copied_whole() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = bundle_with_checked_blob(dir.path(), b"manifests").unwrap();
        read_back(bundle).unwrap();
    }

    #[test]
    fn a_checked_file_of_the_wrong_length_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for blob in [&b"manifest"[..], b"manifests!"] {
            let err = bundle_with_checked_blob(dir.path(), blob).unwrap_err();
            let cause = std::error::Error::source(&err).map(|s| s.to_string());
            assert_eq!(
                cause,
                Some(format!(
                    "source holds {} bytes, the manifest lists 9",
                    blob.len()
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn a_checked_file_is_trusted_but_the_reader_still_catches_a_lie() {
        // The writer takes the caller's word for a checked file's bytes;
        // every reader (import, verify) hashes them anyway.
        let dir = tempfile::tempdir().unwrap();
        let bundle = bundle_with_checked_blob(dir.path(), b"manifestZ").unwrap();
        let err = read_back(bundle).unwrap_err();
        assert!(err.to_string().contains("digest"), "{err}");
    }
}
