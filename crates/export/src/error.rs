//! Errors of the export crate. See `tender_format::error` for the rules.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Io(#[from] tender_format::IoError),
    #[error("{path} is not a usable OCI image layout: {reason}")]
    BadLayout { path: PathBuf, reason: String },
    /// The fleet spec, a render, or a manifest set (`tender_render`).
    #[error(transparent)]
    Render(#[from] tender_render::RenderError),
    #[error(
        "sequence {requested} is not above {last}, the last exported on channel {channel}; sites would refuse it"
    )]
    Sequence {
        channel: String,
        requested: u64,
        last: u64,
    },
    #[error("image {image} (used by {used_by}): {reason}")]
    Image {
        image: String,
        used_by: String,
        reason: String,
    },
    /// Several images could not be pulled: every one, each an `Image`
    /// with its reason, in one line.
    #[error(
        "{} images could not be pulled: {}",
        .0.len(),
        .0.iter().map(|e| tender_format::error::chain_message(e)).collect::<Vec<_>>().join("; ")
    )]
    Images(Vec<ExportError>),
    /// Two images that would have one name at a site (`site_paths`).
    #[error(
        "images {first} (used by {first_used_by}) and {second} (used by {second_used_by}) \
         would meet at a site: {reason}"
    )]
    SiteCollision {
        first: String,
        first_used_by: String,
        second: String,
        second_used_by: String,
        reason: String,
    },
    #[error("no signing key: pass --key (or use --dry-run)")]
    NoKey,
    #[error(transparent)]
    Oci(#[from] tender_oci::OciError),
    #[error(transparent)]
    Format(#[from] tender_format::Error),
    #[error(transparent)]
    Manifest(#[from] tender_format::manifest::ManifestError),
    #[error(transparent)]
    Trust(#[from] tender_trust::TrustError),
    #[error(transparent)]
    Delta(#[from] tender_delta::DeltaError),
    /// The hub's receipt record (wave gates read it).
    #[error(transparent)]
    Receipt(#[from] tender_receipt::ReceiptError),
    /// A wave gate does not hold (`waves.rs`): every pending cluster, why.
    #[error("{gates}; the export is refused (--override-gate REASON sends it anyway, recorded)")]
    GateClosed { gates: String },
    /// `--base` names something the hub cannot find or use.
    #[error("base {base}: {reason}")]
    Base { base: String, reason: String },
}

impl ExportError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use tender_format::FromIo;

    #[test]
    fn several_images_are_all_named_each_with_its_reason() {
        let image = |name: &str, reason: &str| ExportError::Image {
            image: name.into(),
            used_by: "c1 (extra image)".into(),
            reason: reason.into(),
        };
        let e = ExportError::Images(vec![
            image("a/x:1", "manifest a/x:1: not found (HTTP 404)"),
            image("b/y:1", "manifest b/y:1: not found (HTTP 404)"),
            ExportError::Oci(tender_oci::OciError::io(
                "writing",
                io::Error::other("disk full"),
            )),
        ]);
        assert_eq!(
            e.to_string(),
            "3 images could not be pulled: image a/x:1 (used by c1 (extra image)): manifest \
             a/x:1: not found (HTTP 404); image b/y:1 (used by c1 (extra image)): manifest \
             b/y:1: not found (HTTP 404); writing: disk full"
        );
        let io = ExportError::io_at("reading", "/f", io::Error::other("gone"));
        assert_eq!(tender_format::error::repeated_cause(&io), None);
    }
}
