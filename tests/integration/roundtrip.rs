//! A bundle written by tender is verified by tender, extracted by GNU tar
//! and read by skopeo: break-glass at 2 AM works with stock tools.

use std::fs;
use std::process::Command;

use tender_test_support::{skopeo, skopeo_inspect_digest};

use crate::util::{Workspace, assert_exit, stdout};

#[test]
fn pack_verify_extract_with_tar_and_read_with_skopeo() {
    let ws = Workspace::new();
    let bundle = ws.pack_sample("sample.tender");

    let o = ws
        .tender()
        .arg("verify")
        .arg(&bundle)
        .args(["--trust", "policy.yaml", "--json", "--no-progress"])
        .output();
    assert_exit(&o, 0);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["sequence"], 1);
    assert_eq!(report["targets"]["sites"][0], "plant-001");
    assert_eq!(report["trust"]["signatures"][0]["status"], "valid");
    let layout = tender_test_support::repo_root().join("testdata/fleet/images");
    let blob_count = fs::read_dir(layout.join("blobs/sha256")).unwrap().count();
    assert_eq!(report["entries"], blob_count + 2);

    let out = ws.join("extracted");
    fs::create_dir(&out).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&bundle)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(out.join("oci-layout").is_file() && out.join("tender-manifest.json").is_file());

    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
    let images = index["manifests"].as_array().unwrap();
    assert!(images.len() >= 4);
    for image in images {
        let name = image["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap();
        let reference = format!("oci:{}:{name}", out.display());
        assert_eq!(
            skopeo_inspect_digest(&reference, &[]),
            image["digest"].as_str().unwrap(),
            "{name}"
        );
        // skopeo can also copy it out whole, layers included.
        let copy = ws.join("copy");
        let dest = format!("oci:{}:{name}", copy.display());
        let o = skopeo(&["--insecure-policy", "copy", "--all", &reference, &dest]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn approval_is_added_in_place_without_touching_blobs() {
    let ws = Workspace::new();
    let bundle = ws.pack_sample("sample.tender");
    fs::write(
        ws.join("gate.yaml"),
        "version: 2\nkeys:\n  - name: hub\n    public_key_file: hub.pub\n    roles: [release]\n  - name: qa\n    public_key_file: qa.pub\n    roles: [approver]\nthresholds:\n  release: 1\n  approver: 1\n",
    )
    .unwrap();
    let o = ws
        .tender()
        .arg("verify")
        .arg(&bundle)
        .args(["--trust", "gate.yaml"])
        .output();
    assert_exit(&o, 3);
    assert!(crate::util::stderr(&o).contains("role approver needs 1"));

    let before = fs::read(&bundle).unwrap();
    let o = ws
        .tender()
        .arg("sign")
        .arg(&bundle)
        .args(["--key", "qa.key", "--role", "approver"])
        .output();
    assert_exit(&o, 0);
    let after = fs::read(&bundle).unwrap();
    assert_eq!(before.len(), after.len());
    // Only the signature slot (entry 1) changed: everything from the first
    // layout entry on is byte-identical.
    let tail = before.len() - 64 * 1024;
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    assert!(!changed.is_empty());
    assert!(
        changed.iter().all(|&i| i < tail),
        "bytes past the slot changed"
    );

    let o = ws
        .tender()
        .arg("verify")
        .arg(&bundle)
        .args(["--trust", "gate.yaml", "--no-progress"])
        .output();
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("as approver by qa: valid"));
    // Signing twice with the same key and role is a no-op.
    let o = ws
        .tender()
        .arg("sign")
        .arg(&bundle)
        .args(["--key", "qa.key", "--role", "approver"])
        .output();
    assert_exit(&o, 0);
    assert_eq!(fs::read(&bundle).unwrap(), after);
}

#[test]
fn openssl_verifies_a_signature_from_the_extracted_files() {
    let ws = Workspace::new();
    let bundle = ws.pack_sample("sample.tender");
    let out = ws.join("x");
    fs::create_dir(&out).unwrap();
    assert!(
        Command::new("tar")
            .arg("-xf")
            .arg(&bundle)
            .arg("-C")
            .arg(&out)
            .status()
            .unwrap()
            .success()
    );
    let slot: serde_json::Value = serde_json::from_str(
        fs::read_to_string(out.join("tender-signatures.json"))
            .unwrap()
            .trim_end(),
    )
    .unwrap();
    let sig_hex = slot["signatures"][0]["sig"].as_str().unwrap();
    let sig: Vec<u8> = (0..sig_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&sig_hex[i..i + 2], 16).unwrap())
        .collect();
    fs::write(ws.join("sig.bin"), sig).unwrap();
    let mut msg = b"tender-bundle/v1 signature\nrole=release\n".to_vec();
    msg.extend(fs::read(out.join("tender-manifest.json")).unwrap());
    fs::write(ws.join("msg"), msg).unwrap();
    let o = Command::new("openssl")
        .args([
            "pkeyutl", "-verify", "-pubin", "-inkey", "hub.pub", "-rawin", "-in", "msg",
            "-sigfile", "sig.bin",
        ])
        .current_dir(ws.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Signature Verified Successfully"));
}
