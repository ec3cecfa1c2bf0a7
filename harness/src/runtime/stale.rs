//! What runs that died (SIGKILL, a crash, a power cut) left of their containers:
//! containers the runtimes still list, cgroup folders `throttlebench/throttlebench-...`
//! in any hierarchy, and bundle folders in the temp folder. Only names of this module's
//! form (`throttlebench-<pid>-<starttime>-<seq>`) whose owner is gone count; a live run's
//! containers and anything else are never touched. `cleanup` removes them through the
//! runtime first (`kill`, `delete --force` / `rm -f`), then what is left by hand.

use super::cgroups::{remove_empty_parents, remove_tree};
use super::oci;
use super::podman;
use super::{process_start_time, ContainerName, Runtime, RuntimeError, RuntimeKind, NAME_PREFIX};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What kind of leftover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftoverKind {
    /// A container a runtime still lists.
    Container(RuntimeKind),
    /// A cgroup folder (`<hierarchy>/throttlebench/<name>`).
    Cgroup,
    /// A bundle folder in the temp folder.
    Bundle,
}

/// One thing a dead run left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub kind: LeftoverKind,
    /// The container's name.
    pub name: String,
    /// The folder, for cgroups and bundles.
    pub path: Option<PathBuf>,
    /// The pid of the run that made it (no longer running).
    pub owner_pid: u32,
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.kind, &self.path) {
            (LeftoverKind::Container(k), _) => write!(f, "{} container {}", k.name(), self.name),
            (_, Some(p)) => write!(f, "{}", p.display()),
            (_, None) => write!(f, "{}", self.name),
        }
    }
}

/// Find what dead runs left: containers of `runtimes`, cgroup folders under
/// `cgroup_root`, bundles in `tmp`. Owners are looked up under `proc_root`.
pub fn find_stale(
    runtimes: &[Runtime],
    cgroup_root: &Path,
    tmp: &Path,
    proc_root: &Path,
) -> Result<Vec<Leftover>, RuntimeError> {
    let dead = |name: &str| ContainerName::parse(name).filter(|n| !n.owner_alive(proc_root));
    let mut found = Vec::new();
    for rt in runtimes {
        let names: Vec<String> = match rt.kind {
            RuntimeKind::Podman => podman::names(rt)?,
            _ => oci::list(rt)?.into_iter().map(|s| s.id).collect(),
        };
        for name in names {
            if let Some(n) = dead(&name) {
                found.push(Leftover {
                    kind: LeftoverKind::Container(rt.kind),
                    name,
                    path: None,
                    owner_pid: n.owner_pid,
                });
            }
        }
    }
    for parent in super::cgroups::parent_folders(cgroup_root) {
        for (name, path) in named_entries(&parent) {
            if let Some(n) = dead(&name) {
                found.push(Leftover {
                    kind: LeftoverKind::Cgroup,
                    name,
                    path: Some(path),
                    owner_pid: n.owner_pid,
                });
            }
        }
    }
    for (name, path) in named_entries(tmp) {
        if let Some(n) = dead(&name) {
            found.push(Leftover {
                kind: LeftoverKind::Bundle,
                name,
                path: Some(path),
                owner_pid: n.owner_pid,
            });
        }
    }
    Ok(found)
}

/// The folders in `dir` whose names start with `throttlebench-`.
fn named_entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(n, _)| n.starts_with(NAME_PREFIX))
        .collect();
    v.sort();
    v
}

/// Remove `leftovers` (from `find_stale`): containers through their runtime first, then
/// cgroup folders (their processes killed) and bundles, then empty `throttlebench`
/// parents. Each with the error that kept it, if any.
pub fn remove_stale(
    runtimes: &[Runtime],
    cgroup_root: &Path,
    leftovers: &[Leftover],
) -> Vec<(Leftover, Option<String>)> {
    let mut order: Vec<&Leftover> = leftovers.iter().collect();
    // Containers, then cgroups, then bundles.
    order.sort_by_key(|l| match l.kind {
        LeftoverKind::Container(_) => 0,
        LeftoverKind::Cgroup => 1,
        LeftoverKind::Bundle => 2,
    });
    let mut done = Vec::new();
    for l in order {
        let error = match (&l.kind, &l.path) {
            (LeftoverKind::Container(k), _) => match runtimes.iter().find(|r| r.kind == *k) {
                Some(rt) => remove_container(rt, &l.name).err().map(|e| e.to_string()),
                None => Some(format!("{} is not available to remove it", k.name())),
            },
            (LeftoverKind::Cgroup, Some(p)) => remove_tree(p, Duration::from_secs(10))
                .err()
                .map(|e| e.to_string()),
            (LeftoverKind::Bundle, Some(p)) => fs::remove_dir_all(p)
                .err()
                .filter(|e| e.kind() != std::io::ErrorKind::NotFound)
                .map(|e| format!("{}: {e}", p.display())),
            (_, None) => None,
        };
        done.push((l.clone(), error));
    }
    let _ = remove_empty_parents(cgroup_root);
    done
}

/// Kill and delete one container through its runtime, and wait (up to 10 s) for its
/// main process to be reaped by its parent (the init process).
fn remove_container(rt: &Runtime, name: &str) -> Result<(), RuntimeError> {
    let proc_root = Path::new("/proc");
    let pid = match rt.kind {
        RuntimeKind::Podman => podman::run(rt, &["inspect", "--format", "{{.State.Pid}}", name])
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok()),
        _ => oci::state(rt, name).ok().map(|s| s.pid),
    }
    .filter(|p| *p > 0);
    let started = pid.and_then(|p| process_start_time(proc_root, p));
    match rt.kind {
        RuntimeKind::Podman => podman::run(rt, &["rm", "--force", name]).map(|_| ()),
        _ => {
            // `kill` fails on a container that is not running; `delete --force` then
            // removes what is there either way.
            let _ = oci::run(rt, &["kill", name, "KILL"]);
            oci::run(rt, &["delete", "--force", name]).map(|_| ())
        }
    }?;
    // The runtime's delete removes the container's cgroups; the folder above a podman
    // container (with conmon's cgroup) is found and removed as a cgroup leftover.
    if let (Some(pid), Some(start)) = (pid, started) {
        let t = Instant::now();
        while process_start_time(proc_root, pid) == Some(start) {
            if t.elapsed() > Duration::from_secs(10) {
                return Err(RuntimeError::Runtime {
                    runtime: rt.name(),
                    what: format!("{name}: pid {pid} not reaped 10 s after delete"),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(())
}
