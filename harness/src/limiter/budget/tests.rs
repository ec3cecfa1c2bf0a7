//! Tests of the budget loop (a fake clock and workload) and of the `each` kill order.

use super::end::{term_each, EndReport};
use super::track::Tracker;
use super::*;
use crate::process::teardown::{Procs, StopReport};
use crate::scenario::plan::{BudgetLimit, EndPlan};
use crate::scenario::schema::{BudgetTrack, KillOrder};
use crate::scenario::Span;
use nix::sys::signal::Signal;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// A fake world: time moves only by sleeping; the tracked processes burn `tracked_rate`
/// CPUs, seen in 10 ms ticks; processes the tracker misses burn `hidden_rate` more,
/// which only the truth (the cgroup's counter, in ns) sees. `head_start_ns` of CPU was
/// used before the limiter started.
struct World {
    now: u64,
    t0: u64,
    tracked_rate: f64,
    hidden_rate: f64,
    head_start_ns: u64,
    running: bool,
    stopped_at: Option<u64>,
    ends: u32,
    end_at: u64,
}

impl World {
    fn tracked_ns(&self) -> u64 {
        let t = self.stopped_at.unwrap_or(self.now) - self.t0;
        self.head_start_ns + (t as f64 * self.tracked_rate) as u64
    }
    fn truth_ns(&self) -> u64 {
        let t = self.stopped_at.unwrap_or(self.now) - self.t0;
        self.tracked_ns() + (t as f64 * self.hidden_rate) as u64
    }
}

#[derive(Clone)]
struct Fake(Rc<RefCell<World>>);

impl Clock for Fake {
    fn now_ns(&mut self) -> u64 {
        self.0.borrow().now
    }
    fn sleep_until(&mut self, t: u64, stop: &AtomicBool) -> bool {
        let mut w = self.0.borrow_mut();
        if t >= w.end_at {
            w.now = w.end_at;
            stop.store(true, Ordering::Relaxed);
            return false;
        }
        w.now = t;
        true
    }
}

impl Tracker for Fake {
    fn usage_ns(&mut self) -> io::Result<u64> {
        // /proc's clock ticks: 10 ms, rounded down.
        Ok(self.0.borrow().tracked_ns() / 10_000_000 * 10_000_000)
    }
    fn pids(&mut self) -> Vec<i32> {
        vec![1]
    }
}

impl Truth for Fake {
    fn usage_ns(&mut self) -> Option<u64> {
        Some(self.0.borrow().truth_ns())
    }
}

fn world(tracked_rate: f64, hidden_rate: f64, head_start_ns: u64, end_s: u64) -> Fake {
    let t0 = 5_000_000_000;
    Fake(Rc::new(RefCell::new(World {
        now: t0,
        t0,
        tracked_rate,
        hidden_rate,
        head_start_ns,
        running: true,
        stopped_at: None,
        ends: 0,
        end_at: t0 + end_s * 1_000_000_000,
    })))
}

fn plan(cpu_ms: u64, interval_ms: u64) -> BudgetLimit {
    BudgetLimit {
        cpu: Span::from_millis(cpu_ms),
        track: BudgetTrack::Tree,
        interval: Span::from_millis(interval_ms),
        end: EndPlan {
            kill: KillOrder::StopFirst,
            grace: Span::from_millis(2000),
        },
    }
}

fn run_in(f: &Fake, p: &BudgetLimit) -> (BudgetReport, bool) {
    let (mut c, mut t, mut u) = (f.clone(), f.clone(), f.clone());
    let w = f.clone();
    let mut end = move |_: &mut dyn Tracker| {
        let mut x = w.0.borrow_mut();
        x.running = false;
        x.stopped_at = Some(x.now);
        x.ends += 1;
        EndReport {
            kill: "stop-first",
            steps: StopReport::default(),
            took_s: 0.0,
        }
    };
    let ended = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let r = run(p, &mut c, &mut t, &mut u, &mut end, &ended, &stop).unwrap();
    (r, ended.load(Ordering::SeqCst))
}

#[test]
fn a_hog_is_ended_within_one_interval_and_one_tick_of_its_budget() {
    // 35 ms of CPU before the limiter's first reading: the budget falls between readings.
    let f = world(1.0, 0.0, 35_000_000, 60);
    let (r, ended) = run_in(&f, &plan(2000, 100));
    let w = f.0.borrow();
    assert!(ended && w.ends == 1 && !w.running, "{r:?}");
    let overshoot = w.truth_ns() as f64 / 1e9 - 2.0;
    assert!(
        (0.0..=0.1 + 0.01).contains(&overshoot),
        "overshoot {overshoot}"
    );
    let delay = r.detection_delay_s().unwrap();
    assert!(delay > 0.0 && delay <= 0.1 + 0.01, "delay {delay}");
    // The truth crossed 2 s at 1.965 s after the start.
    let crossed = (r.truth_crossed_ns.unwrap() - 5_000_000_000) as f64 / 1e9;
    assert!((crossed - 1.965).abs() < 1e-6, "{crossed}");
    assert_eq!(r.polls, 21);
}

#[test]
fn processes_the_tracker_misses_are_paid_for_past_the_budget() {
    // A daemon outside the tree burns a CPU beside the tracked one.
    let f = world(1.0, 1.0, 0, 60);
    let (r, ended) = run_in(&f, &plan(2000, 100));
    assert!(ended);
    // The truth reached 2 s after 1 s; the tree's own count after 2 s.
    let delay = r.detection_delay_s().unwrap();
    assert!((delay - 1.0).abs() < 0.02, "delay {delay}");
    assert!(
        (r.truth_at_detection_s.unwrap() - 4.0).abs() < 0.02,
        "{r:?}"
    );
}

#[test]
fn a_workload_that_ends_under_its_budget_is_left_alone() {
    let f = world(0.1, 0.0, 0, 5);
    let (r, ended) = run_in(&f, &plan(2000, 100));
    assert!(
        !ended && r.detected_ns.is_none() && r.end.is_none(),
        "{r:?}"
    );
    assert_eq!(f.0.borrow().ends, 0);
    assert!((r.tracked_s - 0.5).abs() < 0.011, "{r:?}");
}

#[test]
fn crossings_are_interpolated_between_readings() {
    assert_eq!(crossing(100, 0, 200, 1000, 500), 150);
    // Already past at the first reading, or a counter that did not move.
    assert_eq!(crossing(100, 600, 200, 1000, 500), 100);
    assert_eq!(crossing(100, 400, 200, 400, 500), 100);
}

/// A pipeline for the `each` order: 1 (shell) runs 2 | 3 | 4; a process whose reader
/// is gone dies of SIGPIPE when it next runs, which it does while others are signalled.
#[derive(Default)]
struct Pipeline {
    t: u64,
    alive: Vec<i32>,
    /// Sent SIGTERM: gone at the next pause (a signal takes a moment to act).
    dying: Vec<i32>,
    log: Vec<(i32, Signal)>,
    sigpipe: Vec<i32>,
}

impl Procs for Pipeline {
    fn list(&mut self) -> Vec<i32> {
        self.alive.clone()
    }
    fn stopped_or_gone(&mut self, _: i32) -> bool {
        true
    }
    fn signal(&mut self, pid: i32, sig: Signal) {
        self.log.push((pid, sig));
        if matches!(sig, Signal::SIGTERM | Signal::SIGKILL) {
            self.dying.push(pid);
        }
    }
    fn mains_exited(&mut self) -> bool {
        !self.alive.contains(&1)
    }
    fn now_ns(&mut self) -> u64 {
        self.t
    }
    fn pause(&mut self) {
        self.t += 1_000_000;
        let dying = std::mem::take(&mut self.dying);
        self.alive.retain(|p| !dying.contains(p));
        // Writers whose reader went die of SIGPIPE (2 -> 3 -> 4).
        for (w, r) in [(3, 4), (2, 3)] {
            if self.alive.contains(&w) && !self.alive.contains(&r) {
                self.alive.retain(|p| *p != w);
                self.sigpipe.push(w);
            }
        }
        // The shell exits when its pipeline has.
        if !self.alive.iter().any(|p| [2, 3, 4].contains(p)) {
            self.alive.retain(|p| *p != 1);
        }
    }
}

#[test]
fn each_terms_the_newest_first_and_waits_for_it() {
    let mut p = Pipeline {
        alive: vec![1, 2, 3, 4],
        ..Pipeline::default()
    };
    let r = term_each(&mut p, Duration::from_secs(1));
    assert!(p.alive.is_empty());
    // The reader went first: its writers died of SIGPIPE before their turn came.
    assert_eq!(p.log[0], (4, Signal::SIGTERM));
    assert_eq!(p.sigpipe, vec![3, 2]);
    // Each waited for: the shell's SIGTERM came after its pipeline was gone.
    assert_eq!(p.log.len(), 1, "{:?}", p.log);
    assert!(!p.log.iter().any(|(_, s)| *s == Signal::SIGSTOP));
    assert_eq!(r.killed, 0);
}
