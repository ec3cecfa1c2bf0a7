//! Probes: measurements of the machine itself rather than of a limiter, runnable alone
//! (`throttlebench probe steal|entropy`) or as a scenario's workload (`workload.kind =
//! "steal"` / `"entropy"`), so that they run under any limiter and are recorded like any
//! run.
//!
//! - `steal`: CPU time the hypervisor accounts as stolen (/proc/stat) next to the stalls a
//!   pinned spinning thread observes, with stalls caused by a cgroup's throttling told
//!   apart.
//! - `entropy`: the kernel's RNG: readiness, supply of each source with concurrent readers,
//!   and the FIPS 140-2 tests (the same counts as rngtest).

pub mod entropy;
pub mod fips;
pub mod steal;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a probe run as a workload prints on stdout (one JSON line), for the harness to
/// record: `{"type":"steal_probe",...}` or `{"type":"entropy_probe",...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProbeOutput {
    StealProbe(steal::StealReport),
    EntropyProbe(entropy::EntropyReport),
}

/// Write `rows` as CSV with a header from the row type.
pub(crate) fn write_rows<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| path.display().to_string())?;
    for r in rows {
        w.serialize(r).with_context(|| path.display().to_string())?;
    }
    w.flush().with_context(|| path.display().to_string())?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::{Path, PathBuf};

    /// A folder removed when dropped.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static SEQ: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "tb-probe-{tag}-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
