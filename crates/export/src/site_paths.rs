//! Export refuses a fleet whose images would meet at a site, so the site
//! never has to (`tender_oci::site_path`: each image lives in the site
//! repository `[prefix/]<registry host>/<path>`).
//!
//! Two images meet when distinct source repositories have one site
//! repository (only registry hosts that differ in case can), or when one
//! site repository tag would have to point at two digests (`app:1` and
//! `app:1@sha256:<other>`, or `nginx:1` and `docker.io/library/nginx:1`
//! resolved to different digests while the tag moved). A site could hold
//! only one of them under that name, so which a node gets would depend on
//! the order of an import. A registry with no site repository (an IPv6
//! literal) is refused here too.

use std::collections::BTreeMap;

use tender_format::Digest;
use tender_oci::{Reference, site_path};

use crate::error::ExportError;

/// One image of the plan: as written in the manifests, parsed, and where
/// it is used (for messages).
pub struct PlannedImage<'a> {
    pub image: &'a str,
    pub reference: &'a Reference,
    pub used_by: String,
}

/// Checks that every image has a site repository and that distinct source
/// repositories have distinct ones. Needs no digests, so it runs before
/// anything is pulled.
pub fn check_repositories(images: &[PlannedImage]) -> Result<(), ExportError> {
    let mut seen: BTreeMap<String, &PlannedImage> = BTreeMap::new();
    for planned in images {
        let site = site_repository(planned)?;
        match seen.get(&site) {
            Some(first) if first.reference.name() != planned.reference.name() => {
                return Err(collision(
                    first,
                    planned,
                    format!(
                        "their source repositories {} and {} have one site repository {site}",
                        first.reference.name(),
                        planned.reference.name()
                    ),
                ));
            }
            Some(_) => {}
            None => {
                seen.insert(site, planned);
            }
        }
    }
    Ok(())
}

/// Checks that no site repository tag would point at two digests.
/// `digests` holds what each image (as written) resolved to.
pub fn check_tags(
    images: &[PlannedImage],
    digests: &BTreeMap<String, Digest>,
) -> Result<(), ExportError> {
    let mut seen: BTreeMap<(String, &str), (&PlannedImage, Digest)> = BTreeMap::new();
    for planned in images {
        let (Some(tag), Some(digest)) = (planned.reference.tag(), digests.get(planned.image))
        else {
            continue;
        };
        let key = (site_repository(planned)?, tag);
        match seen.get(&key) {
            Some((first, other)) if other != digest => {
                return Err(collision(
                    first,
                    planned,
                    format!(
                        "both are tag {tag} of site repository {}, with different digests \
                         ({other} and {digest}); pin them to one digest or use distinct tags",
                        key.0
                    ),
                ));
            }
            Some(_) => {}
            None => {
                seen.insert(key, (planned, *digest));
            }
        }
    }
    Ok(())
}

fn site_repository(planned: &PlannedImage) -> Result<String, ExportError> {
    site_path::site_repository(planned.reference, None).map_err(|e| ExportError::Image {
        image: planned.image.to_string(),
        used_by: planned.used_by.clone(),
        reason: e.to_string(),
    })
}

fn collision(first: &PlannedImage, second: &PlannedImage, reason: String) -> ExportError {
    ExportError::SiteCollision {
        first: first.image.to_string(),
        first_used_by: first.used_by.clone(),
        second: second.image.to_string(),
        second_used_by: second.used_by.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned<'a>(image: &'a str, reference: &'a Reference) -> PlannedImage<'a> {
        PlannedImage {
            image,
            reference,
            used_by: format!("c Deployment/{image}"),
        }
    }

    /// Each image with its parsed reference, as export plans them.
    fn plan<'a>(images: &[&'a str], refs: &'a [Reference]) -> Vec<PlannedImage<'a>> {
        images
            .iter()
            .zip(refs)
            .map(|(i, r)| planned(i, r))
            .collect()
    }

    fn parse(images: &[&str]) -> Vec<Reference> {
        images
            .iter()
            .map(|i| Reference::parse(i).unwrap())
            .collect()
    }

    #[test]
    fn one_path_on_two_registries_is_no_collision() {
        let images = [
            "ghcr.io/stefanprodan/podinfo:6.14.1",
            "stefanprodan/podinfo:6.14.1",
            "127.0.0.1:5001/stefanprodan/podinfo:6.14.1",
        ];
        let refs = parse(&images);
        let planned = plan(&images, &refs);
        check_repositories(&planned).unwrap();
        let digests = images
            .iter()
            .enumerate()
            .map(|(n, i)| (i.to_string(), Digest::of(&[n as u8])))
            .collect();
        check_tags(&planned, &digests).unwrap();
    }

    #[test]
    fn hosts_that_differ_in_case_collide() {
        let images = ["Registry.Example/plant/x:1", "registry.example/plant/x:2"];
        let refs = parse(&images);
        let planned = plan(&images, &refs);
        let error = check_repositories(&planned).unwrap_err().to_string();
        for image in images {
            assert!(error.contains(image), "{error}");
        }
        assert!(error.contains("registry.example/plant/x"), "{error}");
    }

    #[test]
    fn one_tag_with_two_digests_collides_and_one_digest_does_not() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let pinned = format!("docker.io/library/nginx:1.25@{b}");
        let images = ["nginx:1.25", pinned.as_str()];
        let refs = parse(&images);
        let planned = plan(&images, &refs);
        check_repositories(&planned).unwrap();
        let mut digests = BTreeMap::from([("nginx:1.25".to_string(), a), (pinned.clone(), b)]);
        let error = check_tags(&planned, &digests).unwrap_err().to_string();
        assert!(
            error.contains("nginx:1.25 (used by c Deployment/nginx:1.25)"),
            "{error}"
        );
        assert!(error.contains(&pinned), "{error}");
        assert!(error.contains("docker.io/library/nginx"), "{error}");
        assert!(
            error.contains(&a.to_string()) && error.contains(&b.to_string()),
            "{error}"
        );
        digests.insert("nginx:1.25".into(), b);
        check_tags(&planned, &digests).unwrap();
    }

    #[test]
    fn an_ipv6_registry_is_refused_naming_the_image() {
        let images = ["[fd00::1]:5000/plant/x:1"];
        let refs = parse(&images);
        let planned = plan(&images, &refs);
        let error = check_repositories(&planned).unwrap_err().to_string();
        assert!(error.contains("image [fd00::1]:5000/plant/x:1"), "{error}");
        assert!(error.contains("IPv6"), "{error}");
    }
}
