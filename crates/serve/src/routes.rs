//! The distribution API's URL grammar: which endpoint a path is, whether a
//! repository name or tag is well formed, and query parameters.
//!
//! Nothing here touches the filesystem: names are only ever looked up in
//! the in-memory catalog, and digests are parsed strictly
//! ([`tender_format::Digest`]: `sha256:` and 64 lowercase hex digits) before
//! a blob path is formed from them.

/// Longest repository name (the distribution spec's limit).
const NAME_MAX: usize = 255;
/// Longest tag.
const TAG_MAX: usize = 128;

/// A read endpoint of the distribution API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags { name: &'a str },
    /// `/v2/<name>/manifests/<tag or digest>`
    Manifest { name: &'a str, reference: &'a str },
    /// `/v2/<name>/blobs/<digest>`
    Blob { name: &'a str, digest: &'a str },
    /// `/v2/<name>/referrers/<digest>`
    Referrers { name: &'a str, digest: &'a str },
}

/// The endpoint `path` names, if any. The name is everything between `/v2/`
/// and the last `/manifests/`, `/blobs/`, `/referrers/` or `/tags/list`.
pub(crate) fn parse(path: &str) -> Option<Route<'_>> {
    if path == "/v2" || path == "/v2/" {
        return Some(Route::Base);
    }
    let rest = path.strip_prefix("/v2/")?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags { name });
    }
    let (head, last) = rest.rsplit_once('/')?;
    let (name, kind) = head.rsplit_once('/')?;
    match kind {
        "manifests" => Some(Route::Manifest {
            name,
            reference: last,
        }),
        "blobs" => Some(Route::Blob { name, digest: last }),
        "referrers" => Some(Route::Referrers { name, digest: last }),
        _ => None,
    }
}

/// Whether `name` is a repository name: `/`-separated components of
/// `[a-z0-9]` joined by `.`, `_` or `-`, as the spec says; the first may
/// also be a registry host (`registry.plant.example:5000`), since full names
/// are served too. No `.`/`..` components, no empty ones.
pub(crate) fn valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > NAME_MAX {
        return false;
    }
    name.split('/').enumerate().all(|(i, component)| {
        let allowed = |b: u8| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'.' | b'_' | b'-')
                || (i == 0 && (b == b':' || b.is_ascii_uppercase()))
        };
        let bytes = component.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && bytes.iter().all(|&b| allowed(b))
            }
            _ => false,
        }
    })
}

/// Whether `tag` is a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub(crate) fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= TAG_MAX
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The first value of `key` in a query string, percent-decoded. `None` if
/// absent or not valid UTF-8 once decoded.
pub(crate) fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k)? == key).then(|| percent_decode(v))
        })
        .next()?
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(parse("/v2/"), Some(Route::Base));
        assert_eq!(parse("/v2"), Some(Route::Base));
        assert_eq!(parse("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(
            parse("/v2/plant/x/tags/list"),
            Some(Route::Tags { name: "plant/x" })
        );
        assert_eq!(
            parse("/v2/reg.example/plant/x/manifests/1.4.2"),
            Some(Route::Manifest {
                name: "reg.example/plant/x",
                reference: "1.4.2"
            })
        );
        assert_eq!(
            parse("/v2/a/blobs/sha256:00"),
            Some(Route::Blob {
                name: "a",
                digest: "sha256:00"
            })
        );
        // A repository may itself be called "manifests".
        assert_eq!(
            parse("/v2/x/manifests/manifests/1"),
            Some(Route::Manifest {
                name: "x/manifests",
                reference: "1"
            })
        );
        assert_eq!(
            parse("/v2/a/referrers/sha256:00"),
            Some(Route::Referrers {
                name: "a",
                digest: "sha256:00"
            })
        );
        for unknown in [
            "/",
            "/v1/",
            "/v2/x",
            "/v2/x/blobs/uploads/",
            "/v2/x/blobs/sha256:../../etc/passwd",
            "/v2/manifests/1",
        ] {
            assert_eq!(parse(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn names() {
        for good in [
            "plant/opcua-gateway",
            "a",
            "a/b/c",
            "a__b/c.d-e",
            "registry.plant.example/plant/x",
            "localhost:5000/x",
            "Registry.Example/x",
        ] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "..",
            "a/../b",
            "a//b",
            "/a",
            "a/",
            "a/B",
            "a/b:c",
            "-a",
            "a%2fb",
            &"a".repeat(256),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(valid_tag("1.4.2"));
        assert!(valid_tag("_x"));
        assert!(valid_tag(&format!("sha256-{}.sig", "a".repeat(64))));
        assert!(valid_tag(&"a".repeat(128)));
        assert!(!valid_tag(&"a".repeat(129)));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag("-x"));
        assert!(!valid_tag("a/b"));
        assert!(!valid_tag(""));
    }

    #[test]
    fn query() {
        let q = Some("n=2&last=plant%2Fx&ns=reg.example&flag");
        assert_eq!(query_param(q, "n").as_deref(), Some("2"));
        assert_eq!(query_param(q, "last").as_deref(), Some("plant/x"));
        assert_eq!(query_param(q, "ns").as_deref(), Some("reg.example"));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param(None, "n"), None);
        assert_eq!(query_param(Some("n=%zz"), "n"), None);
    }
}
