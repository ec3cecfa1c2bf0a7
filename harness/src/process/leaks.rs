//! What a limiter may leave behind, checked after the workload should have ended and the
//! limiter is gone: processes left stopped (state T), processes still alive in the run's
//! cgroups, and (after teardown) cgroup folders that could not be removed. Findings are
//! reported, then repaired: stopped processes are continued so they can be killed and
//! reaped with the cgroup.

use super::procs;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use serde::Serialize;
use std::path::Path;

/// A process found where it should not be.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeakedProcess {
    pub pid: i32,
    pub state: String,
    pub name: String,
    pub cmdline: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LeakReport {
    /// Processes of the workload left stopped (T): nothing will continue them.
    pub stopped: Vec<LeakedProcess>,
    /// Processes still alive (not stopped) after the workload ended: out of the limiter's
    /// and the workload's control.
    pub escaped: Vec<LeakedProcess>,
    /// Cgroup folders left after teardown.
    pub cgroups: Vec<String>,
}

/// Sort the processes still in the run's cgroups into stopped and escaped.
pub fn check(pids: &[i32], proc_root: &Path) -> LeakReport {
    let mut r = LeakReport::default();
    for &pid in pids {
        let Some(info) = procs::read(proc_root, pid) else {
            continue;
        };
        if info.state == 'Z' || info.exiting {
            continue;
        }
        let leaked = LeakedProcess {
            pid,
            state: info.state.to_string(),
            name: info.name.clone(),
            cmdline: procs::cmdline(proc_root, pid),
        };
        if info.is_stopped() {
            r.stopped.push(leaked);
        } else {
            r.escaped.push(leaked);
        }
    }
    r
}

/// Processes that became this process's children by being orphaned (it is a child
/// subreaper) and are still alive after the run's own processes were waited for: the
/// workload's descendants that outlived it. They are reported, killed, and every such
/// child (and zombie) is reaped. A process already exiting is dying, not escaping, and an
/// external limiter's own processes (its sessions, `limiter_sessions`) are never the
/// workload's: a `sh -c` limiter that exited before its child finished exiting leaves
/// that child to us. Those are reaped too, not reported.
pub fn reap_orphans(proc_root: &Path, limiter_sessions: &[i32]) -> Vec<LeakedProcess> {
    let me = std::process::id() as i32;
    let mut alive = Vec::new();
    for p in procs::all(proc_root).into_iter().filter(|p| p.ppid == me) {
        if p.state != 'Z' {
            if !p.exiting && !limiter_sessions.contains(&p.session) {
                alive.push(LeakedProcess {
                    pid: p.pid,
                    state: p.state.to_string(),
                    name: p.name.clone(),
                    cmdline: procs::cmdline(proc_root, p.pid),
                });
            }
            // Our own child (adopted as a subreaper).
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGCONT);
        }
        // Our own child; it has exited or was just killed.
        let _ = waitpid(Pid::from_raw(p.pid), None);
    }
    alive
}

/// Continue every process found stopped, so the teardown can kill and reap it.
pub fn repair(r: &LeakReport) {
    for p in &r.stopped {
        // A process of the run's own cgroup (ESRCH if it has gone since).
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGCONT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stopped_from_running_and_skips_zombies() {
        let dir = std::env::temp_dir().join(format!("tb-leaks-{}", std::process::id()));
        for (pid, name, state) in [(5, "sed", 'T'), (6, "sh", 'S'), (7, "dead", 'Z')] {
            let d = dir.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("stat"), format!("{pid} ({name}) {state} 1 0")).unwrap();
            std::fs::write(d.join("cmdline"), format!("{name}\0-e\0")).unwrap();
        }
        let r = check(&[5, 6, 7, 8], &dir);
        assert_eq!(r.stopped.len(), 1);
        assert_eq!(r.stopped[0].name, "sed");
        assert_eq!(r.stopped[0].cmdline, "sed -e");
        assert_eq!(r.escaped.len(), 1);
        assert_eq!(r.escaped[0].pid, 6);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_orphan_that_is_exiting_or_a_limiters_own_is_reaped_but_not_reported() {
        // Fake children of this process (pids well above any real one here, so the
        // kill and wait below reach nothing): one alive, one exiting (PF_EXITING), one
        // of the limiter's session.
        let me = std::process::id();
        let dir = std::env::temp_dir().join(format!("tb-orphans-{me}"));
        for (pid, name, session, flags) in [
            (4_190_001, "daemon", 4_190_001, 0),
            (4_190_002, "cpulimit", 4_190_002, 0x4),
            (4_190_003, "cpulimit", 4_190_050, 0),
        ] {
            let d = dir.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("stat"),
                format!("{pid} ({name}) R {me} {pid} {session} 0 -1 {flags} 0 0"),
            )
            .unwrap();
            std::fs::write(d.join("cmdline"), format!("{name}\0")).unwrap();
        }
        let alive = reap_orphans(&dir, &[4_190_050]);
        let names: Vec<&str> = alive.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["daemon"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
