//! CLI conventions: exit codes, refusing to overwrite keys, clear errors.

use crate::util::{TestCommand, Workspace, assert_exit, stderr, tender};

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_exit(&tender(&["verify"], dir.path()), 2);
    assert_exit(&tender(&["no-such-command"], dir.path()), 2);
    assert_exit(&tender(&["keygen", "../evil"], dir.path()), 2);
}

#[test]
fn keygen_never_overwrites_a_key() {
    let ws = Workspace::new();
    let before = std::fs::read(ws.join("hub.key")).unwrap();
    let o = tender(&["keygen", "hub"], ws.path());
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("refusing to overwrite"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(ws.join("hub.key")).unwrap(), before);
}

#[test]
fn machine_problems_exit_1_not_3() {
    let ws = Workspace::new();
    let o = tender(
        &["verify", "missing.tender", "--trust", "policy.yaml"],
        ws.path(),
    );
    assert_exit(&o, 1);
    std::fs::write(
        ws.join("empty-policy.yaml"),
        "version: 1\nkeys: []\nthresholds: {}\n",
    )
    .unwrap();
    let bundle = ws.pack_sample("b.tender");
    let o = TestCommand::new(ws.path())
        .arg("verify")
        .arg(&bundle)
        .args(["--trust", "empty-policy.yaml"])
        .output();
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("must require signatures"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn help_lists_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let o = tender(&["--help"], dir.path());
    assert_exit(&o, 0);
    assert!(crate::util::stdout(&o).contains("3 bundle rejected"));
}
