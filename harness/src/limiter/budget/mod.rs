//! A CPU-time budget for the whole workload (`limiter.kind = "budget"`), the limiter of
//! "Practical resource limiting" [Practical Limiting]: every `interval` read the CPU
//! time the tracked processes have used (`track`), and once it reaches the budget, end
//! them (`end`) and say so, so the run's outcome is "budget".
//!
//! Beside its own accounting the loop reads the run's cgroup counter, the truth that a
//! `tree` or `group` limiter does not see, only to report: when the true usage crossed
//! the budget (interpolated between readings), and what it was when the limiter acted.
//! Its decisions never read it (unless it tracks the cgroup itself).
//!
//! Time and usage are traits (the duty loop's `Clock`), so the loop is tested with a fake
//! clock and a fake workload.

pub mod end;
pub mod track;

use crate::limiter::duty::Clock;
use crate::scenario::plan::BudgetLimit;
use crate::scenario::schema::KillOrder;
use end::EndReport;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use track::Tracker;

/// The run's cgroup counter, for the report only; None without a cgroup.
pub trait Truth {
    fn usage_ns(&mut self) -> Option<u64>;
}

impl Truth for Option<crate::limiter::usage::UsageFile> {
    fn usage_ns(&mut self) -> Option<u64> {
        use crate::limiter::duty::CpuUsage;
        self.as_mut()?.usage_ns().ok()
    }
}

/// What a budget limiter saw and did. Times are CLOCK_MONOTONIC, in ns.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BudgetReport {
    pub budget_s: f64,
    pub track: &'static str,
    /// Readings taken.
    pub polls: u64,
    /// The tracked usage at the last reading, in s.
    pub tracked_s: f64,
    /// When the tracked usage was seen at or past the budget (then the workload was
    /// ended); None when it never was.
    pub detected_ns: Option<u64>,
    /// The tracked usage and the cgroup's at that reading, in s.
    pub tracked_at_detection_s: Option<f64>,
    pub truth_at_detection_s: Option<f64>,
    /// When the cgroup's usage reached the budget, interpolated between the readings
    /// around it.
    pub truth_crossed_ns: Option<u64>,
    /// How the workload was ended.
    pub end: Option<EndReport>,
}

impl BudgetReport {
    /// From the cgroup's usage reaching the budget to the limiter seeing its own reach
    /// it, in s.
    pub fn detection_delay_s(&self) -> Option<f64> {
        let (d, c) = (self.detected_ns?, self.truth_crossed_ns?);
        Some((d as f64 - c as f64) / 1e9)
    }
}

/// The time at which a counter read `a` at `ta` and `b` at `tb` passed `level`,
/// assuming it grew evenly in between.
fn crossing(ta: u64, a: u64, tb: u64, b: u64, level: u64) -> u64 {
    if a >= level || b <= a {
        return ta;
    }
    let f = (level - a) as f64 / (b - a) as f64;
    ta + (f.min(1.0) * (tb - ta) as f64) as u64
}

/// Run until the budget is spent (the workload is ended by `end`, and `ended` is set)
/// or `stop` is set (the workload ended on its own).
pub fn run(
    plan: &BudgetLimit,
    clock: &mut dyn Clock,
    tracker: &mut dyn Tracker,
    truth: &mut dyn Truth,
    end: &mut dyn FnMut(&mut dyn Tracker) -> EndReport,
    ended: &AtomicBool,
    stop: &AtomicBool,
) -> io::Result<BudgetReport> {
    let budget_ns = plan.cpu.0.as_nanos() as u64;
    let interval_ns = plan.interval.0.as_nanos() as u64;
    let mut r = BudgetReport {
        budget_s: plan.cpu.as_secs_f64(),
        track: plan.track.name(),
        ..BudgetReport::default()
    };
    let start = clock.now_ns();
    let mut last_truth = truth.usage_ns().map(|v| (start, v));
    let mut next = start;
    loop {
        let now = clock.now_ns();
        let used = tracker.usage_ns()?;
        r.polls += 1;
        r.tracked_s = used as f64 / 1e9;
        let t = truth.usage_ns();
        if let (Some(v), Some((ta, a)), None) = (t, last_truth, r.truth_crossed_ns) {
            if v >= budget_ns {
                r.truth_crossed_ns = Some(crossing(ta, a, now, v, budget_ns));
            }
        }
        if let Some(v) = t {
            last_truth = Some((now, v));
        }
        if used >= budget_ns {
            r.detected_ns = Some(now);
            // The tracker can see the budget spent a little before the cgroup's own
            // count does (/proc counts in clock ticks): then it was detected no later
            // than the crossing, a delay of 0.
            if r.truth_crossed_ns.is_none() && t.is_some() {
                r.truth_crossed_ns = Some(now);
            }
            r.tracked_at_detection_s = Some(used as f64 / 1e9);
            r.truth_at_detection_s = t.map(|v| v as f64 / 1e9);
            ended.store(true, Ordering::SeqCst);
            // Stop what this reading counted before anything else (a scan of /proc
            // for the end's own list takes milliseconds the workload would spend);
            // the end then stops the rest in its order. `each` stops nothing.
            if plan.end.kill == KillOrder::StopFirst {
                for pid in tracker.last_read() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGSTOP,
                    );
                }
            }
            r.end = Some(end(tracker));
            return Ok(r);
        }
        // The next reading on the grid; readings missed while late are skipped.
        next += interval_ns;
        let now = clock.now_ns();
        if next <= now {
            next = now + interval_ns - (now - start) % interval_ns;
        }
        if !clock.sleep_until(next, stop) {
            return Ok(r);
        }
    }
}

#[cfg(test)]
mod tests;
