//! Whose CPU time a budget counts, and how (`track`):
//!
//! - `tree` and `group` read /proc the way "Practical resource limiting" [Practical
//!   Limiting] does: every process of the tree below the workload's main process (by
//!   parent pid), or of its process group, adds utime + stime (its live threads) +
//!   cutime + cstime (its children that exited and were waited for, and theirs). A
//!   process that leaves the tree (a daemon whose parent exited is adopted elsewhere) or
//!   the group (a shell with job control gives each job a group of its own) is not seen;
//!   neither is its time until a tracked parent reaps it.
//! - `cgroup` reads the run's cgroup's counter, which no process of the run escapes.
//!
//! /proc counts in clock ticks (10 ms at USER_HZ=100), so tree and group see each
//! process's time up to one tick late.

use crate::limiter::usage::UsageFile;
use crate::process::PidStat;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What a budget counts: the usage so far and the processes it is made of.
pub trait Tracker {
    /// CPU time of the tracked processes so far, in ns; never lower than before (time
    /// once counted is not forgotten when a process leaves).
    fn usage_ns(&mut self) -> io::Result<u64>;
    /// The tracked processes now (live ones: zombies and exiting ones left out).
    fn pids(&mut self) -> Vec<i32>;
    /// The live processes of the last `usage_ns` reading, without reading again: what
    /// can be stopped at once when that reading spent the budget.
    fn last_read(&self) -> Vec<i32> {
        Vec::new()
    }
}

/// One process as /proc/<pid>/stat gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcCpu {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub ticks: u64,
    /// A zombie or a process the kernel is tearing down: it counts, it is not signalled.
    pub dying: bool,
    pub start_time: u64,
}

impl ProcCpu {
    pub fn parse(text: &str) -> Option<ProcCpu> {
        let s = PidStat::parse(text)?;
        Some(ProcCpu {
            pid: s.pid,
            ppid: s.ppid()?,
            pgrp: s.pgrp()?,
            ticks: s.cpu_ticks()?,
            dying: s.state == 'Z' || s.state == 'X' || s.exiting(),
            start_time: s.start_time().unwrap_or(0),
        })
    }
}

/// Every process under `proc_root`, read once.
pub fn scan(proc_root: &Path) -> Vec<ProcCpu> {
    let Ok(entries) = fs::read_dir(proc_root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let text = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
            ProcCpu::parse(&text)
        })
        .collect()
}

/// The processes of `all` that a tree or group tracker counts.
pub fn select(all: &[ProcCpu], by: By, root: i32) -> Vec<ProcCpu> {
    match by {
        By::Group => all.iter().filter(|p| p.pgrp == root).copied().collect(),
        By::Tree => {
            let mut out: Vec<ProcCpu> = all.iter().filter(|p| p.pid == root).copied().collect();
            let mut i = 0;
            while i < out.len() {
                let parent = out[i].pid;
                out.extend(all.iter().filter(|p| p.ppid == parent && p.pid != root));
                i += 1;
            }
            out
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Tree,
    Group,
}

/// Tree or group tracking from /proc.
pub struct ProcTracker {
    pub proc_root: PathBuf,
    pub by: By,
    /// The workload's main pid (also its process group: it called setsid).
    pub root: i32,
    pub ns_per_tick: u64,
    most_ns: u64,
    last: Vec<ProcCpu>,
}

impl ProcTracker {
    pub fn new(proc_root: &Path, by: By, root: i32, ticks_per_s: u64) -> ProcTracker {
        ProcTracker {
            proc_root: proc_root.to_path_buf(),
            by,
            root,
            ns_per_tick: 1_000_000_000 / ticks_per_s.max(1),
            most_ns: 0,
            last: Vec::new(),
        }
    }
}

impl Tracker for ProcTracker {
    fn usage_ns(&mut self) -> io::Result<u64> {
        self.last = select(&scan(&self.proc_root), self.by, self.root);
        let ticks: u64 = self.last.iter().map(|p| p.ticks).sum();
        self.most_ns = self.most_ns.max(ticks.saturating_mul(self.ns_per_tick));
        Ok(self.most_ns)
    }
    fn pids(&mut self) -> Vec<i32> {
        let _ = self.usage_ns();
        self.last_read()
    }
    fn last_read(&self) -> Vec<i32> {
        self.last
            .iter()
            .filter(|p| !p.dying)
            .map(|p| p.pid)
            .collect()
    }
}

/// Cgroup tracking: the run's cgroup's own counter, and its processes (its folder and
/// every folder below it).
pub struct CgroupTracker {
    pub usage: UsageFile,
    pub dir: PathBuf,
    pub proc_root: PathBuf,
}

/// The pids in `dir`'s cgroup.procs and every sub-folder's.
pub fn pids_under(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(pids_under(&e.path()));
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

impl Tracker for CgroupTracker {
    fn last_read(&self) -> Vec<i32> {
        pids_under(&self.dir)
    }
    fn usage_ns(&mut self) -> io::Result<u64> {
        use crate::limiter::duty::CpuUsage;
        self.usage.usage_ns()
    }
    fn pids(&mut self) -> Vec<i32> {
        pids_under(&self.dir)
            .into_iter()
            .filter(|p| {
                fs::read_to_string(self.proc_root.join(p.to_string()).join("stat"))
                    .ok()
                    .and_then(|t| ProcCpu::parse(&t))
                    .is_some_and(|c| !c.dying)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, pgrp: i32, ticks: u64) -> ProcCpu {
        ProcCpu {
            pid,
            ppid,
            pgrp,
            ticks,
            dying: false,
            start_time: pid as u64,
        }
    }

    #[test]
    fn tree_and_group_see_different_processes() {
        // 10 is the workload (its own group); 11 a child with job control (group 11), 12
        // its child; 13 a daemon adopted by 1 but still in group 10; 20 someone else's.
        let all = [
            p(1, 0, 1, 0),
            p(10, 1, 10, 5),
            p(11, 10, 11, 100),
            p(12, 11, 11, 50),
            p(13, 1, 10, 70),
            p(20, 1, 20, 999),
        ];
        let pids = |v: Vec<ProcCpu>| {
            let mut x: Vec<i32> = v.iter().map(|p| p.pid).collect();
            x.sort();
            x
        };
        assert_eq!(pids(select(&all, By::Tree, 10)), vec![10, 11, 12]);
        assert_eq!(pids(select(&all, By::Group, 10)), vec![10, 13]);
    }

    #[test]
    fn a_real_stat_line_gives_all_four_times() {
        let line = "4242 (sh) S 4200 4242 4242 0 -1 4194304 120 0 0 0 \
                    250 13 7 2 20 0 1 0 8812 11378688 388";
        let c = ProcCpu::parse(line).unwrap();
        assert_eq!((c.pid, c.ppid, c.pgrp, c.ticks), (4242, 4200, 4242, 272));
        assert!(!c.dying);
        assert!(
            ProcCpu::parse("1 (z) Z 0 1 1 0 -1 0 0 0 0 0 1 1 0 0")
                .unwrap()
                .dying
        );
    }

    #[test]
    fn the_tracked_usage_never_goes_back() {
        let dir = std::env::temp_dir().join(format!("tb-budget-track-{}", std::process::id()));
        let write = |pid: i32, ppid: i32, ticks: u64| {
            let d = dir.join(pid.to_string());
            fs::create_dir_all(&d).unwrap();
            fs::write(
                d.join("stat"),
                format!("{pid} (x) R {ppid} 10 10 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 5"),
            )
            .unwrap();
        };
        write(10, 1, 30);
        write(11, 10, 20);
        let mut t = ProcTracker::new(&dir, By::Tree, 10, 100);
        assert_eq!(t.usage_ns().unwrap(), 500_000_000);
        // 11 is adopted elsewhere: its 20 ticks leave the tree, the count stays.
        write(11, 1, 25);
        assert_eq!(t.usage_ns().unwrap(), 500_000_000);
        assert_eq!(t.pids(), vec![10]);
        write(10, 1, 60);
        assert_eq!(t.usage_ns().unwrap(), 600_000_000);
        fs::remove_dir_all(&dir).unwrap();
    }
}
