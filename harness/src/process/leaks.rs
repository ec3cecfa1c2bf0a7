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

/// Signals whose default action ends the process (signal(7)): all but SIGCHLD, SIGCONT,
/// the stop signals, SIGURG and SIGWINCH, and the real-time ones counted here.
const FATAL_BY_DEFAULT: u64 = {
    let mut m = 0u64;
    let mut s = 1;
    while s <= 31 {
        if !matches!(s, 17..=23 | 28) {
            m |= 1 << (s - 1);
        }
        s += 1;
    }
    m
};

/// Whether a process has a signal pending that will end it when it next runs (a
/// SIGTERM just sent, not blocked, ignored or caught): it is dying, not escaping.
pub fn fatal_signal_pending(proc_root: &Path, pid: i32) -> bool {
    let Some(mask) = status_masks(proc_root, pid) else {
        return false;
    };
    let pending = mask("SigPnd:") | mask("ShdPnd:");
    let kill = 1 << 8; // SIGKILL: nothing holds it back.
    pending & kill != 0
        || pending & FATAL_BY_DEFAULT & !(mask("SigBlk:") | mask("SigIgn:") | mask("SigCgt:")) != 0
}

/// Whether a SIGSTOP is pending for `pid` (sent, not yet acted on: its threads have not
/// run since). Such a process is as good as stopped, and a SIGCONT sent now cancels it.
pub fn stop_pending(proc_root: &Path, pid: i32) -> bool {
    let stop = 1u64 << 18; // SIGSTOP (19) is bit 18 of the masks.
    status_masks(proc_root, pid).is_some_and(|mask| (mask("SigPnd:") | mask("ShdPnd:")) & stop != 0)
}

/// The signal masks of /proc/<pid>/status, by key (`SigPnd:`, `SigBlk:`, ...; 0 when
/// absent); None when the process is gone.
fn status_masks(proc_root: &Path, pid: i32) -> Option<impl Fn(&str) -> u64> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")).ok()?;
    Some(move |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    })
}

/// Sort the processes still in the run's cgroups into stopped and escaped. A process
/// about to die of a signal already sent (its parent was just ended with it) is
/// neither.
pub fn check(pids: &[i32], proc_root: &Path) -> LeakReport {
    let mut r = LeakReport::default();
    for &pid in pids {
        let Some(info) = procs::read(proc_root, pid) else {
            continue;
        };
        if info.state == 'Z' || info.exiting {
            continue;
        }
        // A SIGSTOP just sent (by a limiter that then died) may not have taken effect yet.
        let stopped = info.is_stopped() || stop_pending(proc_root, pid);
        if !stopped && fatal_signal_pending(proc_root, pid) {
            continue;
        }
        let leaked = LeakedProcess {
            pid,
            state: info.state.to_string(),
            name: info.name.clone(),
            cmdline: procs::cmdline(proc_root, pid),
        };
        if stopped {
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
        // A SIGTERM pending and nothing holding it back: dying, not escaped.
        let status = |pnd: &str, cgt: &str| {
            format!("Name:\tsh\nSigPnd:\t0000000000000000\nShdPnd:\t{pnd}\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nSigCgt:\t{cgt}\n")
        };
        let term = format!("{:016x}", 1u64 << 14);
        std::fs::write(dir.join("6/status"), status(&term, "0000000000000000")).unwrap();
        assert!(check(&[6], &dir).escaped.is_empty());
        // The same SIGTERM caught by a handler: it may well live on.
        std::fs::write(dir.join("6/status"), status(&term, &term)).unwrap();
        assert_eq!(check(&[6], &dir).escaped.len(), 1);
        // A SIGCHLD pending ends nothing.
        std::fs::write(
            dir.join("6/status"),
            status(&format!("{:016x}", 1u64 << 16), "0"),
        )
        .unwrap();
        assert_eq!(check(&[6], &dir).escaped.len(), 1);
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
