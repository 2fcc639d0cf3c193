//! `TestCommand`: one builder for running the built `tender` binary in a
//! test, after ripgrep's `tests/util.rs`. Arguments are anything
//! `AsRef<OsStr>` (paths included, no `to_str().unwrap()`), and the run
//! methods assert the exit code, showing both streams when it differs.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub struct TestCommand {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl TestCommand {
    /// `tender` with `cwd` as working directory and `NO_COLOR=1`.
    pub fn new(cwd: &Path) -> TestCommand {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tender"));
        cmd.current_dir(cwd).env("NO_COLOR", "1");
        TestCommand { cmd, stdin: None }
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.env(key, value);
        self
    }

    /// Runs without `key` in the environment, whatever the test's has.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.env_remove(key);
        self
    }

    /// Bytes fed to the command's standard input.
    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut TestCommand {
        self.stdin = Some(bytes.into());
        self
    }

    /// Standard input from another process: the stdout of a command
    /// started with [`TestCommand::spawn_piped`], for `a | b`.
    pub fn stdin_from(&mut self, source: impl Into<Stdio>) -> &mut TestCommand {
        self.cmd.stdin(source);
        self
    }

    /// Starts the command with stdout and stderr piped, to feed another
    /// command; `wait_with_output` gives its exit code and stderr.
    pub fn spawn_piped(&mut self) -> Child {
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tender")
    }

    /// The underlying command, for a caller that owns it (e.g. to run it
    /// under another program or with its own pipes).
    pub fn into_command(self) -> Command {
        self.cmd
    }

    /// Runs to completion whatever the exit code.
    pub fn output(&mut self) -> Output {
        let Some(input) = self.stdin.take() else {
            return self.cmd.output().expect("run tender");
        };
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tender");
        let mut pipe = child.stdin.take().expect("stdin piped");
        // A writer thread, so a command that writes before reading all of
        // its input cannot deadlock against us.
        let writer = std::thread::spawn(move || {
            // A command may exit without reading everything: not our failure.
            let _ = pipe.write_all(&input);
        });
        let out = child.wait_with_output().expect("wait for tender");
        writer.join().expect("stdin writer");
        out
    }

    /// Runs and asserts the exit code.
    #[track_caller]
    pub fn expect_exit(&mut self, code: i32) -> Output {
        let out = self.output();
        assert_exit(&out, code);
        out
    }

    /// Runs and asserts success.
    #[track_caller]
    pub fn ok(&mut self) -> Output {
        self.expect_exit(0)
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts an exit code, showing both streams when it differs.
#[track_caller]
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}
