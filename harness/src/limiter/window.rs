//! A CPU-time budget within a rolling window (`limiter.kind = "window"`): ApisCP's
//! cumulative limit, "how much CPU can be used in a 24-hour period" [ApisCP], which that
//! product records but does not enforce. Here it is enforced: every `interval` the
//! run's cgroup counter is read and its growth added to the current bucket of a ring
//! that spans the window (a fixed number of buckets, so memory does not grow with the
//! window or the run); when the ring's total reaches the budget, the workload is
//! throttled to `floor` with a CFS quota until enough usage ages out of the window
//! (`action = "throttle"`), or ended as the budget limiter ends it (`action = "stop"`).
//!
//! The window is as exact as one bucket (window / buckets): a bucket leaves the window
//! whole. The loop keeps a bounded series of the window's usage for `window.csv`.

pub use super::credits::QuotaSink;
use super::duty::{Clock, CpuUsage};
use crate::scenario::plan::{CfsLimit, WindowLimit};
use crate::scenario::schema::WindowAction;
use serde::Serialize;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Usage per bucket over the last `window`, oldest overwritten first.
#[derive(Debug, Clone)]
pub struct Buckets {
    len_ns: u64,
    used_ns: Vec<u64>,
    current: usize,
    /// When the current bucket began.
    current_start_ns: u64,
}

impl Buckets {
    pub fn new(buckets: u32, window_ns: u64, start_ns: u64) -> Buckets {
        let n = buckets.max(1) as u64;
        Buckets {
            len_ns: (window_ns / n).max(1),
            used_ns: vec![0; n as usize],
            current: 0,
            current_start_ns: start_ns,
        }
    }

    /// Add `used_ns` of CPU, used up to `now_ns`, to the bucket that holds `now_ns`
    /// (buckets that ended before are closed, the oldest dropped).
    pub fn add(&mut self, now_ns: u64, used_ns: u64) {
        let n = self.used_ns.len();
        if now_ns >= self.current_start_ns + self.len_ns {
            let steps = (now_ns - self.current_start_ns) / self.len_ns;
            // The buckets passed start empty (all of them after a whole window's gap).
            for i in 1..=steps.min(n as u64) as usize {
                self.used_ns[(self.current + i) % n] = 0;
            }
            self.current = (self.current + (steps % n as u64) as usize) % n;
            self.current_start_ns += steps * self.len_ns;
        }
        self.used_ns[self.current] += used_ns;
    }

    /// CPU used within the window, in ns.
    pub fn total_ns(&self) -> u64 {
        self.used_ns.iter().sum()
    }
}

/// One point of the window's usage over time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowPoint {
    /// CLOCK_MONOTONIC, in ns.
    pub t_ns: u64,
    /// CPU used within the window up to `t_ns`, in s.
    pub used_s: f64,
    /// Whether the workload was held to the floor after this reading.
    pub limited: bool,
}

/// The most points kept: past it every other one goes and only every 2nd, 4th, ...
/// reading is kept from then on.
pub const MAX_POINTS: usize = 10_000;

/// A series of readings in bounded memory: thinned by half whenever it is full.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Series {
    pub points: Vec<WindowPoint>,
    /// Readings per point kept.
    pub stride: u64,
    seen: u64,
}

impl Series {
    fn push(&mut self, p: WindowPoint) {
        self.stride = self.stride.max(1);
        if self.seen.is_multiple_of(self.stride) {
            if self.points.len() == MAX_POINTS {
                let mut i = 0;
                self.points.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
            if self.seen.is_multiple_of(self.stride) {
                self.points.push(p);
            }
        }
        self.seen += 1;
    }
}

/// A row of window.csv: the window's usage at one reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowRow {
    pub run: Option<usize>,
    pub group: Option<String>,
    /// Since the run's first sample, in s (negative: before it).
    pub t_s: f64,
    /// CPU used within the window up to then, in s.
    pub window_used_s: f64,
    /// The window's budget, in s.
    pub budget_s: f64,
    /// 1 while the workload was held to the floor (or ended), else 0.
    pub limited: u8,
}

/// What a window limiter saw and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WindowReport {
    pub budget_s: f64,
    pub window_s: f64,
    pub buckets: u32,
    pub action: &'static str,
    pub polls: u64,
    /// The most CPU used within one window, as the buckets saw it, in s.
    pub max_used_s: f64,
    /// Times the budget was reached, and the wall time the workload was held to the
    /// floor, in s.
    pub times_limited: u64,
    pub limited_s: f64,
    /// action = "stop": the workload was ended (CLOCK_MONOTONIC, ns), and how.
    pub stopped_ns: Option<u64>,
    pub end: Option<crate::limiter::budget::end::EndReport>,
    /// The window's usage over time (written to window.csv, not to run.json).
    #[serde(skip)]
    pub series: Series,
}

impl WindowReport {
    /// The series as window.csv rows, with times from the run's first sample at `t0_ns`.
    pub fn rows(&self, t0_ns: u64) -> Vec<WindowRow> {
        self.series
            .points
            .iter()
            .map(|p| WindowRow {
                run: None,
                group: None,
                t_s: (p.t_ns as f64 - t0_ns as f64) / 1e9,
                window_used_s: p.used_s,
                budget_s: self.budget_s,
                limited: p.limited as u8,
            })
            .collect()
    }
}

/// Run until `stop` (or, for action = "stop", until the workload is ended by `end`).
/// A throttle is always lifted before returning.
pub fn run(
    plan: &WindowLimit,
    clock: &mut dyn Clock,
    usage: &mut dyn CpuUsage,
    sink: &mut dyn QuotaSink,
    end: &mut dyn FnMut() -> crate::limiter::budget::end::EndReport,
    ended: &AtomicBool,
    stop: &AtomicBool,
) -> io::Result<WindowReport> {
    let mut limited = false;
    let r = run_inner(plan, clock, usage, sink, end, ended, stop, &mut limited);
    if limited {
        let lifted = sink.set(&unlimited(plan));
        let r = r?;
        lifted.map_err(io::Error::other)?;
        return Ok(r);
    }
    r
}

fn unlimited(plan: &WindowLimit) -> CfsLimit {
    CfsLimit {
        quota_us: None,
        period_us: plan.period_us,
        burst_us: 0,
    }
}

#[allow(clippy::too_many_arguments)]
fn run_inner(
    plan: &WindowLimit,
    clock: &mut dyn Clock,
    usage: &mut dyn CpuUsage,
    sink: &mut dyn QuotaSink,
    end: &mut dyn FnMut() -> crate::limiter::budget::end::EndReport,
    ended: &AtomicBool,
    stop: &AtomicBool,
    limited: &mut bool,
) -> io::Result<WindowReport> {
    let budget_ns = plan.cpu.0.as_nanos() as u64;
    let interval_ns = plan.interval.0.as_nanos() as u64;
    let floor = CfsLimit {
        quota_us: Some(((plan.floor * plan.period_us as f64).round() as u64).max(1000)),
        period_us: plan.period_us,
        burst_us: 0,
    };
    let mut r = WindowReport {
        budget_s: plan.cpu.as_secs_f64(),
        window_s: plan.window.as_secs_f64(),
        buckets: plan.buckets,
        action: plan.action.name(),
        ..WindowReport::default()
    };
    let start = clock.now_ns();
    let mut buckets = Buckets::new(plan.buckets, plan.window.0.as_nanos() as u64, start);
    let mut last = usage.usage_ns()?;
    // The workload's usage before the first reading counts in the first bucket.
    buckets.add(start, last);
    let mut next = start;
    let mut last_t = start;
    loop {
        next += interval_ns;
        let now = clock.now_ns();
        if next <= now {
            next = now + interval_ns - (now - start) % interval_ns;
        }
        if !clock.sleep_until(next, stop) {
            return Ok(r);
        }
        let now = clock.now_ns();
        let used = usage.usage_ns()?;
        buckets.add(now, used.saturating_sub(last));
        last = used;
        if *limited {
            r.limited_s += (now - last_t) as f64 / 1e9;
        }
        last_t = now;
        r.polls += 1;
        let total = buckets.total_ns();
        r.max_used_s = r.max_used_s.max(total as f64 / 1e9);
        if total >= budget_ns && !*limited {
            r.times_limited += 1;
            match plan.action {
                WindowAction::Throttle => {
                    sink.set(&floor).map_err(io::Error::other)?;
                    *limited = true;
                }
                WindowAction::Stop => {
                    r.stopped_ns = Some(now);
                    ended.store(true, Ordering::SeqCst);
                    r.series.push(WindowPoint {
                        t_ns: now,
                        used_s: total as f64 / 1e9,
                        limited: true,
                    });
                    r.end = Some(end());
                    return Ok(r);
                }
            }
        } else if total < budget_ns && *limited {
            sink.set(&unlimited(plan)).map_err(io::Error::other)?;
            *limited = false;
        }
        r.series.push(WindowPoint {
            t_ns: now,
            used_s: total as f64 / 1e9,
            limited: *limited,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CgroupError;
    use crate::scenario::plan::EndPlan;
    use crate::scenario::schema::KillOrder;
    use crate::scenario::Span;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A fake world: a workload that would use `rate` CPUs, held to the CFS quota set.
    struct World {
        now: u64,
        used: f64,
        rate: f64,
        cap: Option<f64>,
        end: u64,
        /// (time, cap) at every quota change.
        changes: Vec<(u64, Option<f64>)>,
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
            let rate = w.cap.map_or(w.rate, |c| c.min(w.rate));
            w.used += (to - w.now) as f64 * rate;
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
            let mut w = self.0.borrow_mut();
            let cap = l.quota_us.map(|q| q as f64 / l.period_us as f64);
            w.cap = cap;
            let now = w.now;
            w.changes.push((now, cap));
            Ok(())
        }
    }

    fn plan(action: WindowAction) -> WindowLimit {
        WindowLimit {
            cpu: Span::from_millis(1000),
            window: Span::from_millis(4000),
            interval: Span::from_millis(100),
            buckets: 40,
            action,
            floor: 0.1,
            period_us: 100_000,
            end: EndPlan {
                kill: KillOrder::StopFirst,
                grace: Span::from_millis(2000),
            },
        }
    }

    fn run_for(seconds: u64, action: WindowAction) -> (WindowReport, Fake, bool) {
        let f = Fake(Rc::new(RefCell::new(World {
            now: 0,
            used: 0.0,
            rate: 1.0,
            cap: None,
            end: seconds * 1_000_000_000,
            changes: Vec::new(),
        })));
        let (mut c, mut u, mut s) = (f.clone(), f.clone(), f.clone());
        let w = f.clone();
        let mut end = move || {
            w.0.borrow_mut().rate = 0.0;
            crate::limiter::budget::end::EndReport {
                kill: "stop-first",
                steps: Default::default(),
                took_s: 0.0,
            }
        };
        let (ended, stop) = (AtomicBool::new(false), AtomicBool::new(false));
        let r = run(
            &plan(action),
            &mut c,
            &mut u,
            &mut s,
            &mut end,
            &ended,
            &stop,
        )
        .unwrap();
        (r, f, ended.load(Ordering::SeqCst))
    }

    #[test]
    fn throttles_at_the_budget_and_recovers_as_the_window_slides() {
        let (r, f, ended) = run_for(12, WindowAction::Throttle);
        let w = f.0.borrow();
        assert!(!ended);
        // Held to the floor once 1 s of CPU is in the 4 s window (about 1 s in).
        let (t1, cap1) = w.changes[0];
        assert_eq!(cap1, Some(0.1));
        assert!((t1 as f64 / 1e9 - 1.0).abs() <= 0.1, "{:?}", w.changes);
        // Lifted once the first second ages out (about 4 s in), and limited again soon.
        let (t2, cap2) = w.changes[1];
        assert_eq!(cap2, None);
        assert!((4.0..=4.5).contains(&(t2 as f64 / 1e9)), "{:?}", w.changes);
        assert!(r.times_limited >= 2, "{r:?}");
        // Never more in one window than the budget, an interval's use, and the floor's
        // own use over the window (it counts too).
        assert!(r.max_used_s <= 1.0 + 0.1 + 0.1 * 4.0 + 1e-9, "{r:?}");
        assert!(r.max_used_s >= 1.0, "{r:?}");
        // Over 12 s: about 1 s per 4 s window, at least the floor.
        let share = w.used / 12e9;
        assert!((0.2..=0.35).contains(&share), "share {share}");
        // The throttle was lifted at the end.
        assert_eq!(w.cap, None);
        assert_eq!(r.series.points.len() as u64, r.polls);
        assert!(r.series.points.iter().any(|p| p.limited));
    }

    #[test]
    fn stop_ends_the_workload_at_the_budget() {
        let (r, f, ended) = run_for(12, WindowAction::Stop);
        assert!(ended && r.end.is_some());
        let t = r.stopped_ns.unwrap() as f64 / 1e9;
        assert!((t - 1.0).abs() <= 0.1, "{t}");
        assert!(f.0.borrow().changes.is_empty());
    }

    #[test]
    fn buckets_drop_whole_buckets_as_time_passes() {
        let mut b = Buckets::new(4, 4_000, 0);
        b.add(500, 10);
        b.add(1_500, 20);
        assert_eq!(b.total_ns(), 30);
        b.add(4_100, 5); // the first bucket (0-1000) left the window
        assert_eq!(b.total_ns(), 25);
        b.add(100_000, 1); // a long gap: everything before left
        assert_eq!(b.total_ns(), 1);
    }

    #[test]
    fn a_series_stays_bounded() {
        let mut s = Series::default();
        for i in 0..(MAX_POINTS as u64 * 5) {
            s.push(WindowPoint {
                t_ns: i,
                used_s: 0.0,
                limited: false,
            });
        }
        assert!(s.points.len() <= MAX_POINTS, "{}", s.points.len());
        assert!(s.points.len() >= MAX_POINTS / 2);
        assert_eq!(s.stride, 8);
        // Evenly spaced, from the start.
        assert_eq!(s.points[1].t_ns - s.points[0].t_ns, 8);
    }
}
