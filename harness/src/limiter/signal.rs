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
//!
//! With `until_stuck`, every continue is followed by a look at the run's processes: the
//! first process found stopped after two continues in a row (nothing continues it) ends
//! the run, and the cycles and time until it was first seen so are reported, so the
//! race's rate per cycle can be read off runs of any length. One continue is not enough
//! to tell: a process forked while a stop and a continue were both sent to its parent's
//! group starts with both pending (the kernel hands the signals sent to a group during
//! a fork to the child as a set, kernel/fork.c), and so stops after the continue, until
//! the next one. Such a process is counted (`released`), not taken for stuck.

use super::duty::Actuator;
use crate::process::procs;
use crate::scenario::schema::SignalBy;
use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What `until_stuck` found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StuckReport {
    /// Stop/continue cycles run until a process was found left stopped (all of them,
    /// if none was).
    pub cycles: u64,
    /// From the limiter's start to the continue after which it was found, in s.
    pub stuck_after_s: Option<f64>,
    /// The process found stopped: its pid and name.
    pub pid: Option<i32>,
    pub name: Option<String>,
    /// Processes found stopped after one continue that the next one released.
    pub released: u64,
}

/// A process seen stopped after a continue: (pid, start time), and the cycle and time
/// (s since the start) it was first seen so.
type Suspect = ((i32, u64), u64, f64);

/// Looks for processes left stopped after every continue (`until_stuck`).
pub struct StuckWatch {
    pub report: Arc<Mutex<StuckReport>>,
    /// Set when one is found: the run ends.
    pub found: Arc<AtomicBool>,
    started_ns: u64,
    /// Seen stopped after the last continue.
    suspects: Vec<Suspect>,
}

impl StuckWatch {
    pub fn new(report: Arc<Mutex<StuckReport>>, found: Arc<AtomicBool>) -> StuckWatch {
        StuckWatch {
            report,
            found,
            started_ns: crate::clock::monotonic_ns(),
            suspects: Vec::new(),
        }
    }
}

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
    /// until_stuck: the watch for processes left stopped.
    pub watch: Option<StuckWatch>,
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
            watch: None,
        }
    }

    fn named(&self) -> Vec<i32> {
        let mut pids = self.scope();
        pids.retain(|p| {
            procs::read(&self.proc_root, *p)
                .map(|i| i.name == self.name)
                .unwrap_or(false)
        });
        pids
    }

    /// The run's processes: its cgroups' (without a cgroup, the tree below `pid`).
    fn scope(&self) -> Vec<i32> {
        if self.procs_files.is_empty() {
            let all = procs::all(&self.proc_root);
            return procs::tree(&all, self.pid);
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
        pids
    }

    /// The processes a tree is looked for in: the run's cgroups' (every process of the
    /// tree is in them, and a scan of them is far shorter than of all of /proc), or,
    /// without a cgroup, every process.
    fn candidates(&self) -> Vec<procs::ProcInfo> {
        if self.procs_files.is_empty() {
            return procs::all(&self.proc_root);
        }
        self.scope()
            .into_iter()
            .filter_map(|p| procs::read(&self.proc_root, p))
            .collect()
    }

    /// After a continue: look for processes of the run that are stopped (by name, those
    /// the name no longer matches: renamed by an exec). One seen so after the continue
    /// before as well is stuck.
    fn look_for_stuck(&mut self) {
        let Some(w) = &self.watch else {
            return;
        };
        if w.found.load(Ordering::SeqCst) {
            return;
        }
        let stopped: Vec<procs::ProcInfo> = self
            .scope()
            .into_iter()
            .filter_map(|p| procs::read(&self.proc_root, p))
            .filter(|i| i.is_stopped() && !(self.by == SignalBy::Name && i.name == self.name))
            .collect();
        let now_s = (crate::clock::monotonic_ns() - w.started_ns) as f64 / 1e9;
        let cycles = w.report.lock().unwrap_or_else(|p| p.into_inner()).cycles;
        let mut seen: Vec<Suspect> = Vec::new();
        let mut stuck = None;
        for i in stopped {
            let key = (
                i.pid,
                procs::start_time(&self.proc_root, i.pid as u32).unwrap_or(0),
            );
            match w.suspects.iter().find(|s| s.0 == key) {
                Some(s) => {
                    stuck.get_or_insert((i, s.1, s.2));
                }
                None => seen.push((key, cycles, now_s)),
            }
        }
        let Some(w) = self.watch.as_mut() else {
            return;
        };
        let mut r = w.report.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((info, cycles, t)) = stuck {
            r.cycles = cycles;
            r.stuck_after_s = Some(t);
            r.pid = Some(info.pid);
            r.name = Some(info.name);
            w.found.store(true, Ordering::SeqCst);
            return;
        }
        r.released += w.suspects.len() as u64;
        w.suspects = seen;
    }

    fn count_cycle(&self) {
        if let Some(w) = &self.watch {
            if !w.found.load(Ordering::SeqCst) {
                w.report.lock().unwrap_or_else(|p| p.into_inner()).cycles += 1;
            }
        }
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
        self.count_cycle();
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
                    let all = self.candidates();
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
                let all = self.candidates();
                let mut pids = procs::tree(&all, self.pid);
                pids.append(&mut self.stopped);
                pids.sort_unstable();
                pids.dedup();
                Self::signal_all(&pids, Signal::SIGCONT);
            }
        }
        self.look_for_stuck();
        Ok(())
    }

    /// By group, the last continue is sent again while a process of the run is still
    /// stopped (for at most 100 ms): a child forked across the last stop and continue
    /// of its group starts with both pending and stops (see `until_stuck` above), and no
    /// later cycle would continue it. The workload runs on as the limiter found it;
    /// such children are counted by `until_stuck`, not left behind.
    fn release(&mut self) -> io::Result<()> {
        self.resume()?;
        if self.by != SignalBy::Group {
            return Ok(());
        }
        for _ in 0..50 {
            let stopped = self
                .scope()
                .into_iter()
                .filter_map(|p| procs::read(&self.proc_root, p))
                .any(|i| i.is_stopped());
            if !stopped {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGCONT);
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

    #[test]
    fn a_process_left_stopped_after_a_continue_is_found_once() {
        let dir = std::env::temp_dir().join(format!("tb-stuck-{}", std::process::id()));
        let write = |pid: i32, name: &str, state: char, ppid: i32| {
            let d = dir.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("stat"), format!("{pid} ({name}) {state} {ppid} 0 0")).unwrap();
        };
        // Pids above the kernel's largest (4194304): signals to them reach nobody.
        write(5_000_010, "sh", 'S', 1);
        write(5_000_011, "sh", 'T', 5_000_010);
        let report = Arc::new(Mutex::new(StuckReport::default()));
        let found = Arc::new(AtomicBool::new(false));
        let mut a = SignalActuator::new(
            SignalBy::Name,
            5_000_010,
            "sh".into(),
            Vec::new(),
            dir.clone(),
        );
        a.watch = Some(StuckWatch::new(report.clone(), found.clone()));
        // A stopped `sh` is the limiter's own to continue: not stuck.
        a.pause().unwrap();
        a.resume().unwrap();
        assert!(!found.load(Ordering::SeqCst));
        // A `sed` stopped after one continue and running after the next: released.
        write(5_000_012, "sed", 'T', 5_000_010);
        a.pause().unwrap();
        a.resume().unwrap();
        write(5_000_012, "sed", 'R', 5_000_010);
        a.pause().unwrap();
        a.resume().unwrap();
        assert!(!found.load(Ordering::SeqCst));
        assert_eq!(report.lock().unwrap().released, 1);
        std::fs::remove_dir_all(dir.join("5000012")).unwrap();
        // It exec'd `sed` while stopped: nothing continues it by name. Seen after one
        // continue, it is a suspect; after the next, stuck (as of the cycle first seen).
        write(5_000_011, "sed", 'T', 5_000_010);
        a.pause().unwrap();
        a.resume().unwrap();
        assert!(!found.load(Ordering::SeqCst));
        a.pause().unwrap();
        a.resume().unwrap();
        assert!(found.load(Ordering::SeqCst));
        let r = report.lock().unwrap().clone();
        assert_eq!(
            (r.cycles, r.pid, r.name.as_deref()),
            (4, Some(5_000_011), Some("sed"))
        );
        assert!(r.stuck_after_s.is_some());
        assert_eq!(r.released, 1);
        // Later cycles are not counted.
        a.pause().unwrap();
        assert_eq!(report.lock().unwrap().cycles, 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
