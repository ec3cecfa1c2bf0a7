//! Tests of `teardown`.

use super::*;
use std::collections::BTreeMap;

/// A fake process table: each process has a state, children it forks when it next
/// runs, and whether it exits on SIGTERM.
#[derive(Default)]
struct Fake {
    t: u64,
    procs: BTreeMap<i32, P>,
    log: Vec<(i32, Signal)>,
    /// Processes that fork a child the first time they are listed while running.
    forks: BTreeMap<i32, i32>,
    /// Stops that take effect only after this many pauses.
    stop_delay: u32,
    pauses: u32,
}

#[derive(Clone, Default)]
struct P {
    stopped: bool,
    stop_pending_since: Option<u32>,
    term_pending: bool,
    ignores_term: bool,
    gone: bool,
    /// Saw a broken pipe: its peer died while it could still run.
    broken_pipe: bool,
    peer: Option<i32>,
}

impl Fake {
    fn add(&mut self, pid: i32) -> &mut P {
        self.procs.entry(pid).or_default()
    }
    fn step(&mut self) {
        // Running processes act: fork, or notice a dead peer, or die of a pending TERM.
        let ids: Vec<i32> = self.procs.keys().copied().collect();
        for pid in ids {
            let p = self.procs[&pid].clone();
            if p.gone {
                continue;
            }
            if let Some(since) = p.stop_pending_since {
                if self.pauses >= since + self.stop_delay {
                    let q = self.procs.get_mut(&pid).unwrap();
                    q.stopped = true;
                    q.stop_pending_since = None;
                    continue;
                }
            }
            if p.stopped {
                continue;
            }
            if p.term_pending && !p.ignores_term {
                self.procs.get_mut(&pid).unwrap().gone = true;
                continue;
            }
            if let Some(peer) = p.peer {
                if self.procs.get(&peer).is_some_and(|q| q.gone) {
                    self.procs.get_mut(&pid).unwrap().broken_pipe = true;
                }
            }
        }
    }
}

impl Procs for Fake {
    fn list(&mut self) -> Vec<i32> {
        let running_forkers: Vec<(i32, i32)> = self
            .forks
            .iter()
            .filter(|(p, _)| {
                self.procs
                    .get(p)
                    .is_some_and(|q| !q.stopped && !q.gone && q.stop_pending_since.is_none())
            })
            .map(|(a, b)| (*a, *b))
            .collect();
        for (parent, child) in running_forkers {
            self.forks.remove(&parent);
            self.add(child);
        }
        self.procs
            .iter()
            .filter(|(_, p)| !p.gone)
            .map(|(k, _)| *k)
            .collect()
    }
    fn stopped_or_gone(&mut self, pid: i32) -> bool {
        self.procs.get(&pid).is_none_or(|p| p.stopped || p.gone)
    }
    fn signal(&mut self, pid: i32, sig: Signal) {
        self.log.push((pid, sig));
        let pauses = self.pauses;
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        match sig {
            Signal::SIGSTOP => p.stop_pending_since = Some(pauses),
            Signal::SIGTERM => p.term_pending = true,
            Signal::SIGCONT => {
                p.stopped = false;
                p.stop_pending_since = None;
                self.step();
            }
            Signal::SIGKILL => p.gone = true,
            _ => {}
        }
    }
    fn mains_exited(&mut self) -> bool {
        self.procs.get(&1).is_none_or(|p| p.gone)
    }
    fn now_ns(&mut self) -> u64 {
        self.t
    }
    fn pause(&mut self) {
        self.t += 5_000_000;
        self.pauses += 1;
        self.step();
    }
}

fn pos(log: &[(i32, Signal)], f: impl Fn(&(i32, Signal)) -> bool) -> Vec<usize> {
    log.iter()
        .enumerate()
        .filter(|(_, x)| f(x))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn every_stop_comes_before_any_term_and_every_term_before_any_cont() {
    let mut f = Fake::default();
    for pid in [1, 2, 3] {
        f.add(pid);
    }
    let r = stop_term_cont(&mut f, Duration::from_secs(2));
    let stops = pos(&f.log, |x| x.1 == Signal::SIGSTOP);
    let terms = pos(&f.log, |x| x.1 == Signal::SIGTERM);
    let conts = pos(&f.log, |x| x.1 == Signal::SIGCONT);
    assert_eq!((stops.len(), terms.len(), conts.len()), (3, 3, 3));
    assert!(stops.iter().max() < terms.iter().min());
    assert!(terms.iter().max() < conts.iter().min());
    assert!(r.all_stopped_first);
    assert_eq!(r.killed, 0);
    assert!(f.procs.values().all(|p| p.gone));
}

#[test]
fn pipe_peers_do_not_see_a_broken_pipe() {
    // 2 writes into a pipe that 3 reads; each notices the other's death if it runs on.
    let mut f = Fake::default();
    f.add(1);
    f.add(2).peer = Some(3);
    f.add(3).peer = Some(2);
    stop_term_cont(&mut f, Duration::from_secs(2));
    assert!(f.procs.values().all(|p| p.gone && !p.broken_pipe));

    // Against the naive order (TERM each in turn), the same fake does see one.
    let mut g = Fake::default();
    g.add(2).peer = Some(3);
    g.add(3).peer = Some(2);
    g.signal(3, Signal::SIGTERM);
    g.step();
    g.pause();
    assert!(
        g.procs[&2].broken_pipe,
        "the fake must be able to show the fault"
    );
}

#[test]
fn processes_forked_while_stopping_are_stopped_too() {
    let mut f = Fake::default();
    f.add(1);
    f.add(2);
    f.forks.insert(2, 20);
    f.stop_delay = 1;
    let r = stop_term_cont(&mut f, Duration::from_secs(2));
    assert!(r.rounds >= 2, "{r:?}");
    assert_eq!(r.stopped, 3, "{r:?}");
    let term_20 = pos(&f.log, |x| *x == (20, Signal::SIGTERM));
    let cont_any = pos(&f.log, |x| x.1 == Signal::SIGCONT);
    assert!(term_20[0] < cont_any[0]);
    assert!(f.procs.values().all(|p| p.gone));
}

#[test]
fn a_process_ignoring_term_is_killed_after_the_grace_time() {
    let mut f = Fake::default();
    f.add(1);
    f.add(2).ignores_term = true;
    let r = stop_term_cont(&mut f, Duration::from_millis(100));
    assert_eq!(r.killed, 1, "{r:?}");
    assert!(f.procs.values().all(|p| p.gone));
    // It was killed only after the grace time had passed.
    assert!(f.t >= 100_000_000, "{}", f.t);
}

#[test]
fn a_process_that_never_stops_does_not_hold_the_teardown() {
    let mut f = Fake::default();
    f.add(1);
    f.stop_delay = u32::MAX / 2;
    let r = stop_term_cont(&mut f, Duration::from_secs(1));
    assert!(!r.all_stopped_first);
    assert!(f.procs[&1].gone);
    assert!(f.t < 1_000_000_000, "gave up waiting for the stop: {}", f.t);
}
