//! Real OCI runtimes as limiters: start a workload in a container made by `runc`, `crun`
//! or `podman`, with the CPU limit in the container's OCI config, and hand back what the
//! suite needs to measure it like its own cgroup: the container's main pid and its cgroup
//! folders. Teardown goes through the runtime (`kill`, then `delete --force` / `rm -f`),
//! and what a dead run left (containers, cgroups, bundles) can be found and removed.
//!
//! No image is pulled: the root file system is assembled locally from a static busybox
//! (Debian `busybox-static`) and the binaries to run with the shared libraries `ldd`
//! names (`rootfs.rs`); the OCI `config.json` is written here (`bundle.rs`).
//!
//! Naming: every container is `throttlebench-<pid>-<starttime>-<seq>` (the owner's pid
//! and its start time from /proc/<pid>/stat, like the suite's `run-...` cgroups), its
//! bundle is the folder of that name in the temp folder, and its cgroup is
//! `/throttlebench/<name>` in every hierarchy the runtime uses (podman:
//! `/throttlebench/<name>/libpod-<hash>`, with podman's `conmon` beside it). A later run
//! tells a dead run's leftovers from a live one's by the owner (`stale.rs`).
//!
//! What works on this kind of machine (cgroup v1, the v2 mount at
//! /sys/fs/cgroup/unified, PID 1 not systemd), found by trying:
//! - runc 1.1.5 takes an absolute nested `cgroupsPath` (`/throttlebench/<name>`) and
//!   makes that folder in every hierarchy it knows, including `memory`, `pids`, `blkio`,
//!   `devices`, `name=systemd` and the v2 mount; `delete` removes the container's folders
//!   but leaves the `throttlebench` parents, which teardown removes when empty.
//! - crun 1.8.1 refuses to run on a host in hybrid mode whose v2 root lists any
//!   controller ("cgroups in hybrid mode not supported, drop all controllers from
//!   cgroupv2"; here the v2 root holds `hugetlb`). Without unmounting or rebinding
//!   anything on the host, crun is run in a private mount namespace of its own in which
//!   a tmpfs hides the v2 mount, so crun sees a pure v1 host (`Runtime::hide_unified`).
//! - podman 4.3.1 runs with `--cgroup-manager=cgroupfs` (no systemd), `--runtime runc`
//!   (its default, crun, fails as above), `--network none`, and explicit `--ulimit`s:
//!   podman lowers its own RLIMIT_NPROC to 32768 and asks for RLIMIT_NOFILE 1048576,
//!   which runc cannot set without CAP_SYS_RESOURCE ("error setting rlimit type 6:
//!   operation not permitted"). `--cgroup-parent /throttlebench/<name>` keeps the
//!   container's and conmon's cgroups under one folder of this run's own.
//!
//! Imports nothing from the rest of the crate: std, nix, libc, serde_json, thiserror.

mod bundle;
mod cgroups;
mod container;
mod oci;
mod podman;
mod rootfs;
mod stale;

pub use bundle::{write_config, CpuResources, OciConfig};
pub use cgroups::{parse_mountinfo, parse_proc_cgroup, CgroupFolder, ContainerCgroups};
pub use container::{Container, ContainerSpec, Teardown};
pub use rootfs::{parse_ldd, RootFs};
pub use stale::{find_stale, remove_stale, Leftover, LeftoverKind};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Name of the parent folder of every cgroup this suite makes (the same as the cgroup
/// layer's).
pub const PARENT: &str = "throttlebench";

/// Prefix of every container, bundle folder and container cgroup this module makes.
pub const NAME_PREFIX: &str = "throttlebench-";

/// Default root of the cgroup file systems.
pub const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Where Debian's `busybox-static` puts its binary.
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";

/// Which runtime starts the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeKind {
    Runc,
    Crun,
    Podman,
}

impl RuntimeKind {
    pub const ALL: [RuntimeKind; 3] = [RuntimeKind::Runc, RuntimeKind::Crun, RuntimeKind::Podman];

    /// The program's name (and the name in scenarios).
    pub fn name(&self) -> &'static str {
        match self {
            RuntimeKind::Runc => "runc",
            RuntimeKind::Crun => "crun",
            RuntimeKind::Podman => "podman",
        }
    }

    /// The Debian package that installs it.
    pub fn package(&self) -> &'static str {
        self.name()
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<RuntimeKind, RuntimeError> {
        RuntimeKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| RuntimeError::UnknownRuntime(s.to_string()))
    }
}

/// What can go wrong; each names the runtime, container, file or command involved.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("`{0}` is not a runtime this suite knows (runc, crun, podman)")]
    UnknownRuntime(String),
    #[error("{runtime} is not installed: no `{runtime}` in {searched} (Debian package `{package}`; .ci/run installs it)")]
    NotInstalled {
        runtime: &'static str,
        package: &'static str,
        searched: String,
    },
    #[error("{what}: {} not found ({hint})", path.display())]
    MissingFile {
        what: &'static str,
        path: PathBuf,
        hint: &'static str,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
    #[error("{runtime}: {what}")]
    Runtime { runtime: &'static str, what: String },
}

impl RuntimeError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> RuntimeError {
        RuntimeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// An installed runtime, ready to start containers.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub kind: RuntimeKind,
    /// The program found on the search path.
    pub program: PathBuf,
    /// Root of the cgroup file systems (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// crun only: run it in a private mount namespace with a tmpfs over the v2 mount,
    /// because crun refuses hybrid hosts whose v2 root lists controllers. Decided by
    /// `find` from the cgroup root; changes nothing on the host.
    pub hide_unified: bool,
}

impl Runtime {
    /// Find `kind` on $PATH, with the cgroups under `cgroup_root`.
    pub fn find(kind: RuntimeKind, cgroup_root: &Path) -> Result<Runtime, RuntimeError> {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
        Runtime::find_in(kind, &path, cgroup_root)
    }

    /// Find `kind` in the folders of `search_path` (`:`-separated, as $PATH).
    pub fn find_in(
        kind: RuntimeKind,
        search_path: &str,
        cgroup_root: &Path,
    ) -> Result<Runtime, RuntimeError> {
        let program = find_program(kind.name(), search_path).ok_or(RuntimeError::NotInstalled {
            runtime: kind.name(),
            package: kind.package(),
            searched: format!("PATH={search_path}"),
        })?;
        let hide_unified = kind == RuntimeKind::Crun && hybrid_with_v2_controllers(cgroup_root);
        Ok(Runtime {
            kind,
            program,
            cgroup_root: cgroup_root.to_path_buf(),
            hide_unified,
        })
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

/// The first executable file `name` in the folders of `search_path`.
pub fn find_program(name: &str, search_path: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    search_path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// A v1 host with a v2 mount at `<root>/unified` whose `cgroup.controllers` is not empty.
pub fn hybrid_with_v2_controllers(cgroup_root: &Path) -> bool {
    if cgroup_root.join("cgroup.controllers").exists() {
        return false; // a pure v2 host
    }
    std::fs::read_to_string(cgroup_root.join("unified/cgroup.controllers"))
        .map(|t| !t.trim().is_empty())
        .unwrap_or(false)
}

/// A container's name: `throttlebench-<owner pid>-<owner start time>-<seq>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerName {
    pub owner_pid: u32,
    pub owner_start: u64,
    pub seq: u32,
}

impl ContainerName {
    /// A new name owned by this process.
    pub fn new() -> ContainerName {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        ContainerName {
            owner_pid: pid,
            owner_start: process_start_time(Path::new("/proc"), pid).unwrap_or(0),
            seq: SEQ.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Read a name back; `None` for anything else.
    pub fn parse(text: &str) -> Option<ContainerName> {
        let mut parts = text.strip_prefix(NAME_PREFIX)?.split('-');
        let name = ContainerName {
            owner_pid: parts.next()?.parse().ok()?,
            owner_start: parts.next()?.parse().ok()?,
            seq: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(name)
    }

    /// Whether the process that made it is still running (same pid, same start time).
    pub fn owner_alive(&self, proc_root: &Path) -> bool {
        process_start_time(proc_root, self.owner_pid) == Some(self.owner_start)
    }
}

impl Default for ContainerName {
    fn default() -> Self {
        ContainerName::new()
    }
}

impl std::fmt::Display for ContainerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{NAME_PREFIX}{}-{}-{}",
            self.owner_pid, self.owner_start, self.seq
        )
    }
}

/// Field 22 (starttime, clock ticks since boot) of /proc/<pid>/stat; fields are counted
/// after the last ')' since the command name may hold spaces. (A copy of the cgroup
/// layer's reader, kept here so this module stands alone.)
pub fn process_start_time(proc_root: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 1..)?;
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests;
