//! An emulated burstable CPU (like an EC2 T-series instance), the known truth the
//! threshold finder is tested against. The workload earns credits at the baseline rate,
//! spends them when it uses CPU, holds at most `balance_max`, and when the balance is
//! empty is held at the baseline share through the cgroup's CFS quota. Balances are in
//! CPU-seconds (one second of one CPU at full speed).
//!
//! Every `tick` the loop reads the cgroup's CPU usage and updates:
//! `balance = min(balance_max, balance + baseline × dt − used)`. When the balance is empty
//! the quota becomes `baseline × period`; it is lifted again once the balance holds at
//! least one tick of full-speed running, so that a job held at the baseline (earning
//! exactly what it spends) is not let loose by rounding.

use super::duty::{Clock, CpuUsage};
use crate::cgroup::CfsLimit;
use crate::cgroup::CgroupError;
use crate::scenario::plan::CreditModel;
use serde::Serialize;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Sets the CFS limit (a cgroup in production, a fake in tests).
pub trait QuotaSink {
    fn set(&mut self, limit: &CfsLimit) -> Result<(), CgroupError>;
}

/// One point of the balance over time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CreditPoint {
    /// Seconds since the loop started.
    pub t_s: f64,
    pub balance_s: f64,
    /// Whether the workload was held at the baseline.
    pub held: bool,
}

/// Run until `stop`; returns the balance every tick where it changed state, plus the
/// first and last points.
pub fn run(
    m: &CreditModel,
    clock: &mut dyn Clock,
    cpu: &mut dyn CpuUsage,
    sink: &mut dyn QuotaSink,
    stop: &AtomicBool,
) -> io::Result<Vec<CreditPoint>> {
    let unlimited = CfsLimit {
        quota_us: None,
        period_us: m.period_us,
        burst_us: 0,
    };
    let held_limit = CfsLimit {
        quota_us: Some(((m.baseline * m.period_us as f64) as u64).max(1000)),
        period_us: m.period_us,
        burst_us: 0,
    };
    let start = clock.now_ns();
    let mut balance = m.balance_start_s.min(m.balance_max_s);
    let mut held = balance <= 0.0;
    sink.set(if held { &held_limit } else { &unlimited })
        .map_err(io::Error::other)?;
    let mut points = vec![CreditPoint {
        t_s: 0.0,
        balance_s: balance,
        held,
    }];
    let mut last_t = start;
    let mut last_used = cpu.usage_ns()?;
    let mut next = start;
    while !stop.load(Ordering::Relaxed) {
        next += m.tick_ns;
        if !clock.sleep_until(next, stop) {
            break;
        }
        let now = clock.now_ns();
        let used = cpu.usage_ns()?;
        let dt = (now - last_t) as f64 / 1e9;
        let spent = used.saturating_sub(last_used) as f64 / 1e9;
        // No floor at 0: usage is read per tick, not per CFS period, so one tick can
        // overspend what the next repays; clamping would forgive that debt and leak CPU
        // above the baseline. The debt is bounded by one period at full speed.
        let floor = -(m.period_us as f64 / 1e6);
        balance = (balance + m.baseline * dt - spent)
            .min(m.balance_max_s)
            .max(floor);
        last_t = now;
        last_used = used;
        let release_at = m.tick_ns as f64 / 1e9;
        let should_hold = if held {
            balance < release_at
        } else {
            balance <= 0.0
        };
        if should_hold != held {
            held = should_hold;
            sink.set(if held { &held_limit } else { &unlimited })
                .map_err(io::Error::other)?;
            points.push(CreditPoint {
                t_s: (now - start) as f64 / 1e9,
                balance_s: balance,
                held,
            });
        }
    }
    points.push(CreditPoint {
        t_s: (clock.now_ns() - start) as f64 / 1e9,
        balance_s: balance,
        held,
    });
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A job that wants one full CPU for `busy_until` seconds, then rests; it gets what
    /// the quota lets it.
    struct World {
        now: u64,
        used: f64,
        cap: f64,
        busy_until_ns: u64,
        end: u64,
    }

    #[derive(Clone)]
    struct Fake(Rc<RefCell<World>>);

    impl Clock for Fake {
        fn now_ns(&mut self) -> u64 {
            self.0.borrow().now
        }
        fn sleep_until(&mut self, t: u64, stop: &AtomicBool) -> bool {
            let mut w = self.0.borrow_mut();
            let to = t.min(w.end);
            let busy_end = w.busy_until_ns.min(to).max(w.now);
            w.used += (busy_end - w.now) as f64 * w.cap;
            w.now = to;
            if t >= w.end {
                stop.store(true, Ordering::Relaxed);
                return false;
            }
            true
        }
    }

    impl CpuUsage for Fake {
        fn usage_ns(&mut self) -> io::Result<u64> {
            Ok(self.0.borrow().used as u64)
        }
    }

    impl QuotaSink for Fake {
        fn set(&mut self, l: &CfsLimit) -> Result<(), CgroupError> {
            self.0.borrow_mut().cap = l
                .quota_us
                .map(|q| q as f64 / l.period_us as f64)
                .unwrap_or(1.0);
            Ok(())
        }
    }

    fn model(balance: f64) -> CreditModel {
        CreditModel {
            baseline: 0.1,
            balance_max_s: balance,
            balance_start_s: balance,
            tick_ns: 50_000_000,
            period_us: 100_000,
        }
    }

    #[test]
    fn a_full_speed_job_runs_until_the_balance_is_spent_then_gets_the_baseline() {
        let f = Fake(Rc::new(RefCell::new(World {
            now: 0,
            used: 0.0,
            cap: 1.0,
            busy_until_ns: u64::MAX,
            end: 30_000_000_000,
        })));
        let stop = AtomicBool::new(false);
        let (mut c, mut u, mut s) = (f.clone(), f.clone(), f.clone());
        let points = run(&model(2.0), &mut c, &mut u, &mut s, &stop).unwrap();
        // Spending 0.9 CPU-s per s net (1.0 used, 0.1 earned): empty after 2/0.9 = 2.22 s.
        let held_at = points.iter().find(|p| p.held).unwrap().t_s;
        assert!((held_at - 2.0 / 0.9).abs() < 0.06, "held at {held_at}");
        // From then on it gets the baseline: 30 s total = 2.22 s full + 27.8 s at 10%.
        let used = f.0.borrow().used / 1e9;
        assert!(
            (used - (held_at + 0.1 * (30.0 - held_at))).abs() < 0.1,
            "used {used}"
        );
    }

    #[test]
    fn rest_refills_the_balance_up_to_the_maximum() {
        let f = Fake(Rc::new(RefCell::new(World {
            now: 0,
            used: 0.0,
            cap: 1.0,
            busy_until_ns: 0,
            end: 100_000_000_000,
        })));
        let stop = AtomicBool::new(false);
        let mut m = model(2.0);
        m.balance_start_s = 0.0;
        let (mut c, mut u, mut s) = (f.clone(), f.clone(), f.clone());
        let points = run(&m, &mut c, &mut u, &mut s, &stop).unwrap();
        let last = points.last().unwrap();
        assert_eq!(last.balance_s, 2.0);
        assert!(!last.held);
    }

    #[test]
    fn a_held_job_gets_the_baseline_and_no_more() {
        // Held from the start (empty balance), wanting a full CPU for 60 s: whatever a
        // released tick overspends is repaid, so the long-run share is the baseline.
        let f = Fake(Rc::new(RefCell::new(World {
            now: 0,
            used: 0.0,
            cap: 1.0,
            busy_until_ns: u64::MAX,
            end: 60_000_000_000,
        })));
        let stop = AtomicBool::new(false);
        let mut m = model(30.0);
        m.balance_start_s = 0.0;
        let (mut c, mut u, mut s) = (f.clone(), f.clone(), f.clone());
        run(&m, &mut c, &mut u, &mut s, &stop).unwrap();
        let share = f.0.borrow().used / 60e9;
        assert!((share - 0.1).abs() < 0.005, "share {share}");
    }
}
