//! Ending the tracked processes when the budget is spent (`limiter.kill`):
//!
//! - `stop-first`: the order of "Practical resource limiting" [Practical Limiting]
//!   (`process::teardown::stop_term_cont`): stop every tracked process, listing again
//!   until no new one appears, SIGTERM them all, continue them all, SIGKILL what is left
//!   after the grace time. Pipe peers see their SIGTERM before any of them runs again.
//! - `each`: SIGTERM one process at a time, the newest first, waiting for each to go
//!   before the next, none stopped: what a script that kills a list of pids one by one
//!   does. A reader that goes first leaves its writer a broken pipe (SIGPIPE).
//!
//! Only the processes the tracker sees are signalled: what it misses runs on (and is
//! counted by the runner as escaped).

use super::track::Tracker;
use crate::process::procs;
use crate::process::teardown::{stop_term_cont, Procs, StopReport};
use crate::scenario::plan::EndPlan;
use crate::scenario::schema::KillOrder;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// What ending the workload did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EndReport {
    pub kill: &'static str,
    #[serde(flatten)]
    pub steps: StopReport,
    /// From the first signal to the last tracked process gone, in s.
    pub took_s: f64,
}

/// The tracked processes for `teardown`: those the tracker lists now, and those it
/// listed before that are still alive (a child whose parent died leaves a tree, but it
/// was stopped and sent SIGTERM with the rest, and is waited for).
pub struct TrackedProcs<'a> {
    pub tracker: &'a mut dyn Tracker,
    pub proc_root: &'a Path,
    /// The workload's main process: the harness reaps it, so here it is gone once it
    /// is a zombie.
    pub main: i32,
    seen: BTreeSet<i32>,
}

impl<'a> TrackedProcs<'a> {
    pub fn new(tracker: &'a mut dyn Tracker, proc_root: &'a Path, main: i32) -> TrackedProcs<'a> {
        TrackedProcs {
            tracker,
            proc_root,
            main,
            seen: BTreeSet::new(),
        }
    }

    fn alive(&self, pid: i32) -> bool {
        procs::read(self.proc_root, pid).is_some_and(|i| i.state != 'Z' && !i.exiting)
    }
}

impl Procs for TrackedProcs<'_> {
    fn list(&mut self) -> Vec<i32> {
        let now = self.tracker.pids();
        self.seen.extend(&now);
        let seen: Vec<i32> = self.seen.iter().copied().collect();
        let mut all: Vec<i32> = seen.into_iter().filter(|p| self.alive(*p)).collect();
        all.extend(now);
        all.sort_unstable();
        all.dedup();
        all
    }
    fn stopped_or_gone(&mut self, pid: i32) -> bool {
        procs::read(self.proc_root, pid)
            .is_none_or(|i| i.is_stopped() || i.state == 'Z' || i.exiting)
    }
    fn signal(&mut self, pid: i32, sig: Signal) {
        // A process the tracker listed as the workload's; ESRCH if it just went.
        let _ = kill(Pid::from_raw(pid), sig);
    }
    fn mains_exited(&mut self) -> bool {
        !self.alive(self.main)
    }
    fn now_ns(&mut self) -> u64 {
        crate::clock::monotonic_ns()
    }
    fn pause(&mut self) {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// At most this many listings in the `each` order.
const MAX_ROUNDS: u32 = 100;

/// SIGTERM each process in turn, newest (highest pid) first, waiting up to `grace` for
/// each to go; SIGKILL (and continue) what is left at the end.
pub fn term_each(p: &mut impl Procs, grace: Duration) -> StopReport {
    let mut r = StopReport::default();
    let mut sent: BTreeSet<i32> = BTreeSet::new();
    while r.rounds < MAX_ROUNDS {
        r.rounds += 1;
        let mut todo: Vec<i32> = p.list().into_iter().filter(|x| !sent.contains(x)).collect();
        if todo.is_empty() {
            break;
        }
        todo.sort_unstable_by(|a, b| b.cmp(a));
        for pid in todo {
            // Gone meanwhile (a writer whose reader went): nothing to signal.
            if !p.list().contains(&pid) {
                continue;
            }
            p.signal(pid, Signal::SIGTERM);
            sent.insert(pid);
            let deadline = p.now_ns() + grace.as_nanos() as u64;
            while p.list().contains(&pid) && p.now_ns() < deadline {
                p.pause();
            }
        }
    }
    // What is left (new processes, or some that ignored SIGTERM) is killed.
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
        p.pause();
    }
    r.killed = killed.len();
    r
}

/// End what `tracker` tracks, in `plan`'s order.
pub fn end_tracked(
    plan: &EndPlan,
    tracker: &mut dyn Tracker,
    proc_root: &Path,
    main: i32,
) -> EndReport {
    let t0 = crate::clock::monotonic_ns();
    let mut procs = TrackedProcs::new(tracker, proc_root, main);
    let steps = match plan.kill {
        KillOrder::StopFirst => stop_term_cont(&mut procs, plan.grace.0),
        KillOrder::Each => term_each(&mut procs, plan.grace.0),
    };
    EndReport {
        kill: plan.kill.name(),
        steps,
        took_s: (crate::clock::monotonic_ns() - t0) as f64 / 1e9,
    }
}
