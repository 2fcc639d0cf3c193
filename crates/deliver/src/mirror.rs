//! Registry mirror configuration for cluster nodes: the alternative to
//! rewriting images. Manifests keep `registry.plant.example/plant/app:1.4`;
//! the node's runtime asks the site registry (or `tender serve`) first.
//!
//! * [`containerd_hosts_toml`] — `/etc/containerd/certs.d/<host>/hosts.toml`
//!   (containerd 1.5+ with `config_path` set; RKE2, kubeadm nodes, k3s
//!   1.26+ also read it).
//! * [`k3s_registries_yaml`] — `/etc/rancher/k3s/registries.yaml`.
//! * [`write_mirror_configs`] — both, for every source registry of a
//!   release, written where an operator picks them up.
//!
//! A mirror URL is `[scheme://]host[:port][/prefix]`. Without a scheme,
//! `plain_http` picks `http://` or `https://`. A `/prefix` (where the
//! upstream's site repositories start: `harbor.plant.local/tender/ghcr.io`,
//! see `tender_oci::site_path`) becomes containerd's `/v2/<prefix>` host
//! path with `override_path = true`, and a k3s `rewrite` rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};
use tender_format::{FromIo, atomic};
use tender_oci::{Reference, site_path};

use crate::delivery::SiteImages;
use crate::error::DeliverError;

/// Docker Hub's registry API host (where `docker.io` images really live).
const DOCKER_HUB_SERVER: &str = "https://registry-1.docker.io";

/// A mirror URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mirror {
    scheme: &'static str,
    host: String,
    prefix: Option<String>,
}

fn parse_mirror(url: &str, plain_http: bool) -> Mirror {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        ("https", rest)
    } else if plain_http {
        ("http", url)
    } else {
        ("https", url)
    };
    let rest = rest.trim_end_matches('/');
    let (host, prefix) = match rest.split_once('/') {
        Some((host, prefix)) if !prefix.is_empty() => (host, Some(prefix.to_string())),
        Some((host, _)) => (host, None),
        None => (rest, None),
    };
    Mirror {
        scheme,
        host: host.to_string(),
        prefix,
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Where containerd looks for the mirror of `upstream_host`, relative to
/// its `config_path` (usually `/etc/containerd/certs.d`).
pub fn containerd_hosts_path(upstream_host: &str) -> String {
    format!("{upstream_host}/hosts.toml")
}

/// `hosts.toml` sending pulls for `upstream_host` (as references name it:
/// `docker.io`, `registry.plant.example`) to `mirror_url` first, with the
/// upstream as the fallback `server`. `skip_verify` accepts any TLS
/// certificate from the mirror.
pub fn containerd_hosts_toml(
    upstream_host: &str,
    mirror_url: &str,
    plain_http: bool,
    skip_verify: bool,
) -> String {
    let server = if upstream_host == "docker.io" {
        DOCKER_HUB_SERVER.to_string()
    } else {
        format!("https://{upstream_host}")
    };
    let mirror = parse_mirror(mirror_url, plain_http);
    let host_url = match &mirror.prefix {
        Some(prefix) => format!("{}://{}/v2/{prefix}", mirror.scheme, mirror.host),
        None => format!("{}://{}", mirror.scheme, mirror.host),
    };
    let mut out = format!(
        "# Written by tender: pull {upstream_host} images from the site first.\n\
         server = {}\n\n[host.{}]\n  capabilities = [\"pull\", \"resolve\"]\n",
        toml_string(&server),
        toml_string(&host_url)
    );
    if mirror.prefix.is_some() {
        out.push_str("  override_path = true\n");
    }
    if skip_verify {
        out.push_str("  skip_verify = true\n");
    }
    out
}

/// k3s `registries.yaml` mirroring each `(upstream_host, mirror_url)`;
/// with `insecure`, TLS verification of every mirror host is off.
/// Several mirrors of one upstream are tried in the order given.
pub fn k3s_registries_yaml(mirrors: &[(String, String)], insecure: bool) -> String {
    let mut entries: BTreeMap<String, (Vec<String>, BTreeMap<String, String>)> = BTreeMap::new();
    let mut hosts: BTreeMap<String, ()> = BTreeMap::new();
    for (upstream, url) in mirrors {
        let mirror = parse_mirror(url, false);
        let entry = entries.entry(upstream.clone()).or_default();
        let endpoint = format!("{}://{}", mirror.scheme, mirror.host);
        if !entry.0.contains(&endpoint) {
            entry.0.push(endpoint);
        }
        if let Some(prefix) = &mirror.prefix {
            entry.1.insert("^(.*)$".to_string(), format!("{prefix}/$1"));
        }
        hosts.insert(mirror.host.clone(), ());
    }
    let mut mirrors_value = serde_json::Map::new();
    for (upstream, (endpoints, rewrites)) in entries {
        let mut m = serde_json::Map::new();
        m.insert("endpoint".into(), json!(endpoints));
        if !rewrites.is_empty() {
            m.insert("rewrite".into(), json!(rewrites));
        }
        mirrors_value.insert(upstream, Value::Object(m));
    }
    let mut doc = serde_json::Map::new();
    doc.insert("mirrors".into(), Value::Object(mirrors_value));
    if insecure {
        let configs: serde_json::Map<String, Value> = hosts
            .into_keys()
            .map(|h| (h, json!({"tls": {"insecure_skip_verify": true}})))
            .collect();
        doc.insert("configs".into(), Value::Object(configs));
    }
    format!(
        "# Written by tender: pull images from the site first.\n{}",
        crate::rewrite::document_to_yaml(&Value::Object(doc))
    )
}

/// Writes registry mirror configuration for the nodes, for sites that
/// prefer mirrors to rewriting: `<dir>/containerd/<host>/hosts.toml` and
/// `<dir>/k3s-registries.yaml`, one entry per source registry the
/// `references` come from. Each sends its registry's pulls to that
/// registry's site repositories (`[prefix/]<host component>/...`):
/// containerd by a path with `override_path`, k3s by a `rewrite` rule.
/// Returns `false` (and writes nothing) when the site has no address for
/// its images.
pub fn write_mirror_configs(
    dir: &Path,
    site: &SiteImages,
    references: &[String],
) -> Result<bool, DeliverError> {
    let (base, prefix, plain_http, insecure) = match &site.registry {
        Some(t) => (
            t.url.clone(),
            t.prefix.clone(),
            t.plain_http,
            t.insecure_skip_tls_verify,
        ),
        // `tender serve` answers for the same site repositories.
        None => match &site.registry_host {
            Some(host) => (host.clone(), None, false, false),
            None => return Ok(false),
        },
    };
    let hosts: BTreeSet<String> = references
        .iter()
        .filter_map(|r| Reference::parse(r).ok())
        .map(|r| r.registry().to_string())
        .collect();
    let io = |e| DeliverError::io_at("writing mirror configuration", dir, e);
    let mut mirrors = Vec::new();
    for host in &hosts {
        let component = site_path::host_component(host)?;
        let url = match &prefix {
            Some(prefix) => format!("{base}/{prefix}/{component}"),
            None => format!("{base}/{component}"),
        };
        let path = dir.join("containerd").join(containerd_hosts_path(host));
        atomic::create_dir_all(path.parent().expect("has a parent")).map_err(io)?;
        let text = containerd_hosts_toml(host, &url, plain_http, insecure);
        atomic::write(&path, text.as_bytes()).map_err(io)?;
        let url = if plain_http {
            format!("http://{url}")
        } else {
            url
        };
        mirrors.push((host.clone(), url));
    }
    let text = k3s_registries_yaml(&mirrors, insecure);
    atomic::write(&dir.join("k3s-registries.yaml"), text.as_bytes()).map_err(io)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_toml_for_a_plain_http_mirror() {
        let text = containerd_hosts_toml("registry.plant.example", "10.0.0.5:5000", true, false);
        assert_eq!(
            text,
            "# Written by tender: pull registry.plant.example images from the site first.\n\
             server = \"https://registry.plant.example\"\n\n\
             [host.\"http://10.0.0.5:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        );
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            parsed["server"].as_str(),
            Some("https://registry.plant.example")
        );
        let host = parsed["host"]["http://10.0.0.5:5000"].as_table().unwrap();
        assert_eq!(
            host["capabilities"].as_array().unwrap(),
            &vec![toml::Value::from("pull"), toml::Value::from("resolve")]
        );
        assert!(host.get("skip_verify").is_none());
        assert_eq!(containerd_hosts_path("docker.io"), "docker.io/hosts.toml");
    }

    #[test]
    fn hosts_toml_for_docker_hub_insecure_tls_and_a_prefix() {
        let text = containerd_hosts_toml(
            "docker.io",
            "https://harbor.plant.local:8443/tender/",
            false,
            true,
        );
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            parsed["server"].as_str(),
            Some("https://registry-1.docker.io")
        );
        let host = parsed["host"]["https://harbor.plant.local:8443/v2/tender"]
            .as_table()
            .unwrap();
        assert_eq!(host["skip_verify"].as_bool(), Some(true));
        assert_eq!(host["override_path"].as_bool(), Some(true));
        // No scheme and not plain HTTP: https.
        let text = containerd_hosts_toml("quay.io", "mirror.local", false, false);
        assert!(text.contains("[host.\"https://mirror.local\"]"), "{text}");
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn k3s_registries_yaml_parses_and_says_what_it_should() {
        let text = k3s_registries_yaml(
            &[
                (
                    "registry.plant.example".into(),
                    "http://10.0.0.5:5000".into(),
                ),
                (
                    "docker.io".into(),
                    "https://harbor.plant.local:8443/tender".into(),
                ),
                ("docker.io".into(), "http://10.0.0.5:5000".into()),
            ],
            true,
        );
        let doc: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            doc["mirrors"]["registry.plant.example"]["endpoint"],
            json!(["http://10.0.0.5:5000"])
        );
        assert_eq!(
            doc["mirrors"]["docker.io"]["endpoint"],
            json!(["https://harbor.plant.local:8443", "http://10.0.0.5:5000"])
        );
        assert_eq!(
            doc["mirrors"]["docker.io"]["rewrite"],
            json!({"^(.*)$": "tender/$1"})
        );
        assert_eq!(
            doc["configs"],
            json!({
                "10.0.0.5:5000": {"tls": {"insecure_skip_verify": true}},
                "harbor.plant.local:8443": {"tls": {"insecure_skip_verify": true}},
            })
        );
        let secure = k3s_registries_yaml(&[("docker.io".into(), "m.local".into())], false);
        let doc: Value = serde_saphyr::from_str(&secure).unwrap();
        assert!(doc.get("configs").is_none());
        assert_eq!(
            doc["mirrors"]["docker.io"]["endpoint"],
            json!(["https://m.local"])
        );
    }
}
