//! What the numbers were measured on: every table and JSON line names it.

use std::path::Path;
use std::process::Command;

pub struct Host {
    pub cpu_model: String,
    /// Hardware sha256 (x86 `sha_ni`, arm64 `sha2`), which both openssl and
    /// the sha2 crate pick at run time.
    pub sha_ni: bool,
    pub ncpu: usize,
    pub git_rev: String,
}

impl Host {
    pub fn describe(repo: &Path) -> Host {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(": "))
            .map(|(_, model)| model.to_string())
            .unwrap_or_default();
        let sha_ni = cpuinfo
            .lines()
            .filter(|l| l.starts_with("flags") || l.starts_with("Features"))
            .any(|l| l.split_whitespace().any(|f| f == "sha_ni" || f == "sha2"));
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        let git_rev = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["describe", "--always", "--dirty"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".to_string());
        Host {
            cpu_model,
            sha_ni,
            ncpu,
            git_rev,
        }
    }

    /// The 1-minute load average, as /proc/loadavg gives it.
    pub fn loadavg() -> f64 {
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Other work on the machine skews every number; say so rather than hide it.
    pub fn warn_if_busy(&self) {
        let load = Host::loadavg();
        if load > self.ncpu as f64 / 2.0 {
            super::log(format_args!(
                "warning: load average {load} on {} CPUs: other work is running, numbers will be noisy",
                self.ncpu
            ));
        }
    }
}
