//! `throttlebench cleanup`: what `run` does before it starts, on demand. Every
//! `throttlebench/run-<pid>-<starttime>-<seq>` cgroup whose owner is dead (SIGKILL, a
//! crash, a power cut) has its processes killed (thawed and continued first, so frozen or
//! stopped ones die too) and is removed; empty `throttlebench` parents go as well.
//! Cgroups of live runs and anything not named by this tool are not touched. Containers
//! of dead runs that an installed OCI runtime (runc, crun, podman) still holds go first,
//! through the runtime, with their cgroups and bundle folders (`crate::runtime`).
//!
//! `cleanup --check` changes nothing: it counts what the tool may have left on the
//! machine (containers of dead runs, any cgroup under the `throttlebench` parents, any
//! process running the throttlebench or fibtest program, any stopped process) and exits
//! 1 if it found any.
//! CI runs it after the test suite.

use crate::cgroup::{self, Hierarchy};
use crate::runtime;
use anyhow::Result;
use clap::Args;
use std::path::Path;

#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub root: super::CgroupRoot,
    /// Change nothing: count leftovers (cgroups under throttlebench/, processes of
    /// throttlebench or fibtest, stopped processes), list them, exit 1 if there are any.
    #[arg(long)]
    pub check: bool,
}

/// What `--check` found.
#[derive(Debug, Default, PartialEq)]
pub struct Leftovers {
    /// Folders under the `throttlebench` parents that no live run owns.
    pub cgroups: Vec<std::path::PathBuf>,
    /// Processes running this tool's programs (other than the caller) that belong to no
    /// live run.
    pub processes: Vec<String>,
    /// Processes in state T (stopped) or t, anyone's, that belong to no live run.
    pub stopped: Vec<String>,
    /// Live runs (of another shell, another suite): their cgroups and processes are
    /// theirs, not leftovers.
    pub live: Vec<String>,
    /// Processes whose program could not be read (other users' without root, or another
    /// namespace's): not inspected, so the counts above are a lower bound.
    pub uninspected: usize,
}

impl Leftovers {
    pub fn count(&self) -> usize {
        self.cgroups.len() + self.processes.len() + self.stopped.len()
    }
}

/// The owner of a run's cgroup (`run-<pid>-<starttime>-<seq>`, or a container's
/// `throttlebench-<pid>-<starttime>-<seq>`) if it is alive under `proc_root` (the same
/// pid that started at that time).
fn live_owner(name: &str, proc_root: &Path) -> Option<u32> {
    let (pid, start) = cgroup::parse_run_name(name)
        .or_else(|| runtime::ContainerName::parse(name).map(|n| (n.owner_pid, n.owner_start)))?;
    (crate::process::procs::start_time(proc_root, pid) == Some(start)).then_some(pid)
}

/// Count leftovers: cgroups under `parents` that no live run owns, and processes from
/// `proc_root` (those running a program named throttlebench or fibtest, not `me`, and
/// every stopped one) that belong to no live run. A process belongs to a live run when
/// it is in one of its cgroups or descends from its owner.
pub fn find_leftovers(parents: &[std::path::PathBuf], proc_root: &Path, me: i32) -> Leftovers {
    let mut l = Leftovers::default();
    let mut owners: Vec<i32> = Vec::new();
    let mut in_live_cgroups: Vec<i32> = Vec::new();
    for p in parents {
        let Ok(entries) = std::fs::read_dir(p) else {
            continue;
        };
        for e in entries.flatten().filter(|e| e.path().is_dir()) {
            let name = e.file_name().to_string_lossy().to_string();
            match live_owner(&name, proc_root) {
                Some(owner) => {
                    if !owners.contains(&(owner as i32)) {
                        owners.push(owner as i32);
                        l.live.push(format!("run {owner} ({name})"));
                    }
                    let procs =
                        std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
                    in_live_cgroups.extend(
                        procs
                            .split_whitespace()
                            .filter_map(|p| p.parse::<i32>().ok()),
                    );
                }
                None => l.cgroups.push(e.path()),
            }
        }
    }
    l.cgroups.sort();
    l.live.sort();
    let mut procs = crate::process::procs::all(proc_root);
    procs.sort_by_key(|p| p.pid);
    let parent_of: std::collections::HashMap<i32, i32> =
        procs.iter().map(|p| (p.pid, p.ppid)).collect();
    let of_live_run = |pid: i32| {
        if in_live_cgroups.contains(&pid) {
            return true;
        }
        let mut at = pid;
        for _ in 0..64 {
            if owners.contains(&at) {
                return true;
            }
            match parent_of.get(&at) {
                Some(&pp) if pp > 1 => at = pp,
                _ => return false,
            }
        }
        false
    };
    for info in &procs {
        if info.pid == me || info.state == 'Z' || of_live_run(info.pid) {
            continue;
        }
        let exe = match std::fs::read_link(proc_root.join(info.pid.to_string()).join("exe")) {
            Ok(e) => e
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                l.uninspected += 1;
                String::new()
            }
            // Kernel threads have no program; a process that just ended has gone.
            Err(_) => String::new(),
        };
        let what = || {
            format!(
                "{} ({}) {}",
                info.pid,
                info.name,
                crate::process::procs::cmdline(proc_root, info.pid)
            )
        };
        // A program of ours whose file was replaced by a rebuild reads "name (deleted)".
        let ours = ["throttlebench", "fibtest"]
            .iter()
            .any(|n| exe == *n || exe.starts_with(&format!("{n} ")));
        if ours {
            l.processes.push(what());
        }
        if info.is_stopped() {
            l.stopped.push(what());
        }
    }
    l
}

/// Containers, cgroups and bundles of dead runs that OCI runtimes left
/// (`crate::runtime`), from the runtimes installed here.
fn runtime_leftovers(
    cgroup_root: &Path,
    proc_root: &Path,
) -> (Vec<runtime::Runtime>, Vec<runtime::Leftover>) {
    let runtimes: Vec<runtime::Runtime> = runtime::RuntimeKind::ALL
        .into_iter()
        .filter_map(|k| runtime::Runtime::find(k, cgroup_root).ok())
        .collect();
    let found = runtime::find_stale(&runtimes, cgroup_root, &std::env::temp_dir(), proc_root)
        .unwrap_or_else(|e| {
            eprintln!("could not list containers: {e}");
            Vec::new()
        });
    (runtimes, found)
}

fn check(hierarchy: &Hierarchy, proc_root: &Path) -> i32 {
    let l = find_leftovers(&hierarchy.parents(), proc_root, std::process::id() as i32);
    let (_, stale) = runtime_leftovers(&hierarchy.root, proc_root);
    let containers: Vec<_> = stale
        .iter()
        .filter_map(|c| match c.kind {
            runtime::LeftoverKind::Container(k) => Some(format!("{} {}", k.name(), c.name)),
            _ => None,
        })
        .collect();
    for c in &containers {
        println!("container {c}");
    }
    for c in &l.cgroups {
        println!("cgroup   {}", c.display());
    }
    for p in &l.processes {
        println!("process  {p}");
    }
    for p in &l.stopped {
        println!("stopped  {p}");
    }
    for r in &l.live {
        println!("live     {r}: still running, not a leftover");
    }
    println!(
        "leftovers: {} ({} containers of dead runs, {} cgroups under throttlebench/, {} processes of throttlebench or fibtest, {} stopped processes); {} live run(s) left alone",
        l.count() + containers.len(),
        containers.len(),
        l.cgroups.len(),
        l.processes.len(),
        l.stopped.len(),
        l.live.len()
    );
    if l.uninspected > 0 {
        println!(
            "not inspected: {} process(es) whose program could not be read (other users' without root, or another namespace's): the count above may be short",
            l.uninspected
        );
    }
    i32::from(l.count() + containers.len() > 0)
}

pub fn run(cgroup_root: &Path, proc_root: &Path, args: &CleanupArgs) -> Result<i32> {
    let hierarchy = Hierarchy::detect(cgroup_root)?;
    if args.check {
        return Ok(check(&hierarchy, proc_root));
    }
    // Containers of dead runs go first, through their runtime.
    let (runtimes, containers) = runtime_leftovers(cgroup_root, proc_root);
    let mut failed = 0;
    for (l, error) in runtime::remove_stale(&runtimes, cgroup_root, &containers) {
        match error {
            None => println!("removed {l} left by dead run {}", l.owner_pid),
            Some(e) => {
                failed += 1;
                eprintln!("could not remove {l}: {e}");
            }
        }
    }
    let found = cgroup::remove_stale(&hierarchy)?;
    hierarchy.remove_parents_if_empty();
    for s in &found {
        match &s.error {
            None => println!(
                "removed {} left by dead run {} ({} process(es) killed)",
                s.path.display(),
                s.owner_pid,
                s.killed
            ),
            Some(e) => {
                failed += 1;
                eprintln!("could not remove {}: {e}", s.path.display());
            }
        }
    }
    if found.is_empty() && containers.is_empty() {
        println!("nothing to clean: no cgroup or container of a dead run under throttlebench/");
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_cgroups_under_the_parents_our_programs_and_stopped_processes() {
        let root = std::env::temp_dir().join(format!("tb-leftovers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let parent = root.join("cg/cpu/throttlebench");
        std::fs::create_dir_all(parent.join("run-1-2-0")).unwrap();
        let proc_root = root.join("proc");
        // pid: (name, state, exe)
        let procs = [
            (10, "throttlebench", 'S', "/usr/bin/throttlebench"),
            (11, "fibtest", 'R', "/x/fibtest (deleted)"),
            (12, "sed", 'T', "/usr/bin/sed"),
            (13, "bash", 'S', "/usr/bin/bash"),
            (14, "throttlebench", 'Z', "/usr/bin/throttlebench"),
            (15, "throttlebench", 'S', "/usr/bin/throttlebench"),
        ];
        for (pid, name, state, exe) in procs {
            let d = proc_root.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("stat"), format!("{pid} ({name}) {state} 1 0")).unwrap();
            std::fs::write(d.join("cmdline"), format!("{name}\0")).unwrap();
            std::os::unix::fs::symlink(exe, d.join("exe")).unwrap();
        }
        let l = find_leftovers(&[parent.clone(), root.join("none")], &proc_root, 15);
        // Its owner (pid 1) has no start time under the fake root: a dead run's.
        assert_eq!(l.cgroups, vec![parent.join("run-1-2-0")]);
        assert_eq!(l.processes.len(), 2, "{l:?}");
        assert!(l.processes[0].starts_with("10 (throttlebench)"), "{l:?}");
        assert!(l.processes[1].starts_with("11 (fibtest)"), "{l:?}");
        assert_eq!(l.stopped.len(), 1, "{l:?}");
        assert!(l.stopped[0].starts_with("12 (sed)"), "{l:?}");
        assert_eq!(l.count(), 4);
        std::fs::remove_dir_all(parent.join("run-1-2-0")).unwrap();
        let l = find_leftovers(std::slice::from_ref(&parent), &proc_root, 10);
        assert_eq!(l.cgroups.len(), 0);
        // A live run: owner 16 started at 777 (the cgroup's name says so), its
        // workload 17 below it, stopped by its limiter, and its fibtest 18 in its
        // cgroup. None of it is a leftover.
        for (pid, name, state, ppid, exe) in [
            (16, "throttlebench", 'S', 1, "/usr/bin/throttlebench"),
            (17, "sed", 'T', 16, "/usr/bin/sed"),
            (18, "fibtest", 'R', 1, "/usr/bin/throttlebench"),
        ] {
            let d = proc_root.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            // Fields 5 to 21, then the start time (field 22).
            let fields = "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 777";
            std::fs::write(
                d.join("stat"),
                format!("{pid} ({name}) {state} {ppid} {fields}"),
            )
            .unwrap();
            std::fs::write(d.join("cmdline"), format!("{name}\0")).unwrap();
            std::os::unix::fs::symlink(exe, d.join("exe")).unwrap();
        }
        let live = parent.join("run-16-777-0");
        std::fs::create_dir_all(&live).unwrap();
        std::fs::write(live.join("cgroup.procs"), "18\n").unwrap();
        let l = find_leftovers(&[parent], &proc_root, 10);
        assert_eq!(l.live, ["run 16 (run-16-777-0)"]);
        assert!(l.cgroups.is_empty(), "{l:?}");
        assert!(
            l.processes
                .iter()
                .all(|p| !p.starts_with("16 ") && !p.starts_with("18 ")),
            "{l:?}"
        );
        assert!(l.stopped.iter().all(|p| !p.starts_with("17 ")), "{l:?}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
