//! Messages a field engineer can act on (issue #12 part 6): every error
//! the CLI prints is one line whose `: `-separated causes never repeat,
//! verdicts are sentences (not Rust `Debug`), and each observed message
//! says what to do.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use tender_test_support::{Fault, FaultyProxy, Registry, repo_root};

use crate::util::{TestCommand, Workspace, assert_exit, stderr, stdout, tender, write_site_file};

/// The error line of a failed run: exactly one line on stderr (after any
/// warnings and progress lines), `tender: <label>: <chain>`.
#[track_caller]
fn error_line(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("tender: error: ") || l.starts_with("tender: REJECTED: "))
        .collect();
    assert_eq!(lines.len(), 1, "want one error line, got:\n{err}");
    lines[0].to_string()
}

/// The rule of `tender_format::error`: a cause is printed once. Splits the
/// chain after the label on `: ` and fails on any segment seen before.
#[track_caller]
fn assert_no_repeated_cause(line: &str) {
    let chain = line
        .strip_prefix("tender: error: ")
        .or_else(|| line.strip_prefix("tender: REJECTED: "))
        .unwrap_or_else(|| panic!("not an error line: {line}"));
    let mut seen: Vec<&str> = Vec::new();
    for segment in chain.split(": ") {
        assert!(
            !seen.contains(&segment),
            "segment {segment:?} repeats in: {line}"
        );
        seen.push(segment);
    }
    // Text quoted in backticks is the user's own (a YAML line), not ours.
    let ours: String = line
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, part)| part)
        .collect();
    for debug in ["{ ", " }", "Custom {", "kind: "] {
        assert!(!ours.contains(debug), "Rust Debug text in: {line}");
    }
}

/// Runs, checks the exit code and the chain, and returns the error line.
#[track_caller]
fn fails(o: &Output, code: i32) -> String {
    assert_exit(o, code);
    let line = error_line(o);
    assert_no_repeated_cause(&line);
    line
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// `{"creator":"abc","x"` → `{"creator":"ab", "x"`: the same length (so
/// the tar header still fits), valid JSON, not canonical (a space).
fn uncanonical_manifest(bundle: &[u8]) -> Vec<u8> {
    let mut bytes = bundle.to_vec();
    let key = b"\"creator\":\"";
    let start = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("the manifest has a creator")
        + key.len();
    let close = start + bytes[start..].iter().position(|&b| b == b'"').unwrap();
    assert_eq!(bytes[close + 1], b',', "creator is not the last field");
    // Drop the creator's last character, shift the quote and comma left,
    // and put a space where the comma was.
    bytes.copy_within(close..close + 2, close - 1);
    bytes[close + 1] = b' ';
    bytes
}

// --- the chain never repeats ------------------------------------------------

/// Bad inputs of every kind, through the real binary: each fails with its
/// documented exit code and a chain whose causes appear once.
#[test]
fn no_error_chain_repeats_a_cause() {
    let ws = Workspace::new();
    let bundle = ws.pack_sample("b.tender");
    let verify = |path: &str| {
        tender(
            &["verify", path, "--trust", "policy.yaml", "--no-progress"],
            ws.path(),
        )
    };

    // A manifest in valid but not canonical JSON: the case the issue saw
    // as "...not in canonical form (...): JSON is valid but not in...".
    let bytes = fs::read(&bundle).unwrap();
    fs::write(ws.join("uncanonical.tender"), uncanonical_manifest(&bytes)).unwrap();
    let line = fails(&verify("uncanonical.tender"), 3);
    assert!(line.contains("manifest is not canonical JSON: "), "{line}");
    assert_eq!(line.matches("not in canonical form").count(), 1, "{line}");

    // Truncated: the stream ends inside an entry.
    fs::write(ws.join("truncated.tender"), &bytes[..bytes.len() / 2]).unwrap();
    let line = fails(&verify("truncated.tender"), 3);
    assert!(line.contains("truncated"), "{line}");

    // Missing file, and a directory where a bundle was expected.
    let line = fails(&verify("missing.tender"), 1);
    assert!(line.contains("missing.tender"), "{line}");
    fs::create_dir(ws.join("empty")).unwrap();
    fails(&verify("empty"), 1);

    // A bad trust policy file.
    fs::write(ws.join("bad-policy.yaml"), "version: 1\nkeys: [\n").unwrap();
    let o = tender(
        &["verify", "b.tender", "--trust", "bad-policy.yaml"],
        ws.path(),
    );
    let line = fails(&o, 1);
    assert!(line.contains("bad-policy.yaml"), "{line}");

    // The spec's hostile vectors: a bad signature (manifest swapped after
    // signing), a key the policy does not know, a key in the wrong role, a
    // tar-slip, a flipped bit, a truncated bundle.
    for vector in [
        "manifest-swapped-after-signing",
        "unknown-key",
        "wrong-role",
        "tar-slip-dotdot",
        "bit-flipped-blob",
        "truncated-bundle",
        "pax-size-mismatch",
    ] {
        let dir = repo_root().join("bundle-spec/vectors").join(vector);
        let o = TestCommand::new(ws.path())
            .arg("verify")
            .arg(dir.join("bundle.tender"))
            .arg("--trust")
            .arg(dir.join("policy.yaml"))
            .arg("--no-progress")
            .output();
        fails(&o, 3);
    }

    // The same damaged bundles at a site: import rejects them too.
    let site = write_site_file(&ws, "site.yaml", "plant-001", &["c"], "");
    for damaged in ["uncanonical.tender", "truncated.tender"] {
        let o = ws
            .tender()
            .arg("import")
            .arg(damaged)
            .arg("--site")
            .arg(&site)
            .arg("--no-progress")
            .output();
        fails(&o, 3);
    }
    // A site file with a field it does not know.
    fs::write(
        ws.join("odd-site.yaml"),
        "apiVersion: tender.dev/v1alpha1\nkind: Site\nname: s\nclusters: [c]\ntrustPolicy: \
         policy.yaml\nbogus: 1\n",
    )
    .unwrap();
    let o = tender(
        &["import", "b.tender", "--site", "odd-site.yaml"],
        ws.path(),
    );
    let line = fails(&o, 1);
    assert!(
        line.contains("site file odd-site.yaml: unknown field `bogus`"),
        "{line}"
    );

    // A fleet whose mirror is not an OCI layout, and one whose manifests
    // directory is missing.
    fs::create_dir(ws.join("m")).unwrap();
    fs::write(
        ws.join("m/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )
    .unwrap();
    let fleet = |sources: &str, extra: &str| {
        format!(
            "apiVersion: tender.dev/v1alpha1\nkind: Fleet\nname: f\nclusters:\n  - {{name: c1, \
             site: plant-001, tier: prod}}\nsources:\n  - name: m\n    manifests: {{path: \
             {sources}}}\n{extra}"
        )
    };
    fs::write(
        ws.join("no-layout.yaml"),
        fleet(
            "m",
            "images: [registry.plant.example/app/one:1.0]\nmirrors:\n  registry.plant.example: \
             oci-layout:nowhere\n",
        ),
    )
    .unwrap();
    fs::write(ws.join("no-manifests.yaml"), fleet("nowhere", "")).unwrap();
    for fleet in ["no-layout.yaml", "no-manifests.yaml"] {
        let o = tender(&["export", fleet, "--dry-run", "--no-progress"], ws.path());
        let line = fails(&o, 1);
        assert!(line.contains("nowhere"), "{line}");
    }

    // Bad fleet specs: YAML that does not parse, an unknown field.
    fs::write(ws.join("broken.yaml"), "apiVersion: x\nkind: [\n").unwrap();
    fs::write(
        ws.join("unknown.yaml"),
        "apiVersion: tender.dev/v1alpha1\nkind: Fleet\nclusterz: []\n",
    )
    .unwrap();
    for fleet in ["broken.yaml", "unknown.yaml"] {
        let o = tender(&["export", fleet, "--dry-run", "--no-progress"], ws.path());
        fails(&o, 1);
    }
}

// --- 1. signature verdicts are sentences --------------------------------------

/// `verify` listed an ignored signature as `ignored: RoleNotAllowed {
/// key_name: "hub-release" }`. A bundle that passes (one release
/// signature) with a second signature by the release key as approver,
/// which the policy does not allow it.
#[test]
fn an_ignored_signature_says_why_in_words() {
    let ws = Workspace::new();
    ws.pack_sample("b.tender");
    let o = tender(
        &["sign", "b.tender", "--key", "hub.key", "--role", "approver"],
        ws.path(),
    );
    assert_exit(&o, 0);
    let o = tender(
        &[
            "verify",
            "b.tender",
            "--trust",
            "policy.yaml",
            "--no-progress",
        ],
        ws.path(),
    );
    assert_exit(&o, 0);
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.contains(" as approver "))
        .unwrap_or_else(|| panic!("no approver signature listed:\n{out}"));
    assert!(line.contains("ignored: key hub (ed25519:"), "{line}");
    assert!(line.ends_with("may not sign as approver"), "{line}");
    assert!(!line.contains("RoleNotAllowed"), "{line}");
    assert!(!line.contains('{'), "{line}");
}

// --- 3. a directory is not a bundle -------------------------------------------

#[test]
fn a_directory_given_as_the_bundle_says_what_was_expected() {
    let ws = Workspace::new();
    let dir = ws.join("stick");
    fs::create_dir(&dir).unwrap();
    let o = tender(
        &["verify", "stick", "--trust", "policy.yaml", "--no-progress"],
        ws.path(),
    );
    let line = fails(&o, 1);
    assert!(
        line.starts_with("tender: error: stick: is a directory"),
        "{line}"
    );
    assert!(
        line.contains("expected a bundle file (NAME.tender)"),
        "{line}"
    );
    assert!(line.contains("NAME.tender.volumes.json"), "{line}");
    assert!(!line.contains("did you mean"), "nothing to suggest: {line}");

    // With bundle files in it, they are named.
    ws.pack_sample("stick/plant-001.tender");
    let o = tender(
        &["verify", "stick", "--trust", "policy.yaml", "--no-progress"],
        ws.path(),
    );
    let line = fails(&o, 1);
    assert!(
        line.contains("did you mean stick/plant-001.tender?"),
        "{line}"
    );
}

// --- 4. private keys open to others -------------------------------------------

#[test]
fn a_hub_key_open_to_others_is_used_with_a_warning() {
    let ws = Workspace::new();
    let sign = || {
        tender(
            &["sign", "b.tender", "--key", "qa.key", "--role", "approver"],
            ws.path(),
        )
    };
    ws.pack_sample("b.tender");
    chmod(&ws.join("qa.key"), 0o644);
    let o = sign();
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains(
            "tender: warning: permissions 0644 for qa.key are too open: a private key must be \
             readable by its owner only (chmod 600 qa.key)"
        ),
        "{}",
        stderr(&o)
    );
    // The key as keygen writes it: no warning.
    chmod(&ws.join("qa.key"), 0o600);
    let o = sign();
    assert_exit(&o, 0);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

/// The site key signs receipts, the hub's only word of what the site runs;
/// a site key others may read is refused before the site changes.
#[test]
fn a_site_key_open_to_others_is_refused_before_anything_changes() {
    let ws = Workspace::new();
    ws.pack_sample("b.tender");
    assert_exit(&tender(&["keygen", "site"], ws.path()), 0);
    let site = write_site_file(&ws, "site.yaml", "plant-001", &["c"], "siteKey: site.key\n");
    chmod(&ws.join("site.key"), 0o640);
    let o = TestCommand::new(ws.path())
        .args(["import", "b.tender", "--site"])
        .arg(&site)
        .arg("--no-progress")
        .output();
    let line = fails(&o, 1);
    assert!(
        line.contains("permissions 0640 for ")
            && line.contains("site.key are too open")
            && line.ends_with("; refusing to use it"),
        "{line}"
    );
    assert!(!ws.join("state").exists(), "the site was touched");

    // At 0600 the import goes past the key (and is audited).
    chmod(&ws.join("site.key"), 0o600);
    let o = TestCommand::new(ws.path())
        .args(["import", "b.tender", "--site"])
        .arg(&site)
        .arg("--no-progress")
        .output();
    assert!(!stderr(&o).contains("too open"), "{}", stderr(&o));
    assert!(ws.join("state").is_dir());
}

// --- 5. fleet-spec errors name the file -----------------------------------------

#[test]
fn a_fleet_spec_error_is_one_line_naming_the_file() {
    let ws = Workspace::new();
    fs::write(
        ws.join("fleet.yaml"),
        "apiVersion: tender.dev/v1alpha1\nkind: Fleet\nclusters:\n  - name: a\n    site: [x\n",
    )
    .unwrap();
    let o = tender(&["export", "fleet.yaml", "--dry-run"], ws.path());
    let line = fails(&o, 1);
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    assert!(
        line.starts_with("tender: error: fleet spec fleet.yaml: "),
        "{line}"
    );
    assert!(line.contains("line 5"), "{line}");
    assert_eq!(line.matches("error:").count(), 1, "{line}");
    assert!(!line.contains("<input>"), "{line}");
}

// --- 6. every image that cannot be pulled, none retried in vain -----------------

/// Five images that cannot be pulled, for three reasons: not in the
/// registry (404), refused (403, injected by the proxy), and a registry
/// whose host name does not resolve (`.invalid`, RFC 2606, so no DNS
/// server is needed). The export names all five with their reasons in one
/// error, and retries none of them.
#[test]
fn every_image_that_cannot_be_pulled_is_reported_and_none_is_retried() {
    let ws = Workspace::new();
    let registry = Registry::start();
    let proxy = FaultyProxy::start(
        &registry.host(),
        Fault::new(403, 1000).path_contains("/secret/"),
    );
    let host = proxy.host();
    fs::create_dir(ws.join("manifests")).unwrap();
    fs::write(
        ws.join("manifests/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
    )
    .unwrap();
    let images = [
        (format!("{host}/plant/absent-a:1.0"), "not found (HTTP 404)"),
        (format!("{host}/plant/absent-b:1.0"), "not found (HTTP 404)"),
        (
            format!("{host}/secret/denied:1.0"),
            "access denied (HTTP 403)",
        ),
        (
            "registry-a.invalid/plant/hmi:1.0".to_string(),
            "host name registry-a.invalid does not resolve",
        ),
        (
            "registry-b.invalid/plant/historian:1.0".to_string(),
            "host name registry-b.invalid does not resolve",
        ),
    ];
    let list: String = images.iter().map(|(i, _)| format!("  - {i}\n")).collect();
    fs::write(
        ws.join("fleet.yaml"),
        format!(
            "apiVersion: tender.dev/v1alpha1\nkind: Fleet\nname: f\nclusters:\n  - {{name: c1, \
             site: plant-001, tier: prod}}\nsources:\n  - name: m\n    manifests: {{path: \
             manifests}}\nimages:\n{list}registries:\n  \"{host}\": {{ plainHttp: true }}\n"
        ),
    )
    .unwrap();
    for dry_run in [false, true] {
        let mut args = vec![
            "export",
            "fleet.yaml",
            "-o",
            "out.tender",
            "--key",
            "hub.key",
            "--no-progress",
        ];
        if dry_run {
            args.push("--dry-run");
        }
        let o = ws
            .tender()
            .args(&args)
            .env("TENDER_HUB_STATE", ws.join("hub-state"))
            .output();
        let line = fails(&o, 1);
        assert!(
            line.starts_with("tender: error: 5 images could not be pulled: "),
            "{line}"
        );
        for (image, reason) in &images {
            let at = line
                .find(&format!("image {image} (used by c1 (extra image)): "))
                .unwrap_or_else(|| panic!("{image} is not named: {line}"));
            let own = &line[at..];
            let own = &own[..own.find("; image ").unwrap_or(own.len())];
            assert!(own.contains(reason), "{image}: want {reason:?} in {own}");
        }
        assert!(
            !stderr(&o).lines().any(|l| l.starts_with("retry ")),
            "a failure that cannot pass was retried:\n{}",
            stderr(&o)
        );
        assert!(!ws.join("out.tender").exists());
    }
    // The 403s went through the proxy: each manifest request was refused
    // and not sent again with backoff (the auth flow may ask once more).
    let denied = proxy
        .requests()
        .iter()
        .filter(|r| r.injected == Some(403) && r.path.contains("/manifests/"))
        .count();
    assert!(
        (1..=4).contains(&denied),
        "{denied} denied requests for 2 runs"
    );
}
