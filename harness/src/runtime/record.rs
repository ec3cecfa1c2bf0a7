//! What a run records of its container (run.json's `limiter.container`): the runtime
//! and the program found, the container's name and main pid, the cgroup folders that
//! were sampled, and what teardown did.

use serde::Serialize;

/// One container of a run, as run.json records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ContainerRecord {
    /// "runc", "crun" or "podman".
    pub runtime: String,
    /// The runtime's program as found on $PATH.
    pub program: String,
    /// crun only: run in a private mount namespace that hides the v2 mount.
    pub hide_unified: bool,
    /// The container's name (`throttlebench-<pid>-<start>-<seq>`).
    pub id: String,
    /// Its main process, as seen from the host.
    pub pid: u32,
    /// The cpu.stat and usage files sampled.
    pub cpu_stat: Option<String>,
    pub usage: Option<String>,
    /// Teardown: the main process was still running and was killed through the runtime.
    pub killed: bool,
    /// Teardown: cgroup folders the runtime's delete left, removed by the suite.
    pub removed_cgroups: Vec<String>,
    /// Teardown's error, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teardown_error: Option<String>,
}
