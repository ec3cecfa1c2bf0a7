//! Ending a workload that is still running, in the order of "Practical resource
//! limiting" [Practical Limiting]. Every process is stopped
//! first (listing again until no new process appears), then each is sent SIGTERM, then
//! all are continued. Processes joined by pipes then all see their SIGTERM before any of
//! them runs again, so none dies of a broken pipe because its peer went first (which
//! would look like the workload's own error), and processes that left the workload's
//! process group or session still get their SIGTERM (a process-group kill misses them).
//! What is still there after `grace` is killed.
//!
//! The processes come from the run's cgroups, so nothing outside the run is signalled.

use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::time::Duration;

/// What the teardown needs from the system (a fake in the tests).
pub trait Procs {
    /// The live processes of the workload now.
    fn list(&mut self) -> Vec<i32>;
    /// Whether `pid` is stopped, or gone (exited, a zombie): true when it cannot run.
    fn stopped_or_gone(&mut self, pid: i32) -> bool;
    fn signal(&mut self, pid: i32, sig: Signal);
    /// Reap what has exited; true when the workload's main processes have all exited.
    fn mains_exited(&mut self) -> bool;
    fn now_ns(&mut self) -> u64;
    /// Wait a little (a few ms) before looking again.
    fn pause(&mut self);
}

/// What the teardown did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StopReport {
    /// Processes stopped before the SIGTERM (all the workload had).
    pub stopped: usize,
    /// Listings needed until no new process appeared.
    pub rounds: u32,
    /// Whether every process was seen stopped (or gone) before any SIGTERM was sent.
    pub all_stopped_first: bool,
    /// Processes still there after the grace time, killed with SIGKILL.
    pub killed: usize,
}

/// At most this many listings while stopping: a fork bomb cannot keep the loop going.
const MAX_ROUNDS: u32 = 100;
/// How long to wait for the stops to take effect before sending SIGTERM anyway
/// (a process in uninterruptible sleep stops only when its call returns).
const STOP_WAIT: Duration = Duration::from_millis(200);

/// Stop all, SIGTERM all, continue all; wait up to `grace` for the workload to go, then
/// SIGKILL what is left (still continued, so a stopped process dies too).
pub fn stop_term_cont(p: &mut impl Procs, grace: Duration) -> StopReport {
    let mut report = StopReport::default();
    let mut seen: BTreeSet<i32> = BTreeSet::new();
    loop {
        report.rounds += 1;
        let new: Vec<i32> = p.list().into_iter().filter(|x| !seen.contains(x)).collect();
        if new.is_empty() || report.rounds >= MAX_ROUNDS {
            break;
        }
        for &pid in &new {
            p.signal(pid, Signal::SIGSTOP);
            seen.insert(pid);
        }
    }
    report.stopped = seen.len();
    let deadline = p.now_ns() + STOP_WAIT.as_nanos() as u64;
    report.all_stopped_first = loop {
        if seen.iter().all(|&pid| p.stopped_or_gone(pid)) {
            break true;
        }
        if p.now_ns() > deadline {
            break false;
        }
        p.pause();
    };
    for &pid in &seen {
        p.signal(pid, Signal::SIGTERM);
    }
    for &pid in &seen {
        p.signal(pid, Signal::SIGCONT);
    }
    let deadline = p.now_ns() + grace.as_nanos() as u64;
    loop {
        if p.mains_exited() && p.list().is_empty() {
            return report;
        }
        if p.now_ns() > deadline {
            break;
        }
        p.pause();
    }
    // Past the grace time: kill what is left, new processes included.
    let mut killed: BTreeSet<i32> = BTreeSet::new();
    for _ in 0..MAX_ROUNDS {
        let left = p.list();
        if left.is_empty() {
            break;
        }
        for &pid in &left {
            p.signal(pid, Signal::SIGKILL);
            p.signal(pid, Signal::SIGCONT);
        }
        killed.extend(&left);
        report.killed = killed.len();
        if p.mains_exited() && p.list().is_empty() {
            break;
        }
        p.pause();
    }
    report
}

#[cfg(test)]
mod tests;
