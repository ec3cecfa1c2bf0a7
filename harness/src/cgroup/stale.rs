//! Removing cgroups left behind by runs that died without cleaning up (SIGKILL, power
//! loss). Only `throttlebench/run-<pid>-<starttime>-<seq>` folders whose owner process is
//! gone (no such pid, or a pid reused by a process that started at another time) are
//! touched.

use super::{kill_and_remove, process_start_time, CgroupError, Hierarchy};
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

/// A cgroup folder that a dead run left behind, and what became of it.
#[derive(Debug, Clone)]
pub struct StaleCgroup {
    pub path: PathBuf,
    /// Pid of the run that made it.
    pub owner_pid: u32,
    /// Processes that were still inside and were killed.
    pub killed: usize,
    /// Why it could not be removed, if it could not.
    pub error: Option<String>,
}

/// The owner pid and start time encoded in a run cgroup's name.
pub fn parse_run_name(name: &str) -> Option<(u32, u64)> {
    let mut parts = name.strip_prefix("run-")?.split('-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u32>().ok()?;
    Some((pid, start))
}

fn owner_alive(pid: u32, start: u64) -> bool {
    process_start_time(pid) == Some(start)
}

/// Find and remove every run cgroup whose owner is dead, in all hierarchies of `h`.
pub fn remove_stale(h: &Hierarchy) -> Result<Vec<StaleCgroup>, CgroupError> {
    // A run has a folder in each hierarchy it used (cpu, cpuacct, freezer, ...): they are
    // removed together, so a frozen freezer folder is thawed before the kill in the others.
    // (run folder name, owner pid, [(folder, processes in it)])
    type Run = (String, u32, Vec<(PathBuf, usize)>);
    let mut runs: Vec<Run> = Vec::new();
    for parent in h.parents() {
        let entries = match fs::read_dir(&parent) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CgroupError::io(&parent, e)),
        };
        for e in entries.flatten() {
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let name = e.file_name().to_string_lossy().to_string();
            let Some((pid, start)) = parse_run_name(&name) else {
                continue;
            };
            if owner_alive(pid, start) {
                continue;
            }
            let path = e.path();
            let procs = fs::read_to_string(path.join("cgroup.procs"))
                .map(|t| t.split_whitespace().count())
                .unwrap_or(0);
            match runs.iter_mut().find(|r| r.0 == name) {
                Some(r) => r.2.push((path, procs)),
                None => runs.push((name, pid, vec![(path, procs)])),
            }
        }
    }
    let mut found = Vec::new();
    for (_, pid, dirs) in runs {
        let paths: Vec<PathBuf> = dirs.iter().map(|d| d.0.clone()).collect();
        let error = kill_and_remove(&paths, Duration::from_secs(2))
            .err()
            .map(|e| e.to_string());
        for (path, killed) in dirs {
            found.push(StaleCgroup {
                path,
                owner_pid: pid,
                killed,
                error: error.clone(),
            });
        }
    }
    Ok(found)
}
