//! Where an image lives at a site: one repository per source repository,
//! `[prefix/]<host component>/<path>`, for every source registry (Docker
//! Hub included).
//!
//! ```text
//! registry.plant.example/plant/x:1   → registry.plant.example/plant/x:1
//! ghcr.io/stefanprodan/podinfo:6     → ghcr.io/stefanprodan/podinfo:6
//! nginx:1.25                         → docker.io/library/nginx:1.25
//! localhost:5000/tools/probe:2       → localhost_5000/tools/probe:2
//! ```
//!
//! The host component is the registry host in lower case with its `:`
//! written as `_`: a colon cannot be in a repository path component, and
//! `_` never is in a DNS host name, so the host can be read back from the
//! component. Two references with different registries or paths therefore
//! never share a site repository (up to the case of the host, which DNS
//! ignores too), and the site repository depends only on the reference,
//! never on what else a fleet holds, so it is the same in every release.
//!
//! An IPv6 literal registry (`[fd00::1]:5000`) has no such component
//! (brackets and colons cannot be written in a path) and is refused.

use crate::error::OciError;
use crate::reference::Reference;

/// The first path component a registry host gets at a site
/// (`localhost:5000` → `localhost_5000`).
pub fn host_component(registry: &str) -> Result<String, OciError> {
    if registry.starts_with('[') {
        return Err(OciError::NoSiteRepository {
            registry: registry.to_string(),
            reason: "an IPv6 address cannot be written as a repository path component; \
                     name the registry by a DNS name or an IPv4 address"
                .into(),
        });
    }
    Ok(registry.to_ascii_lowercase().replace(':', "_"))
}

/// The repository `reference` lives in at a site, under `prefix` if the
/// site registry puts everything below one (`tender` →
/// `tender/ghcr.io/stefanprodan/podinfo`).
pub fn site_repository(reference: &Reference, prefix: Option<&str>) -> Result<String, OciError> {
    let path = format!(
        "{}/{}",
        host_component(reference.registry())?,
        reference.repository()
    );
    Ok(match prefix {
        Some(prefix) => format!("{prefix}/{path}"),
        None => path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(reference: &str, prefix: Option<&str>) -> String {
        site_repository(&Reference::parse(reference).unwrap(), prefix).unwrap()
    }

    /// The registry host a host component was made from (the inverse of
    /// [`host_component`] on lower-case hosts).
    fn registry_of(component: &str) -> String {
        component.replace('_', ":")
    }

    #[test]
    fn every_registry_keeps_its_host_as_the_first_component() {
        assert_eq!(
            site("registry.plant.example/plant/x:1", None),
            "registry.plant.example/plant/x"
        );
        assert_eq!(
            site("registry.plant.example/plant/x:1", Some("tender")),
            "tender/registry.plant.example/plant/x"
        );
        // Docker Hub is no exception, after normalising.
        assert_eq!(site("nginx", None), "docker.io/library/nginx");
        assert_eq!(
            site("index.docker.io/stefanprodan/podinfo:6.14.1", None),
            "docker.io/stefanprodan/podinfo"
        );
        assert_eq!(
            site("localhost:5000/tools/probe:2", Some("a/b")),
            "a/b/localhost_5000/tools/probe"
        );
        assert_eq!(
            site("Registry.Plant.Example:443/x:1", None),
            "registry.plant.example_443/x"
        );
    }

    #[test]
    fn the_same_path_on_two_registries_gets_two_site_repositories() {
        let pairs = [
            (
                "ghcr.io/stefanprodan/podinfo",
                "docker.io/stefanprodan/podinfo",
            ),
            ("127.0.0.1:5001/plant/x", "127.0.0.1:5002/plant/x"),
            ("localhost/plant/x", "localhost:80/plant/x"),
        ];
        for (a, b) in pairs {
            assert_ne!(site(a, None), site(b, None), "{a} and {b}");
        }
    }

    #[test]
    fn the_host_can_be_read_back_and_the_result_is_a_valid_repository() {
        for registry in [
            "docker.io",
            "localhost",
            "localhost:5000",
            "10.0.0.5:5000",
            "a--b.example:1",
        ] {
            let component = host_component(registry).unwrap();
            assert_eq!(registry_of(&component), registry);
            // A valid repository path on another registry, as pushed.
            let at_site = Reference::from_parts(
                "site.example:8443",
                &format!("{component}/x"),
                Some("1"),
                None,
            )
            .unwrap();
            assert_eq!(at_site.repository(), format!("{component}/x"));
        }
    }

    #[test]
    fn ipv6_literal_registries_are_refused_with_the_reason() {
        let reference = Reference::parse("[fd00::1]:5000/plant/x:1").unwrap();
        let error = site_repository(&reference, None).unwrap_err().to_string();
        assert!(error.contains("[fd00::1]:5000"), "{error}");
        assert!(error.contains("IPv6"), "{error}");
    }
}
