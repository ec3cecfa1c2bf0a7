//! `throttlebench cleanup`: what `run` does before it starts, on demand. Every
//! `throttlebench/run-<pid>-<starttime>-<seq>` cgroup whose owner is dead (SIGKILL, a
//! crash, a power cut) has its processes killed (thawed and continued first, so frozen or
//! stopped ones die too) and is removed; empty `throttlebench` parents go as well.
//! Cgroups of live runs and anything not named by this tool are not touched.
//!
//! `cleanup --check` changes nothing: it counts what the tool may have left on the
//! machine (any cgroup under the `throttlebench` parents, any process running the
//! throttlebench or fibtest program, any stopped process) and exits 1 if it found any.
//! CI runs it after the test suite.

use crate::cgroup::{self, Hierarchy};
use anyhow::Result;
use clap::Args;
use std::path::Path;

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Change nothing: count leftovers (cgroups under throttlebench/, processes of
    /// throttlebench or fibtest, stopped processes), list them, exit 1 if there are any.
    #[arg(long)]
    pub check: bool,
}

/// What `--check` found.
#[derive(Debug, Default, PartialEq)]
pub struct Leftovers {
    pub cgroups: Vec<std::path::PathBuf>,
    /// Processes running this tool's programs (other than the caller).
    pub processes: Vec<String>,
    /// Processes in state T (stopped) or t, anyone's.
    pub stopped: Vec<String>,
}

impl Leftovers {
    pub fn count(&self) -> usize {
        self.cgroups.len() + self.processes.len() + self.stopped.len()
    }
}

/// Count leftovers: cgroups under the parents of `hierarchy`, and processes from
/// `proc_root` (those running a program named throttlebench or fibtest, not `me`, and
/// every stopped one).
pub fn find_leftovers(parents: &[std::path::PathBuf], proc_root: &Path, me: i32) -> Leftovers {
    let mut l = Leftovers::default();
    for p in parents {
        if let Ok(entries) = std::fs::read_dir(p) {
            l.cgroups
                .extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
    }
    l.cgroups.sort();
    let mut procs = crate::process::procs::all(proc_root);
    procs.sort_by_key(|p| p.pid);
    for info in procs {
        if info.pid == me || info.state == 'Z' {
            continue;
        }
        let exe = std::fs::read_link(proc_root.join(info.pid.to_string()).join("exe"))
            .ok()
            .and_then(|e| e.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
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

fn check(hierarchy: &Hierarchy, proc_root: &Path) -> i32 {
    let l = find_leftovers(&hierarchy.parents(), proc_root, std::process::id() as i32);
    for c in &l.cgroups {
        println!("cgroup   {}", c.display());
    }
    for p in &l.processes {
        println!("process  {p}");
    }
    for p in &l.stopped {
        println!("stopped  {p}");
    }
    println!(
        "leftovers: {} ({} cgroups under throttlebench/, {} processes of throttlebench or fibtest, {} stopped processes)",
        l.count(),
        l.cgroups.len(),
        l.processes.len(),
        l.stopped.len()
    );
    i32::from(l.count() > 0)
}

pub fn run(cgroup_root: &Path, proc_root: &Path, args: &CleanupArgs) -> Result<i32> {
    let hierarchy = Hierarchy::detect(cgroup_root)?;
    if args.check {
        return Ok(check(&hierarchy, proc_root));
    }
    let found = cgroup::remove_stale(&hierarchy)?;
    hierarchy.remove_parents_if_empty();
    let mut failed = 0;
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
    if found.is_empty() {
        println!("nothing to clean: no cgroup of a dead run under throttlebench/");
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
        assert_eq!(l.cgroups, vec![parent.join("run-1-2-0")]);
        assert_eq!(l.processes.len(), 2, "{l:?}");
        assert!(l.processes[0].starts_with("10 (throttlebench)"), "{l:?}");
        assert!(l.processes[1].starts_with("11 (fibtest)"), "{l:?}");
        assert_eq!(l.stopped.len(), 1, "{l:?}");
        assert!(l.stopped[0].starts_with("12 (sed)"), "{l:?}");
        assert_eq!(l.count(), 4);
        std::fs::remove_dir_all(parent.join("run-1-2-0")).unwrap();
        let l = find_leftovers(&[parent], &proc_root, 10);
        assert_eq!(l.cgroups.len(), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
