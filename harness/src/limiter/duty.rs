//! The duty-cycle control loop shared by the freezer and signal limiters.
//!
//! Open loop: run `on`, stop `off`, repeat. Closed loop: every cycle of length T, decide
//! how long to let the workload run so that its *cumulative* CPU time reaches
//! `share × elapsed` at the end of the cycle:
//!
//! ```text
//! need = share × (cycle_end − start) − used_so_far        (CPU time still owed)
//! on   = clamp(need / rate, 0, T)                          (wall time to run)
//! ```
//!
//! where `rate` is how much CPU the workload burns per wall second while running,
//! measured over previous on-periods. Because the target is on the running total, an
//! error in one cycle (a late wake-up, a stop that landed late) is paid back in the next,
//! instead of accumulating as with a per-cycle average (cpulimit's design: a fixed 100 ms
//! cycle corrected from a tick-resolution EWMA of /proc CPU times).
//!
//! Time, CPU usage and the stop/continue action are traits, so the loop is tested with a
//! fake clock and a fake workload.

use crate::scenario::plan::DutyControl;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Wall time, and sleeping that ends early when asked to stop.
pub trait Clock {
    fn now_ns(&mut self) -> u64;
    /// Sleep until `t_ns`; false if `stop` was set meanwhile.
    fn sleep_until(&mut self, t_ns: u64, stop: &AtomicBool) -> bool;
}

/// CPU time the limited workload has used, in ns.
pub trait CpuUsage {
    fn usage_ns(&mut self) -> io::Result<u64>;
}

/// What stops and continues the workload.
pub trait Actuator {
    fn pause(&mut self) -> io::Result<()>;
    fn resume(&mut self) -> io::Result<()>;
    /// The last resume, when the loop ends with the workload still running.
    fn release(&mut self) -> io::Result<()> {
        self.resume()
    }
    /// Pauses the kernel did not confirm in time (the freezer checks); 0 for others.
    fn unconfirmed(&self) -> u64 {
        0
    }
}

/// What a duty loop did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DutyStats {
    pub cycles: u64,
    /// Wall time the workload was allowed to run, in s.
    pub on_s: f64,
    /// Wall time it was stopped, in s.
    pub off_s: f64,
    /// Last estimate of the workload's CPU rate while running, in CPUs.
    pub rate_cpus: f64,
}

/// Run the loop until `stop` is set; always leaves the workload running (resumed).
pub fn run(
    control: &DutyControl,
    clock: &mut dyn Clock,
    cpu: &mut dyn CpuUsage,
    act: &mut dyn Actuator,
    stop: &AtomicBool,
) -> io::Result<DutyStats> {
    let r = run_inner(control, clock, cpu, act, stop);
    // Whatever happened, the workload is not left stopped by us.
    let resumed = act.release();
    let stats = r?;
    resumed?;
    Ok(stats)
}

fn run_inner(
    control: &DutyControl,
    clock: &mut dyn Clock,
    cpu: &mut dyn CpuUsage,
    act: &mut dyn Actuator,
    stop: &AtomicBool,
) -> io::Result<DutyStats> {
    let mut stats = DutyStats {
        rate_cpus: 1.0,
        ..DutyStats::default()
    };
    let start = clock.now_ns();
    let used0 = cpu.usage_ns()?;
    let mut cycle_start = start;
    while !stop.load(Ordering::Relaxed) {
        let (on_ns, cycle_ns) = match *control {
            DutyControl::Open { on, off } => {
                let on = on.0.as_nanos() as u64;
                (on, on + off.0.as_nanos() as u64)
            }
            DutyControl::Closed { share, cycle } => {
                let t = cycle.0.as_nanos() as u64;
                let used = cpu.usage_ns()?.saturating_sub(used0) as f64;
                let want = share * (cycle_start + t - start) as f64;
                let need = (want - used).max(0.0);
                let on = (need / stats.rate_cpus.max(0.01)).min(t as f64) as u64;
                (on, t)
            }
        };
        let on_end = cycle_start + on_ns;
        let cycle_end = cycle_start + cycle_ns;
        if on_ns > 0 {
            let u0 = cpu.usage_ns()?;
            let t0 = clock.now_ns();
            act.resume()?;
            if !clock.sleep_until(on_end, stop) {
                break;
            }
            if on_ns < cycle_ns {
                act.pause()?;
            }
            let (u1, t1) = (cpu.usage_ns()?, clock.now_ns());
            // The rate while running: the next cycle converts CPU owed into wall time with it.
            if t1 > t0 + 1_000_000 {
                let rate = (u1 - u0) as f64 / (t1 - t0) as f64;
                stats.rate_cpus = 0.5 * stats.rate_cpus + 0.5 * rate.max(0.01);
            }
        } else {
            act.pause()?;
        }
        stats.on_s += on_ns as f64 / 1e9;
        stats.off_s += (cycle_ns - on_ns) as f64 / 1e9;
        stats.cycles += 1;
        if !clock.sleep_until(cycle_end, stop) {
            break;
        }
        cycle_start = cycle_end;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Span;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A fake world: time advances only by sleeping; the workload burns `rate` CPUs while
    /// running, and a pause takes effect `lag_ns` late (as a real signal does).
    struct World {
        now: u64,
        running: bool,
        used: f64,
        rate: f64,
        lag_ns: u64,
        end: u64,
    }

    #[derive(Clone)]
    struct Fake(Rc<RefCell<World>>);

    impl Fake {
        fn advance(&self, to: u64) {
            let mut w = self.0.borrow_mut();
            if to > w.now {
                if w.running {
                    w.used += (to - w.now) as f64 * w.rate;
                }
                w.now = to;
            }
        }
    }

    impl Clock for Fake {
        fn now_ns(&mut self) -> u64 {
            self.0.borrow().now
        }
        fn sleep_until(&mut self, t: u64, stop: &AtomicBool) -> bool {
            let end = self.0.borrow().end;
            self.advance(t.min(end));
            if t >= end {
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

    impl Actuator for Fake {
        fn pause(&mut self) -> io::Result<()> {
            let lag = self.0.borrow().lag_ns;
            let now = self.0.borrow().now;
            self.advance(now + lag);
            self.0.borrow_mut().running = false;
            Ok(())
        }
        fn resume(&mut self) -> io::Result<()> {
            self.0.borrow_mut().running = true;
            Ok(())
        }
    }

    fn world(rate: f64, lag_ns: u64, seconds: u64) -> Fake {
        Fake(Rc::new(RefCell::new(World {
            now: 1_000_000_000,
            running: true,
            used: 0.0,
            rate,
            lag_ns,
            end: 1_000_000_000 + seconds * 1_000_000_000,
        })))
    }

    fn share_after(control: DutyControl, rate: f64, lag_ns: u64, seconds: u64) -> (f64, DutyStats) {
        let f = world(rate, lag_ns, seconds);
        let stop = AtomicBool::new(false);
        let (mut c, mut u, mut a) = (f.clone(), f.clone(), f.clone());
        let stats = run(&control, &mut c, &mut u, &mut a, &stop).unwrap();
        let w = f.0.borrow();
        assert!(w.running, "the loop must leave the workload running");
        (w.used / (seconds as f64 * 1e9), stats)
    }

    #[test]
    fn closed_loop_reaches_the_target_despite_late_pauses() {
        for share in [0.1, 0.4, 0.8] {
            // Pauses land 3 ms late, as a signal can on this machine.
            let control = DutyControl::Closed {
                share,
                cycle: Span::from_millis(100),
            };
            let (got, _) = share_after(control, 1.0, 3_000_000, 20);
            assert!((got - share).abs() < 0.005, "target {share}, got {got}");
        }
    }

    #[test]
    fn closed_loop_learns_a_workload_that_uses_two_cpus() {
        let control = DutyControl::Closed {
            share: 0.4,
            cycle: Span::from_millis(100),
        };
        let (got, stats) = share_after(control, 2.0, 0, 20);
        assert!((got - 0.4).abs() < 0.01, "got {got}");
        assert!((stats.rate_cpus - 2.0).abs() < 0.1);
    }

    #[test]
    fn open_loop_runs_on_then_off() {
        let control = DutyControl::Open {
            on: Span::from_millis(1000),
            off: Span::from_millis(9000),
        };
        let (got, stats) = share_after(control, 1.0, 0, 60);
        assert!((got - 0.1).abs() < 1e-6, "got {got}");
        assert_eq!(stats.cycles, 6);
    }

    #[test]
    fn open_loop_errors_are_not_corrected() {
        // The same late pauses that the closed loop absorbs push an open loop over.
        let control = DutyControl::Open {
            on: Span::from_millis(10),
            off: Span::from_millis(90),
        };
        let (got, _) = share_after(control, 1.0, 3_000_000, 20);
        assert!(got > 0.12, "got {got}");
    }
}
