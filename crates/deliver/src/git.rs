//! Delivery as a git commit, through the `git` CLI (so the site's own git
//! configuration, credential helpers and SSH setup apply to the push).
//!
//! Each delivery, in a private temporary clone:
//!
//! 1. fetch the branch (depth 1), or start it as an orphan if the remote
//!    has no such branch;
//! 2. replace `<path>/` with the manifest files (tender owns that
//!    directory; with `path: .` the whole branch). Files outside it are
//!    kept. Files are named as [`crate::files`] says, one per object;
//! 3. if the tree did not change, stop: no commit, nothing pushed
//!    ([`GitOutcome::changed`] is false);
//! 4. commit as `tender <tender@<site>>` (author from the config if set),
//!    author and committer date the import time, so redelivering the same
//!    release onto the same parent gives the same commit id. The message
//!    is [`commit_message`]: a subject and `Key: value` trailers (`git
//!    interpret-trailers --parse` reads them);
//! 5. push `HEAD:refs/heads/<branch>`, never forced. If the remote moved
//!    meanwhile, start over from 1 (at most [`PUSH_ATTEMPTS`] times).
//!
//! Hooks are off (`core.hooksPath=/dev/null`, `--no-verify`), prompts are
//! off (`GIT_TERMINAL_PROMPT=0`: a missing credential fails, it does not
//! hang), and messages are in English (`LC_ALL=C`).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tender_format::FromIo;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::DeliveryContext;
use crate::config::GitDelivery;
use crate::error::DeliverError;
use crate::files::check_files;

/// Fetch-commit-push rounds tried when the remote keeps moving.
pub const PUSH_ATTEMPTS: usize = 3;

/// What a git delivery did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GitOutcome {
    /// The branch head afterwards; `None` only if the branch did not exist
    /// and there was nothing to commit (an empty manifest set).
    pub commit: Option<String>,
    /// A commit was made and pushed; false: the tree was already this.
    pub changed: bool,
    pub files: usize,
}

/// The commit message (see the module docs). Fields are single-line.
pub fn commit_message(ctx: &DeliveryContext) -> String {
    let one = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let mut text = format!(
        "tender: {} sequence {} (bundle {})\n\nSite: {}\nCluster: {}\nBundle: {}\nManifest-Set: {}\n",
        one(&ctx.channel),
        ctx.sequence,
        one(&ctx.bundle_id),
        one(&ctx.site),
        one(&ctx.cluster),
        one(&ctx.bundle_id),
        ctx.manifest_set_digest,
    );
    for s in &ctx.signers {
        text.push_str(&format!(
            "Signed-By: {} ({}, {})\n",
            one(&s.key_id),
            one(&s.role),
            one(&s.signer)
        ));
    }
    text
}

/// Commits `files` under the configured path and pushes (see the module
/// docs). `files` are relative to that path.
pub fn deliver_git(
    config: &GitDelivery,
    ctx: &DeliveryContext,
    files: &[(String, Vec<u8>)],
) -> Result<GitOutcome, DeliverError> {
    check_files(files)?;
    let subdir = config.checked_subdir()?;
    let date = git_date(&ctx.imported_at)?;
    let repo = resolve_repo(&config.repo);
    let scratch = tempfile::Builder::new()
        .prefix("tender-git-")
        .tempdir()
        .map_err(|e| {
            DeliverError::io_at("creating a work directory in", std::env::temp_dir(), e)
        })?;
    Git::new(scratch.path()).run(&["check-ref-format", "--branch", &config.branch])?;
    let mut last_rejection = String::new();
    for attempt in 0..PUSH_ATTEMPTS {
        let work = scratch.path().join(format!("work-{attempt}"));
        match attempt_once(config, ctx, files, subdir.as_deref(), &repo, &work, &date)? {
            Attempt::Done(outcome) => return Ok(outcome),
            Attempt::Rejected(stderr) => last_rejection = stderr,
        }
    }
    Err(DeliverError::PushRejected {
        repo: redact(&config.repo),
        branch: config.branch.clone(),
        attempts: PUSH_ATTEMPTS,
        stderr: last_rejection,
    })
}

enum Attempt {
    Done(GitOutcome),
    Rejected(String),
}

/// One fetch-commit-push round in `work` (module docs, steps 1–5).
fn attempt_once(
    config: &GitDelivery,
    ctx: &DeliveryContext,
    files: &[(String, Vec<u8>)],
    subdir: Option<&str>,
    repo: &str,
    work: &Path,
    date: &str,
) -> Result<Attempt, DeliverError> {
    let remote_ref = format!("refs/heads/{}", config.branch);
    let git = check_out_branch(work, repo, &config.branch, &remote_ref)?;
    replace_owned_files(work, subdir, files)?;
    // The whole tree: nothing outside tender's path was touched, and a
    // pathspec naming a directory that no longer exists would fail.
    git.run(&["add", "-A"])?;
    // Step 3: an unchanged tree is not committed.
    if git.status(&["diff", "--cached", "--quiet"])? {
        let head = git.status(&["rev-parse", "-q", "--verify", "HEAD"])?;
        let commit = if head { Some(git.head()?) } else { None };
        return Ok(Attempt::Done(GitOutcome {
            commit,
            changed: false,
            files: files.len(),
        }));
    }
    commit(&git, config, ctx, date)?;
    if let Some(rejection) = push(&git, repo, &remote_ref)? {
        return Ok(Attempt::Rejected(rejection));
    }
    Ok(Attempt::Done(GitOutcome {
        commit: Some(git.head()?),
        changed: true,
        files: files.len(),
    }))
}

/// Step 1: a fresh repository in `work` on `branch`, fetched from `repo`
/// (depth 1) or, if the remote has no such branch, an orphan.
fn check_out_branch(
    work: &Path,
    repo: &str,
    branch: &str,
    remote_ref: &str,
) -> Result<Git, DeliverError> {
    let parent = work.parent().expect("work dir has a parent");
    Git::new(parent).run_os(&["init".into(), "-q".into(), work.as_os_str().to_owned()])?;
    let git = Git::new(work);
    let heads = git.run(&["ls-remote", repo, remote_ref])?;
    let exists = String::from_utf8_lossy(&heads.stdout)
        .lines()
        .any(|l| l.split('\t').nth(1) == Some(remote_ref));
    if exists {
        git.run(&["fetch", "-q", "--no-tags", "--depth=1", repo, remote_ref])?;
        git.run(&["checkout", "-q", "-B", branch, "FETCH_HEAD"])?;
    } else {
        git.run(&["symbolic-ref", "HEAD", remote_ref])?;
    }
    Ok(git)
}

/// Step 2: replace what tender owns (`subdir`, or everything but `.git`)
/// with `files`, refusing to follow a committed symlink out.
fn replace_owned_files(
    work: &Path,
    subdir: Option<&str>,
    files: &[(String, Vec<u8>)],
) -> Result<(), DeliverError> {
    let target = match subdir {
        Some(dir) => {
            let mut at = work.to_path_buf();
            for component in dir.split('/') {
                at.push(component);
                if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                    return Err(DeliverError::Config(format!(
                        "git path {dir:?}: {component:?} is a symlink in the repository"
                    )));
                }
            }
            remove_any(&at)?;
            at
        }
        None => {
            for entry in read_dir(work)? {
                if entry.file_name() != ".git" {
                    remove_any(&entry.path())?;
                }
            }
            work.to_path_buf()
        }
    };
    for (name, data) in files {
        let path = target.join(name);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| DeliverError::io_at("creating", dir, e))?;
        }
        fs::write(&path, data).map_err(|e| DeliverError::io_at("writing", &path, e))?;
    }
    Ok(())
}

/// Step 4: commit the index as the module docs say, dated `date`.
fn commit(
    git: &Git,
    config: &GitDelivery,
    ctx: &DeliveryContext,
    date: &str,
) -> Result<(), DeliverError> {
    let parent = git.dir.parent().expect("work dir has a parent");
    let message = parent.join("message");
    fs::write(&message, commit_message(ctx))
        .map_err(|e| DeliverError::io_at("writing", &message, e))?;
    let site_email = format!("tender@{}", ctx.site);
    let author_name = config
        .author_name
        .clone()
        .unwrap_or_else(|| "tender".into());
    let author_email = config
        .author_email
        .clone()
        .unwrap_or_else(|| site_email.clone());
    let mut commit = git.command(&[
        "commit".into(),
        "-q".into(),
        "--no-verify".into(),
        "--no-gpg-sign".into(),
        "--cleanup=verbatim".into(),
        "-F".into(),
        message.into_os_string(),
    ]);
    commit
        .env("GIT_AUTHOR_NAME", author_name)
        .env("GIT_AUTHOR_EMAIL", author_email)
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_NAME", "tender")
        .env("GIT_COMMITTER_EMAIL", site_email)
        .env("GIT_COMMITTER_DATE", date);
    git.finish(commit, "commit")?;
    Ok(())
}

/// Step 5: push `HEAD` to `remote_ref`, never forced. `Some(stderr)` when
/// the remote moved meanwhile (try again), an error for any other refusal.
fn push(git: &Git, repo: &str, remote_ref: &str) -> Result<Option<String>, DeliverError> {
    let push = git.output(&[
        "push",
        "-q",
        "--porcelain",
        repo,
        &format!("HEAD:{remote_ref}"),
    ])?;
    if !push.status.success() {
        let stderr = tail(&push.stderr);
        let stdout = String::from_utf8_lossy(&push.stdout);
        let moved = ["fetch first", "non-fast-forward", "stale info"]
            .iter()
            .any(|m| stderr.contains(m) || stdout.contains(m));
        if moved {
            return Ok(Some(stderr));
        }
        return Err(DeliverError::Tool {
            program: "git".into(),
            args: format!("push {} HEAD:{remote_ref}", redact(repo)),
            status: push.status.to_string(),
            stderr,
        });
    }
    Ok(None)
}

/// `2026-11-26T03:42:00Z` → `1795664520 +0000` (git's internal format).
fn git_date(rfc3339: &str) -> Result<String, DeliverError> {
    let t = OffsetDateTime::parse(rfc3339, &Rfc3339).map_err(|e| {
        DeliverError::Config(format!("import time {rfc3339:?} is not RFC 3339: {e}"))
    })?;
    Ok(format!("{} +0000", t.unix_timestamp()))
}

/// A local path is made absolute (git runs in the work directory); URLs
/// and `host:path` remotes pass through.
fn resolve_repo(repo: &str) -> String {
    let path = Path::new(repo);
    if !repo.contains("://")
        && path.exists()
        && let Ok(abs) = std::path::absolute(path)
    {
        return abs.to_string_lossy().into_owned();
    }
    repo.to_string()
}

/// `https://user:token@host/x` → `https://***@host/x`, for messages.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && !userinfo.contains('/')
    {
        return format!("{scheme}://***@{host}");
    }
    url.to_string()
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, DeliverError> {
    fs::read_dir(dir)
        .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
        .map_err(|e| DeliverError::io_at("listing", dir, e))
}

fn remove_any(path: &Path) -> Result<(), DeliverError> {
    let result = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    result.map_err(|e| DeliverError::io_at("removing", path, e))
}

/// The last lines of a tool's stderr, for an error message.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(8)..].join(" | ")
}

/// `git` run in one directory with tender's fixed settings.
struct Git {
    dir: PathBuf,
}

impl Git {
    fn new(dir: &Path) -> Git {
        Git {
            dir: dir.to_path_buf(),
        }
    }

    fn command(&self, args: &[OsString]) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.dir)
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "core.autocrlf=false",
            ])
            .args([
                "-c",
                "advice.detachedHead=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        cmd
    }

    fn output(&self, args: &[&str]) -> Result<Output, DeliverError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        self.command(&args)
            .output()
            .map_err(|source| DeliverError::Spawn {
                program: "git".into(),
                source,
            })
    }

    fn finish(&self, mut cmd: Command, what: &str) -> Result<Output, DeliverError> {
        let output = cmd.output().map_err(|source| DeliverError::Spawn {
            program: "git".into(),
            source,
        })?;
        if !output.status.success() {
            return Err(DeliverError::Tool {
                program: "git".into(),
                args: what.to_string(),
                status: output.status.to_string(),
                stderr: tail(&output.stderr),
            });
        }
        Ok(output)
    }

    fn run_os(&self, args: &[OsString]) -> Result<Output, DeliverError> {
        let what = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        self.finish(self.command(args), &what)
    }

    fn run(&self, args: &[&str]) -> Result<Output, DeliverError> {
        let what = args.iter().map(|a| redact(a)).collect::<Vec<_>>().join(" ");
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        self.finish(self.command(&args), &what)
    }

    /// Runs a yes/no command: exit 0 is true, 1 is false, else an error.
    fn status(&self, args: &[&str]) -> Result<bool, DeliverError> {
        let output = self.output(args)?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(DeliverError::Tool {
                program: "git".into(),
                args: args.join(" "),
                status: output.status.to_string(),
                stderr: tail(&output.stderr),
            }),
        }
    }

    fn head(&self) -> Result<String, DeliverError> {
        let out = self.run(&["rev-parse", "HEAD"])?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_context;

    #[test]
    fn commit_message_has_subject_and_trailers() {
        let mut ctx = test_context();
        ctx.signers.push(crate::Signer {
            key_id: "k2".into(),
            role: "security".into(),
            signer: "sec\nInjected: yes".into(),
        });
        assert_eq!(
            commit_message(&ctx),
            format!(
                "tender: stable sequence 42 (bundle b-0042)\n\n\
                 Site: plant-001\nCluster: plant-001-line-a\nBundle: b-0042\n\
                 Manifest-Set: {}\n\
                 Signed-By: k1 (release, ci@hub)\n\
                 Signed-By: k2 (security, sec Injected: yes)\n",
                ctx.manifest_set_digest
            )
        );
    }

    #[test]
    fn dates_and_urls() {
        assert_eq!(
            git_date("2026-11-26T03:42:00Z").unwrap(),
            "1795664520 +0000"
        );
        assert_eq!(
            git_date("2026-11-26T04:42:00+01:00").unwrap(),
            "1795664520 +0000"
        );
        assert!(git_date("yesterday").is_err());
        assert_eq!(
            redact("https://u:tok@git.local/x.git"),
            "https://***@git.local/x.git"
        );
        assert_eq!(redact("git@host:x.git"), "git@host:x.git");
        assert_eq!(
            resolve_repo("https://git.local/x.git"),
            "https://git.local/x.git"
        );
    }
}
