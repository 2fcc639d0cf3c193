//! Test hook: with the `failpoints` feature (only the test build turns it
//! on), `TENDER_FAILPOINT=<name>` aborts the process at that point, as
//! `kill -9` would, so tests can prove an import resumes from every phase.
//! Names: `staged`, `mid-load`, `loaded`, `recorded`, `committed`. A
//! release build has no hook and reads no environment.

/// Aborts here if the test armed this failpoint.
#[cfg(feature = "failpoints")]
pub(crate) fn failpoint(name: &str) {
    if std::env::var("TENDER_FAILPOINT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}

/// Without the feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn failpoint(_name: &str) {}
