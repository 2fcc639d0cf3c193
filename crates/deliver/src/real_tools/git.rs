//! Git delivery into a real bare repository, read back with git.

use std::path::Path;
use std::process::Command;

use crate::GitDelivery;
use crate::files::one_file_per_object;
use crate::git::{commit_message, deliver_git};

use super::{SET_V1, context};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn bare_repo(dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("fleet.git");
    git(dir, &["init", "-q", "--bare", repo.to_str().unwrap()]);
    repo
}

fn config(repo: &Path, path: &str) -> GitDelivery {
    GitDelivery {
        repo: repo.to_string_lossy().into_owned(),
        branch: "plant-001-line-a".into(),
        path: path.into(),
        author_name: None,
        author_email: None,
    }
}

/// v1 with the ConfigMap changed and the Namespace gone.
fn set_v2() -> String {
    SET_V1
        .replace("opc.tcp://plc-7:4840", "opc.tcp://plc-8:4840")
        .replace(
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: line-a\n",
            "",
        )
}

#[test]
fn delivers_commits_and_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = bare_repo(tmp.path());
    let config = config(&repo, "clusters/line-a");

    let one = deliver_git(&config, &context(1), &one_file_per_object(SET_V1).unwrap()).unwrap();
    assert!(one.changed);
    assert_eq!(one.files, 3);
    let c1 = one.commit.clone().unwrap();
    assert_eq!(
        git(&repo, &["rev-parse", "refs/heads/plant-001-line-a"]).trim(),
        c1
    );

    let tree = git(&repo, &["ls-tree", "-r", "--name-only", &c1]);
    assert_eq!(
        tree.lines().collect::<Vec<_>>(),
        [
            "clusters/line-a/configmap-line-a-gateway.yaml",
            "clusters/line-a/deployment-line-a-opcua-gateway.yaml",
            "clusters/line-a/namespace-line-a.yaml",
        ]
    );
    assert_eq!(
        git(
            &repo,
            &[
                "show",
                &format!("{c1}:clusters/line-a/namespace-line-a.yaml")
            ]
        ),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: line-a\n"
    );
    let meta = git(
        &repo,
        &["log", "-1", "--format=%an <%ae>%n%cn <%ce>%n%aI%n%cI", &c1],
    );
    assert_eq!(
        meta,
        "tender <tender@plant-001>\ntender <tender@plant-001>\n\
         2026-11-27T08:00:01Z\n2026-11-27T08:00:01Z\n"
    );
    let message = git(&repo, &["log", "-1", "--format=%B", &c1]);
    assert_eq!(message.trim_end(), commit_message(&context(1)).trim_end());
    assert!(message.starts_with("tender: stable sequence 1 (bundle bundle-0001)\n\n"));
    let trailers = git(
        &repo,
        &["log", "-1", "--format=%(trailers:only,unfold)", &c1],
    );
    assert_eq!(
        trailers.trim_end(),
        format!(
            "Site: plant-001\nCluster: plant-001-line-a\nBundle: bundle-0001\n\
             Manifest-Set: {}\n\
             Signed-By: hub-release-1 (release, ci@hub.example)\n\
             Signed-By: sec-2 (security, alice@hub.example)",
            context(1).manifest_set_digest
        )
    );

    // The same set again: no commit, nothing pushed.
    let same = deliver_git(&config, &context(1), &one_file_per_object(SET_V1).unwrap()).unwrap();
    assert!(!same.changed);
    assert_eq!(same.commit.as_deref(), Some(c1.as_str()));
    assert_eq!(
        git(&repo, &["rev-list", "--count", "plant-001-line-a"]).trim(),
        "1"
    );

    // v2: one object changed, one gone.
    let two = deliver_git(
        &config,
        &context(2),
        &one_file_per_object(&set_v2()).unwrap(),
    )
    .unwrap();
    assert!(two.changed);
    let c2 = two.commit.unwrap();
    assert_eq!(git(&repo, &["rev-parse", &format!("{c2}~1")]).trim(), c1);
    let diff = git(&repo, &["diff", "--name-status", &c1, &c2]);
    assert_eq!(
        diff.lines().collect::<Vec<_>>(),
        [
            "M\tclusters/line-a/configmap-line-a-gateway.yaml",
            "D\tclusters/line-a/namespace-line-a.yaml",
        ]
    );
    assert!(
        git(
            &repo,
            &[
                "show",
                &format!("{c2}:clusters/line-a/configmap-line-a-gateway.yaml")
            ]
        )
        .contains("plc-8")
    );
    assert!(
        git(&repo, &["log", "-1", "--format=%s", &c2]).starts_with("tender: stable sequence 2")
    );
}

#[test]
fn keeps_files_outside_its_path_and_commits_deterministically() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = bare_repo(tmp.path());
    // Someone else's file on the branch, outside tender's path.
    let seed = tmp.path().join("seed");
    git(tmp.path(), &["init", "-q", seed.to_str().unwrap()]);
    std::fs::write(seed.join("README.md"), "fleet\n").unwrap();
    git(&seed, &["add", "README.md"]);
    git(
        &seed,
        &[
            "-c",
            "user.name=op",
            "-c",
            "user.email=op@site",
            "commit",
            "-q",
            "--no-gpg-sign",
            "-m",
            "seed",
        ],
    );
    git(
        &seed,
        &[
            "push",
            "-q",
            repo.to_str().unwrap(),
            "HEAD:refs/heads/plant-001-line-a",
        ],
    );

    let mut config = config(&repo, "clusters/line-a");
    config.author_name = Some("Site Operator".into());
    config.author_email = Some("ops@plant-001.example".into());
    let files = one_file_per_object(SET_V1).unwrap();
    let out = deliver_git(&config, &context(1), &files).unwrap();
    let head = out.commit.unwrap();
    let tree = git(&repo, &["ls-tree", "-r", "--name-only", &head]);
    assert!(tree.lines().any(|l| l == "README.md"), "{tree}");
    assert_eq!(tree.lines().count(), 4);
    assert_eq!(
        git(&repo, &["log", "-1", "--format=%an <%ae>|%cn <%ce>", &head]).trim(),
        "Site Operator <ops@plant-001.example>|tender <tender@plant-001>"
    );

    // An orphan branch in two fresh repositories: the same commit id.
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let mut ids = Vec::new();
    for dir in [&a, &b] {
        std::fs::create_dir(dir).unwrap();
        let repo = bare_repo(dir);
        // A file:// URL works as well as a path.
        let url = format!("file://{}", repo.display());
        let config = GitDelivery {
            repo: url,
            ..config.clone()
        };
        ids.push(
            deliver_git(&config, &context(5), &files)
                .unwrap()
                .commit
                .unwrap(),
        );
        assert_eq!(git(&repo, &["branch", "--list"]).trim(), "plant-001-line-a");
    }
    assert_eq!(ids[0], ids[1]);

    // The whole branch: path ".".
    let whole = GitDelivery {
        path: ".".into(),
        branch: "whole".into(),
        ..config
    };
    let out = deliver_git(&whole, &context(1), &files).unwrap();
    let tree = git(&repo, &["ls-tree", "--name-only", &out.commit.unwrap()]);
    assert_eq!(tree.lines().count(), 3);
}

#[test]
fn an_unreachable_repository_or_bad_branch_is_an_error_that_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let files = one_file_per_object(SET_V1).unwrap();
    let missing = config(&tmp.path().join("nope.git"), ".");
    let err = deliver_git(&missing, &context(1), &files)
        .unwrap_err()
        .to_string();
    assert!(err.contains("git ls-remote"), "{err}");
    let repo = bare_repo(tmp.path());
    let bad_branch = GitDelivery {
        branch: "a..b".into(),
        ..config(&repo, ".")
    };
    let err = deliver_git(&bad_branch, &context(1), &files)
        .unwrap_err()
        .to_string();
    assert!(err.contains("check-ref-format"), "{err}");
    assert!(git(&repo, &["branch", "--list"]).is_empty());
}

#[test]
fn an_empty_set_on_a_new_branch_commits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = bare_repo(tmp.path());
    let out = deliver_git(&config(&repo, "."), &context(1), &[]).unwrap();
    assert_eq!(out.commit, None);
    assert!(!out.changed);
    assert!(git(&repo, &["branch", "--list"]).is_empty());

    // Into a subdirectory never created, then emptied again: a release
    // without objects removes tender's files and nothing else.
    let sub = config(&repo, "clusters/line-a");
    assert_eq!(deliver_git(&sub, &context(1), &[]).unwrap().commit, None);
    let one = deliver_git(&sub, &context(2), &one_file_per_object(SET_V1).unwrap()).unwrap();
    let emptied = deliver_git(&sub, &context(3), &[]).unwrap();
    assert!(emptied.changed);
    let head = emptied.commit.unwrap();
    assert_eq!(
        git(&repo, &["rev-parse", &format!("{head}~1")]).trim(),
        one.commit.unwrap()
    );
    assert!(git(&repo, &["ls-tree", "-r", "--name-only", &head]).is_empty());
    assert!(!deliver_git(&sub, &context(4), &[]).unwrap().changed);
}
