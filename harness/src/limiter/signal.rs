//! SIGSTOP/SIGCONT duty cycles, by name, by process group, or by process tree.
//!
//! - `name`: like `pkill -STOP -x NAME` then `pkill -CONT -x NAME` (the first design of
//!   "EC2 Micro Instance Throttling" [EC2 Micro]), restricted to the run's cgroup so
//!   nothing else on the machine is touched. A child stopped between fork and exec is
//!   renamed by the exec and never continued: the race that article describes.
//! - `group`: `kill(-pgid)`: the workload runs in its own session (setsid), so one signal
//!   reaches every process of it, whenever it was forked (that article's fix).
//! - `tree`: walk the tree below the workload's pid, stop every process, and rescan until
//!   no new process appears ("Practical resource limiting" [Practical Limiting]); continue
//!   every process stopped and every process
//!   now in the tree.

use super::duty::Actuator;
use crate::process::procs;
use crate::scenario::schema::SignalBy;
use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::io;
use std::path::PathBuf;

pub struct SignalActuator {
    pub by: SignalBy,
    /// The workload's main pid (also its process group, as it called setsid).
    pub pid: i32,
    /// by = name: the name to match.
    pub name: String,
    /// by = name: where the candidates are (the run's cgroup.procs files; without a
    /// cgroup, the tree below `pid`).
    pub procs_files: Vec<PathBuf>,
    pub proc_root: PathBuf,
    /// by = tree: what the last pause stopped, to continue it all.
    stopped: Vec<i32>,
}

impl SignalActuator {
    pub fn new(
        by: SignalBy,
        pid: i32,
        name: String,
        procs_files: Vec<PathBuf>,
        proc_root: PathBuf,
    ) -> SignalActuator {
        SignalActuator {
            by,
            pid,
            name,
            procs_files,
            proc_root,
            stopped: Vec::new(),
        }
    }

    fn named(&self) -> Vec<i32> {
        if self.procs_files.is_empty() {
            let all = procs::all(&self.proc_root);
            let mut pids = procs::tree(&all, self.pid);
            pids.retain(|p| all.iter().any(|i| i.pid == *p && i.name == self.name));
            return pids;
        }
        let mut pids: Vec<i32> = self
            .procs_files
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids.retain(|p| {
            procs::read(&self.proc_root, *p)
                .map(|i| i.name == self.name)
                .unwrap_or(false)
        });
        pids
    }

    fn signal_all(pids: &[i32], sig: Signal) {
        for p in pids {
            // Pids of the run's own processes; ESRCH for the gone is fine.
            let _ = kill(Pid::from_raw(*p), sig);
        }
    }
}

impl Actuator for SignalActuator {
    fn pause(&mut self) -> io::Result<()> {
        match self.by {
            SignalBy::Group => {
                // The workload's own process group; ESRCH once it has gone.
                match killpg(Pid::from_raw(self.pid), Signal::SIGSTOP) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            SignalBy::Name => Self::signal_all(&self.named(), Signal::SIGSTOP),
            SignalBy::Tree => {
                // Stop, rescan, stop the new ones, until a scan finds nothing new.
                self.stopped.clear();
                loop {
                    let all = procs::all(&self.proc_root);
                    let new: Vec<i32> = procs::tree(&all, self.pid)
                        .into_iter()
                        .filter(|p| !self.stopped.contains(p))
                        .collect();
                    if new.is_empty() {
                        break;
                    }
                    Self::signal_all(&new, Signal::SIGSTOP);
                    self.stopped.extend(new);
                }
            }
        }
        Ok(())
    }

    fn resume(&mut self) -> io::Result<()> {
        match self.by {
            SignalBy::Group => {
                let _ = killpg(Pid::from_raw(self.pid), Signal::SIGCONT);
            }
            SignalBy::Name => Self::signal_all(&self.named(), Signal::SIGCONT),
            SignalBy::Tree => {
                let all = procs::all(&self.proc_root);
                let mut pids = procs::tree(&all, self.pid);
                pids.append(&mut self.stopped);
                pids.sort_unstable();
                pids.dedup();
                Self::signal_all(&pids, Signal::SIGCONT);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_name_without_a_cgroup_looks_only_in_the_workloads_tree() {
        let dir = std::env::temp_dir().join(format!("tb-signal-{}", std::process::id()));
        for (pid, name, ppid) in [
            (10, "sh", 1),
            (11, "sed", 10),
            (12, "sed", 1),
            (13, "sh", 11),
            (14, "sed", 13),
        ] {
            let d = dir.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("stat"), format!("{pid} ({name}) S {ppid} 0 0")).unwrap();
        }
        let a = SignalActuator::new(SignalBy::Name, 10, "sed".into(), Vec::new(), dir.clone());
        let mut found = a.named();
        found.sort();
        // 12 is a `sed` of somebody else's: never touched.
        assert_eq!(found, vec![11, 14]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
