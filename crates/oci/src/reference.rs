//! Image references, parsed as Docker and containerd do
//! (`github.com/distribution/reference`, `ParseNormalizedNamed` +
//! `TagNameOnly`):
//!
//! ```text
//! [registry[:port]/]repository[:tag][@sha256:<64 hex>]
//! ```
//!
//! * A first path component that contains `.` or `:`, is `localhost`, or has
//!   an uppercase letter is the registry; otherwise the registry is
//!   `docker.io` (`index.docker.io` is normalised to it too).
//! * On `docker.io`, a one-component repository gets `library/`.
//! * Neither tag nor digest means the tag `latest`.
//!
//! So `nginx` is `docker.io/library/nginx:latest`, and
//! `localhost:5000/x` is the repository `x` on `localhost:5000`. `Display`
//! prints that full, canonical form. Only sha256 digests are accepted: they
//! are the only ones a tender bundle can carry.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tender_format::Digest;

use crate::error::OciError;

/// The registry of references without one.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The host that serves the registry API for `docker.io`.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The tag of references without tag or digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest `registry/repository` Docker accepts.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag (the first character plus 127 more).
pub const TAG_LENGTH_MAX: usize = 128;

/// A parsed, normalised image reference. Always has a tag or a digest (or
/// both, as in `repo:1.0@sha256:...`, a tag pinned to a digest).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference (see the module docs).
    pub fn parse(input: &str) -> Result<Reference, OciError> {
        let invalid = |reason: &str| OciError::InvalidReference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(invalid("empty reference"));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains whitespace or control characters"));
        }
        // Docker refuses these: they look like image IDs.
        if Digest::from_hex(input).is_ok() {
            return Err(invalid(
                "a 64-character hexadecimal string is an image ID, not a repository name",
            ));
        }

        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest_text)) => (rest, Some(parse_digest(digest_text, &invalid)?)),
            None => (input, None),
        };

        // A ':' after the last '/' starts the tag; one before it is a port.
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                (&rest[..colon], Some(&rest[colon + 1..]))
            }
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|reason| invalid(&reason))?;
        }
        if name.is_empty() {
            return Err(invalid("no repository name"));
        }
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(&format!(
                "name is longer than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }

        let (registry, path) = split_registry(name);
        validate_registry(registry).map_err(|reason| invalid(&reason))?;
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid("repository name must be lowercase"));
        }
        let registry = normalize_registry(registry);
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        validate_repository(&repository).map_err(|reason| invalid(&reason))?;
        if registry.len() + 1 + repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(&format!(
                "name is longer than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }

        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Builds a reference from parts, validating each as [`Reference::parse`]
    /// would. Needs a tag or a digest.
    pub fn from_parts(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Reference, OciError> {
        let mut text = format!("{registry}/{repository}");
        if let Some(tag) = tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = digest {
            text.push('@');
            text.push_str(&digest.to_string());
        }
        if tag.is_none() && digest.is_none() {
            return Err(OciError::InvalidReference {
                input: text,
                reason: "needs a tag or a digest".into(),
            });
        }
        let parsed = Reference::parse(&text)?;
        // The registry must stay the registry (e.g. "plant/x" must not be
        // read as a docker.io repository).
        if parsed.registry != normalize_registry(registry) || parsed.repository != repository {
            return Err(OciError::InvalidReference {
                input: text,
                reason: format!("{registry:?} is not a registry host"),
            });
        }
        Ok(parsed)
    }

    /// The registry host, with port if any (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path (`library/nginx`, `plant/opcua-gateway`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host that serves the registry API (`registry-1.docker.io` for
    /// `docker.io`, the registry itself otherwise).
    pub fn api_host(&self) -> &str {
        api_host_for(&self.registry)
    }

    /// What goes after `/manifests/` in the API: the digest if there is one
    /// (a digest wins over a tag, as in Docker), else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The same reference pinned to `digest` (the tag is kept).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository, by digest only (`registry/repo@sha256:...`).
    pub fn by_digest(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, OciError> {
        validate_tag(tag).map_err(|reason| OciError::InvalidReference {
            input: format!("{}:{tag}", self.name()),
            reason,
        })?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository path, tag and digest on another registry (for
    /// mirrors: `registry.plant.example/plant/x:1` on the site registry).
    pub fn with_registry(&self, registry: &str) -> Result<Reference, OciError> {
        Reference::from_parts(registry, &self.repository, self.tag.as_deref(), self.digest)
    }
}

/// The host that serves the registry API for `registry` (a reference's
/// registry): `registry-1.docker.io` for `docker.io`, else itself.
pub fn api_host_for(registry: &str) -> &str {
    if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_API_HOST
    } else {
        registry
    }
}

fn parse_digest(text: &str, invalid: &impl Fn(&str) -> OciError) -> Result<Digest, OciError> {
    let Some((algorithm, _)) = text.split_once(':') else {
        return Err(invalid("digest must be algorithm:hex"));
    };
    if algorithm != "sha256" {
        return Err(invalid(&format!(
            "only sha256 digests are supported, not {algorithm:?}"
        )));
    }
    text.parse::<Digest>()
        .map_err(|_| invalid("digest must be sha256: followed by 64 lowercase hex digits"))
}

/// Splits `name` into registry and path the way `ParseNormalizedNamed` does.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

fn normalize_registry(registry: &str) -> String {
    if registry == "index.docker.io" {
        DEFAULT_REGISTRY.to_string()
    } else {
        registry.to_string()
    }
}

/// `host[:port]`: DNS labels of letters, digits and inner `-` joined by
/// `.`, or an IPv6 address in brackets; the port is digits.
fn validate_registry(registry: &str) -> Result<(), String> {
    let bad = || format!("{registry:?} is not a valid registry host[:port]");
    let (host, port) = if let Some(inner) = registry.strip_prefix('[') {
        let (addr, after) = inner.split_once(']').ok_or_else(bad)?;
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(bad());
        }
        match after {
            "" => (None, None),
            _ => (None, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    Ok(())
}

/// Components of `[a-z0-9]+` joined by `.`, `_`, `__` or one or more `-`,
/// separated by `/`.
fn validate_repository(path: &str) -> Result<(), String> {
    for component in path.split('/') {
        if !valid_path_component(component) {
            return Err(format!(
                "repository path component {component:?} must be lowercase letters and digits, \
                 separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or "-"+.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        match &component[start..i] {
            "." | "_" | "__" => {}
            run if run.bytes().all(|b| b == b'-') => {}
            _ => return false,
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !tag.is_empty()
        && tag.len() <= TAG_LENGTH_MAX
        && word(tag.as_bytes()[0])
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1 to {TAG_LENGTH_MAX} letters, digits, '_', '.' or '-', \
             not starting with '.' or '-'"
        ))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = OciError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(input: &str) -> String {
        Reference::parse(input)
            .unwrap_or_else(|e| panic!("{input}: {e}"))
            .to_string()
    }

    const HEX: &str = "a672c2eaad1779c73f7c2a26147b907a1f9d52f2b3252d16d0ec8d1592d4d11e";

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(canonical("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(canonical("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(canonical("bitnami/redis"), "docker.io/bitnami/redis:latest");
        assert_eq!(
            canonical("docker.io/nginx"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(
            canonical("index.docker.io/library/nginx:1"),
            "docker.io/library/nginx:1"
        );
        let r = Reference::parse("nginx").unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/nginx");
        assert_eq!(r.api_host(), "registry-1.docker.io");
    }

    #[test]
    fn registries_with_ports_and_localhost() {
        let r = Reference::parse("localhost:5000/x").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "x");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.api_host(), "localhost:5000");
        assert_eq!(canonical("localhost/x:1"), "localhost/x:1");
        assert_eq!(
            canonical("127.0.0.1:5000/plant/opcua-gateway:1.4.2"),
            "127.0.0.1:5000/plant/opcua-gateway:1.4.2"
        );
        assert_eq!(
            canonical("registry.plant.example/plant/opcua-gateway:1.4.2"),
            "registry.plant.example/plant/opcua-gateway:1.4.2"
        );
        assert_eq!(canonical("[::1]:5000/a/b:c"), "[::1]:5000/a/b:c");
        // An uppercase first component is a host (as in Docker).
        assert_eq!(canonical("Registry/x"), "Registry/x:latest");
        // A port-like ':' before the last '/' is not a tag.
        let r = Reference::parse("host:5000/a/b").unwrap();
        assert_eq!(r.registry(), "host:5000");
        assert_eq!(r.tag(), Some("latest"));
    }

    #[test]
    fn digests_and_pinned_tags() {
        let by_digest = Reference::parse(&format!("nginx@sha256:{HEX}")).unwrap();
        assert_eq!(by_digest.tag(), None);
        assert_eq!(by_digest.digest().unwrap().hex(), HEX);
        assert_eq!(
            by_digest.to_string(),
            format!("docker.io/library/nginx@sha256:{HEX}")
        );
        assert_eq!(by_digest.manifest_reference(), format!("sha256:{HEX}"));

        let pinned = Reference::parse(&format!("r.example/a/b:1.0@sha256:{HEX}")).unwrap();
        assert_eq!(pinned.tag(), Some("1.0"));
        assert_eq!(pinned.manifest_reference(), format!("sha256:{HEX}"));
        assert_eq!(
            pinned.to_string(),
            format!("r.example/a/b:1.0@sha256:{HEX}")
        );
        assert_eq!(
            Reference::parse(&pinned.to_string()).unwrap(),
            pinned,
            "Display round-trips"
        );
        let unpinned = pinned.with_tag("2.0").unwrap();
        assert_eq!(unpinned.to_string(), "r.example/a/b:2.0");
        assert_eq!(
            unpinned.by_digest(*pinned.digest().unwrap()).to_string(),
            format!("r.example/a/b@sha256:{HEX}")
        );
    }

    #[test]
    fn rejects_invalid_references() {
        for bad in [
            "",
            "UPPER/CASE",
            "docker.io/Library/nginx",
            "nginx:",
            "nginx:.tag",
            "nginx:-tag",
            &format!("nginx:{}", "t".repeat(129)),
            "nginx@sha256:abc",
            &format!("nginx@sha256:{}", HEX.to_uppercase()),
            &format!("nginx@sha512:{HEX}"),
            "a//b",
            "a/b/",
            "/a",
            "a..b",
            "a_-b",
            "-a",
            "a b",
            "a/b@",
            "host:port/x",
            "exa_mple.com/x",
            HEX,
            &format!("{}/{}", "r.example", "a".repeat(250)),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let err = Reference::parse("docker.io/Library/nginx").unwrap_err();
        assert!(err.to_string().contains("must be lowercase"), "{err}");
        let err = Reference::parse(&format!("x@sha512:{HEX}")).unwrap_err();
        assert!(err.to_string().contains("only sha256"), "{err}");
    }

    #[test]
    fn accepts_docker_separators() {
        for ok in ["a.b", "a_b", "a__b", "a---b", "a-b.c_d__e", "0/1/2"] {
            assert!(Reference::parse(ok).is_ok(), "{ok:?} should parse");
        }
    }

    #[test]
    fn from_parts_and_with_registry() {
        let r = Reference::from_parts("127.0.0.1:5000", "plant/x", Some("1"), None).unwrap();
        assert_eq!(r.to_string(), "127.0.0.1:5000/plant/x:1");
        let moved = Reference::parse("registry.plant.example/plant/x:1")
            .unwrap()
            .with_registry("site.local:443")
            .unwrap();
        assert_eq!(moved.to_string(), "site.local:443/plant/x:1");
        assert!(Reference::from_parts("plant", "x", Some("1"), None).is_err());
        assert!(Reference::from_parts("r.example", "x", None, None).is_err());
    }

    #[test]
    fn serde_as_string() {
        let r = Reference::parse("nginx").unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"docker.io/library/nginx:latest\"");
        assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
    }
}
