//! Tests of `credits`.

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
