//! A real OCI registry (`docker-registry`, distribution 2.8) per test.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::http::http_get;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Another process may take the probed free port before the registry binds
/// it; such a start is retried on a new port.
const START_ATTEMPTS: usize = 5;

/// A `docker-registry serve` child on a free 127.0.0.1 port, speaking plain
/// HTTP, with its own storage in a temp dir and deletes enabled.
///
/// Dropping it kills and reaps the process, then removes the storage.
pub struct Registry {
    child: Child,
    port: u16,
    storage: PathBuf,
    // Dropped after `child` is killed (see `Drop`), taking the storage along.
    _dir: TempDir,
}

impl Registry {
    /// Starts a registry and waits until `GET /v2/` answers.
    ///
    /// Panics if `docker-registry` is missing (run `scripts/install-deps.sh`)
    /// or if it does not come up within ~10 s.
    pub fn start() -> Registry {
        let binary = registry_binary();
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&binary) {
                Ok(registry) => return registry,
                Err(error) => last_error = error,
            }
        }
        panic!("docker-registry did not start after {START_ATTEMPTS} attempts: {last_error}");
    }

    fn try_start(binary: &Path) -> Result<Registry, String> {
        let dir = tempfile::Builder::new()
            .prefix("tender-registry-")
            .tempdir()
            .map_err(|e| format!("creating a temp dir: {e}"))?;
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).map_err(|e| format!("creating {}: {e}", storage.display()))?;
        let port = free_port();
        let config = dir.path().join("config.yml");
        fs::write(&config, config_yaml(&storage, port))
            .map_err(|e| format!("writing {}: {e}", config.display()))?;
        let log_path = dir.path().join("registry.log");
        let log = fs::File::create(&log_path).map_err(|e| format!("creating log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("cloning log: {e}"))?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
        let mut registry = Registry {
            child,
            port,
            storage,
            _dir: dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = registry.child.try_wait() {
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("exited with {status} on port {port}: {log}"));
            }
            if http_get(&registry.host(), "/v2/").is_ok_and(|r| r.status == 200) {
                return Ok(registry);
            }
            if Instant::now() > deadline {
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                registry.stop();
                panic!(
                    "docker-registry on port {port} did not answer GET /v2/ within {READY_TIMEOUT:?}; log:\n{log}"
                );
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// `127.0.0.1:PORT`, the form image references use.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The port the registry listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The filesystem storage root (`docker/registry/v2/...` lives below it).
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn registry_binary() -> PathBuf {
    let binary = PathBuf::from(REGISTRY_BIN);
    if binary.is_file() {
        return binary;
    }
    panic!(
        "docker-registry is not installed (expected {REGISTRY_BIN}, Debian package docker-registry); \
         run scripts/install-deps.sh"
    );
}

/// A port that was free a moment ago (the OS picks it for a bind to port 0).
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn config_yaml(storage: &Path, port: u16) -> String {
    format!(
        "version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: tender-test-registry
",
        storage = storage.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_v2_and_cleans_up() {
        let registry = Registry::start();
        let response = http_get(&registry.host(), "/v2/").unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("docker-distribution-api-version"),
            Some("registry/2.0")
        );
        assert!(registry.url().starts_with("http://127.0.0.1:"));
        let storage = registry.storage_dir().to_path_buf();
        assert!(storage.is_dir());
        let host = registry.host();

        drop(registry);
        assert!(!storage.exists(), "storage must be removed on drop");
        assert!(
            http_get(&host, "/v2/").is_err(),
            "the registry must be gone after drop"
        );
    }

    #[test]
    fn instances_get_distinct_ports_and_storage() {
        let a = Registry::start();
        let b = Registry::start();
        assert_ne!(a.port(), b.port());
        assert_ne!(a.storage_dir(), b.storage_dir());
        assert_eq!(http_get(&a.host(), "/v2/").unwrap().status, 200);
        assert_eq!(http_get(&b.host(), "/v2/").unwrap().status, 200);
    }
}
