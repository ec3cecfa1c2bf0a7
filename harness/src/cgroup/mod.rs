//! The cgroup layer: v1 (a folder per controller hierarchy) and v2 (one unified tree)
//! behind one interface, with the root folder as a parameter so tests can use a fake one.
//!
//! Every cgroup this tool makes lives under a parent folder named `throttlebench`, with a
//! child per run named `run-<pid>-<starttime>-<seq>`: the owner's pid and its start time
//! (from /proc/<pid>/stat) let a later run tell a cgroup whose owner died (even by SIGKILL)
//! from one that is still in use, and remove only those. Nothing else is touched.

mod files;
mod group;
mod hierarchy;
mod stale;

pub use files::{read_trimmed, write_file};
pub use group::{CfsHandle, Cgroup, FreezerHandle};
pub use hierarchy::{process_start_time, self_start_time, Hierarchy};
pub use stale::{parse_run_name, remove_stale, StaleCgroup};

pub(crate) use group::kill_and_remove;

use nix::errno::Errno;
use std::io;
use std::path::{Path, PathBuf};

/// CFS bandwidth settings in µs, as the kernel takes them (v1 cpu.cfs_quota_us,
/// cpu.cfs_period_us and cpu.cfs_burst_us; v2 cpu.max and cpu.max.burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CfsLimit {
    /// Run time per period; None is "max" (no limit).
    pub quota_us: Option<u64>,
    pub period_us: u64,
    pub burst_us: u64,
}

/// Name of the parent folder of every cgroup the tool makes.
pub const PARENT: &str = "throttlebench";

/// Default root of the cgroup file systems.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Version {
    #[serde(rename = "v1")]
    V1,
    #[serde(rename = "v2")]
    V2,
}

impl Version {
    pub fn name(&self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup hierarchy with the `{controller}` controller under {}: {hint}", root.display())]
    MissingController {
        controller: &'static str,
        root: PathBuf,
        hint: String,
    },
    #[error("permission denied on {}: making cgroups needs root, or write access to a delegated cgroup v2 subtree given with --cgroup-root (systemd: `systemd-run --user --scope -p Delegate=yes -- throttlebench ...`, then --cgroup-root set to that scope's folder); the `none`, `signal` and `command` limiters and the probes run without a cgroup", path.display())]
    Permission { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {what}", path.display())]
    Format { path: PathBuf, what: String },
}

impl CgroupError {
    pub fn io(path: &Path, source: io::Error) -> CgroupError {
        if matches!(source.kind(), io::ErrorKind::PermissionDenied)
            || source.raw_os_error() == Some(Errno::EPERM as i32)
        {
            CgroupError::Permission {
                path: path.to_path_buf(),
            }
        } else {
            CgroupError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// A controller this tool may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    Cpu,
    Cpuacct,
    Cpuset,
    Freezer,
}

impl Controller {
    pub fn name(&self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Freezer => "freezer",
        }
    }

    /// A file at the root of a v1 mount of this controller.
    fn v1_marker(&self) -> &'static str {
        match self {
            Controller::Cpu => "cpu.cfs_quota_us",
            Controller::Cpuacct => "cpuacct.usage",
            Controller::Cpuset => "cpuset.cpus",
            // The root freezer cgroup has no freezer.state; its mount is found by name.
            Controller::Freezer => "cgroup.procs",
        }
    }
}

#[cfg(test)]
mod tests;
