//! The workloads: fast and slow Fibonacci threads, fixed-cost requests, duty cycles.
//!
//! Every thread pins itself to its CPU, waits at a barrier, and starts at the same time
//! zero. Everything a thread records goes into buffers allocated before time zero; the
//! measured loops allocate nothing, take no locks and print nothing. Records are built
//! and written by the main thread after the threads end.
//!
//! ## When a unit is due (latency without coordinated omission)
//! - A slow unit is due at its thread's intended wake-up: the previous unit's end plus
//!   `slow_sleep` (the first at time zero). Its latency is its end minus that: a thread
//!   that wakes late because its cgroup was throttled, or is throttled while working,
//!   shows it in the latency.
//! - Request k is due at `time zero + k * interval` (open loop: arrivals do not wait for
//!   earlier requests), and is served by thread `k mod threads`. Its latency is its end
//!   minus its due time, so queueing behind a slow request counts.

use crate::clock::{mono_ns, sleep_until, thread_cpu_ns};
use crate::cpulist::pin_current_thread;
use crate::fib::Fib;
use crate::record::{DutyPeriod, Role, ThreadReport, UnitKind, UnitLatency};
use crate::stop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;

/// Steps between deadline checks of a fast thread (about 0.4 ms at 2.7 G steps/s).
pub const FAST_CHECK_STEPS: u64 = 1 << 20;
/// Steps between CPU-clock reads of a request (a syscall; about 25 µs of work).
const REQUEST_CHECK_STEPS: u64 = 1 << 16;
/// Steps between clock reads of a duty thread (vDSO; about 12 µs of work).
const DUTY_CHECK_STEPS: u64 = 1 << 15;

/// One thread to start.
#[derive(Debug, Clone, Copy)]
pub struct ThreadSpec {
    pub role: Role,
    /// Index within its role.
    pub index: u32,
    pub cpu: Option<u32>,
}

/// What the fast and slow threads do.
#[derive(Debug, Clone, Copy)]
pub struct FibParams {
    pub duration_ns: u64,
    /// Steps between a fast thread's deadline checks.
    pub fast_check_steps: u64,
    pub slow_steps: u64,
    pub slow_sleep_ns: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct RequestParams {
    /// CPU time each request needs, in ns of the thread's CPU clock.
    pub work_ns: u64,
    pub count: u64,
    pub interval_ns: u64,
    pub threads: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct DutyParams {
    pub on_ns: u64,
    pub off_ns: u64,
    pub duration_ns: u64,
    pub slice_ns: u64,
}

impl DutyParams {
    /// Number of on/off cycles: as many whole cycles as fit in the duration, at least one.
    pub fn cycles(&self) -> u64 {
        (self.duration_ns / (self.on_ns + self.off_ns).max(1)).max(1)
    }
    /// Slices per on-period.
    pub fn slices(&self) -> usize {
        self.on_ns.div_ceil(self.slice_ns.max(1)).max(1) as usize
    }
}

/// What one thread did.
#[derive(Debug, Clone)]
pub struct ThreadOutcome {
    pub report: ThreadReport,
    pub units: Vec<UnitLatency>,
    pub duty: Vec<DutyPeriod>,
    /// The thread's last Fibonacci number (mod 2^64), as Fibtest's `-v` prints it.
    pub fib: u64,
    /// Set when the thread could not pin itself.
    pub error: Option<String>,
}

/// Time zero and what each thread did, in `specs` order.
pub struct RunOutcome {
    pub start_ns: u64,
    pub end_ns: u64,
    pub threads: Vec<ThreadOutcome>,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn since(start: u64, t: u64) -> f64 {
    secs(t.saturating_sub(start))
}

/// Where time zero falls: as soon as every thread is ready, or on a grid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alignment {
    /// Grid spacing in ns (0 = no grid).
    pub align_ns: u64,
    /// Offset after a grid point, in ns.
    pub phase_ns: u64,
    /// A point of the grid on CLOCK_MONOTONIC, in ns (see `find_period_boundary`).
    pub origin_ns: u64,
}

impl Alignment {
    /// The first time at or after `ready_ns` that lies `phase` after a grid point
    /// `origin + k * align`.
    pub fn time_zero(&self, ready_ns: u64) -> u64 {
        if self.align_ns == 0 {
            return ready_ns;
        }
        let phase = self.phase_ns % self.align_ns;
        let first = self.origin_ns + phase;
        if first >= ready_ns {
            return first;
        }
        let k = (ready_ns - first).div_ceil(self.align_ns);
        first + k * self.align_ns
    }
}

/// Find a CFS period boundary of the calling thread's cgroup by spinning until the thread
/// is throttled: a stall of at least `min_gap_ns` (chosen well above the machine's usual
/// stalls, e.g. half of period - quota) ends when the period timer refills the quota, which
/// is a period boundary. Returns that instant, or None if no such stall came within
/// `limit_ns` (no quota, or a quota the thread cannot exhaust).
///
/// The kernel's period grid is not predictable from outside (it depends on when the
/// cgroup's bandwidth timer started), and seed 003's conceptual model is about a request
/// that starts at a period boundary; this finds one at the cost of one period's quota.
pub fn find_period_boundary(min_gap_ns: u64, limit_ns: u64) -> Option<u64> {
    let start = mono_ns();
    let mut last = start;
    let mut fib = Fib::default();
    loop {
        fib.steps(256);
        let now = mono_ns();
        if now - last >= min_gap_ns {
            return Some(now);
        }
        if now - start >= limit_ns || stop::requested() {
            return None;
        }
        last = now;
    }
}

/// Start one thread per spec, all at the same time zero, and collect what they did.
/// `body` runs on the thread, pinned, with time zero (which may lie a little in the future
/// when `align` asks for a grid); it must not allocate in its loops.
pub fn run_threads<F>(specs: &[ThreadSpec], align: Alignment, body: F) -> RunOutcome
where
    F: Fn(&ThreadSpec, u64) -> ThreadOutcome + Sync,
{
    let ready = Barrier::new(specs.len() + 1);
    let go = Barrier::new(specs.len() + 1);
    let start = AtomicU64::new(0);
    let threads = std::thread::scope(|s| {
        let handles: Vec<_> = specs
            .iter()
            .map(|spec| {
                let (ready, go, start, body) = (&ready, &go, &start, &body);
                s.spawn(move || {
                    let pinned = match spec.cpu {
                        Some(cpu) => pin_current_thread(cpu).map_err(|e| {
                            format!("pinning a {:?} thread to CPU {cpu}: {e}", spec.role)
                        }),
                        None => Ok(()),
                    };
                    ready.wait();
                    go.wait();
                    let t0 = start.load(Ordering::SeqCst);
                    match pinned {
                        Ok(()) => body(spec, t0),
                        Err(e) => ThreadOutcome {
                            report: empty_report(spec),
                            units: Vec::new(),
                            duty: Vec::new(),
                            fib: 0,
                            error: Some(e),
                        },
                    }
                })
            })
            .collect();
        ready.wait();
        start.store(align.time_zero(mono_ns()), Ordering::SeqCst);
        go.wait();
        handles
            .into_iter()
            .map(|h| h.join().expect("a workload thread panicked"))
            .collect::<Vec<_>>()
    });
    let start_ns = start.load(Ordering::SeqCst);
    RunOutcome {
        start_ns,
        end_ns: mono_ns(),
        threads,
    }
}

fn empty_report(spec: &ThreadSpec) -> ThreadReport {
    ThreadReport {
        role: spec.role,
        index: spec.index,
        cpu: spec.cpu,
        steps: 0,
        units: 0,
        units_dropped: 0,
        wall_s: 0.0,
        cpu_s: 0.0,
    }
}

fn outcome(
    spec: &ThreadSpec,
    start: u64,
    cpu0: u64,
    fib: &Fib,
    steps: u64,
    units: Vec<UnitLatency>,
    dropped: u64,
) -> ThreadOutcome {
    ThreadOutcome {
        report: ThreadReport {
            role: spec.role,
            index: spec.index,
            cpu: spec.cpu,
            steps,
            units: units.len() as u64 + dropped,
            units_dropped: dropped,
            wall_s: since(start, mono_ns()),
            cpu_s: secs(thread_cpu_ns() - cpu0),
        },
        units,
        duty: Vec::new(),
        fib: fib.a,
        error: None,
    }
}

/// A fast thread: Fibonacci steps as fast as possible until the deadline.
pub fn fast_thread(spec: &ThreadSpec, start: u64, p: &FibParams) -> ThreadOutcome {
    sleep_until(start);
    let cpu0 = thread_cpu_ns();
    let deadline = start + p.duration_ns;
    let mut fib = Fib::default();
    let mut steps = 0u64;
    loop {
        fib.steps(p.fast_check_steps);
        steps += p.fast_check_steps;
        if stop::requested() || mono_ns() >= deadline {
            break;
        }
    }
    outcome(spec, start, cpu0, &fib, steps, Vec::new(), 0)
}

/// Room for a slow thread's units: one per `slow_sleep` of the duration, plus margin.
pub fn slow_capacity(p: &FibParams) -> usize {
    (p.duration_ns / p.slow_sleep_ns.max(1_000)) as usize + 16
}

/// A slow thread: `slow_steps` steps, sleep `slow_sleep`, until the deadline.
pub fn slow_thread(
    spec: &ThreadSpec,
    start: u64,
    p: &FibParams,
    mut units: Vec<UnitLatency>,
) -> ThreadOutcome {
    let cpu0 = thread_cpu_ns();
    let deadline = start + p.duration_ns;
    let mut fib = Fib::default();
    let mut steps = 0u64;
    let mut dropped = 0u64;
    let mut due = start;
    let mut index = 0u64;
    while sleep_until(due) {
        let begin = mono_ns();
        fib.steps(p.slow_steps);
        steps += p.slow_steps;
        let end = mono_ns();
        // Within the capacity reserved before time zero: push does not allocate.
        if units.len() < units.capacity() {
            units.push(UnitLatency {
                kind: UnitKind::Slow,
                thread: spec.index,
                index,
                due_s: since(start, due),
                start_s: since(start, begin),
                end_s: since(start, end),
                latency_s: secs(end - due),
            });
        } else {
            dropped += 1;
        }
        index += 1;
        if end >= deadline {
            break;
        }
        due = end + p.slow_sleep_ns;
    }
    outcome(spec, start, cpu0, &fib, steps, units, dropped)
}

/// Requests served by one thread: k = thread, thread + threads, ... < count.
pub fn request_thread(
    spec: &ThreadSpec,
    start: u64,
    p: &RequestParams,
    mut units: Vec<UnitLatency>,
) -> ThreadOutcome {
    let cpu0 = thread_cpu_ns();
    let mut fib = Fib::default();
    let mut steps = 0u64;
    let mut k = spec.index as u64;
    let mut served = 0u64;
    while k < p.count {
        let due = start + k * p.interval_ns;
        if !sleep_until(due) {
            break;
        }
        let begin = mono_ns();
        let c0 = thread_cpu_ns();
        loop {
            fib.steps(REQUEST_CHECK_STEPS);
            steps += REQUEST_CHECK_STEPS;
            if thread_cpu_ns() - c0 >= p.work_ns || stop::requested() {
                break;
            }
        }
        if stop::requested() {
            // An unfinished request has no latency to report.
            break;
        }
        let end = mono_ns();
        units.push(UnitLatency {
            kind: UnitKind::Request,
            thread: spec.index,
            index: served,
            due_s: since(start, due),
            start_s: since(start, begin),
            end_s: since(start, end),
            latency_s: secs(end - due),
        });
        served += 1;
        k += p.threads as u64;
    }
    outcome(spec, start, cpu0, &fib, steps, units, 0)
}

/// Requests one thread serves out of `count` spread over `threads`.
pub fn requests_for(p: &RequestParams, thread: u32) -> usize {
    let (c, t, i) = (p.count, p.threads.max(1) as u64, thread as u64);
    (c / t + u64::from(i < c % t)) as usize
}

/// One on-period's totals, kept in a preallocated buffer until the run ends.
#[derive(Debug, Clone, Copy, Default)]
struct OnPeriod {
    start: u64,
    end: u64,
    cpu_ns: u64,
    steps: u64,
}

/// A duty thread: run for `on`, sleep for `off`, for whole cycles of the duration.
pub fn duty_thread(spec: &ThreadSpec, start: u64, p: &DutyParams) -> ThreadOutcome {
    let cycles = p.cycles() as usize;
    let slices = p.slices();
    let mut periods = vec![OnPeriod::default(); cycles];
    let mut slice_steps = vec![0u64; cycles * slices];
    let cpu0 = thread_cpu_ns();
    let mut fib = Fib::default();
    let mut total = 0u64;
    let mut done = 0usize;
    let cycle_ns = p.on_ns + p.off_ns;
    'cycles: for (k, period) in periods.iter_mut().enumerate() {
        let on_start = start + k as u64 * cycle_ns;
        if !sleep_until(on_start) {
            break;
        }
        let on_end = on_start + p.on_ns;
        let c0 = thread_cpu_ns();
        let mut steps = 0u64;
        for j in 0..slices {
            let slice_end = (on_start + (j as u64 + 1) * p.slice_ns).min(on_end);
            let mut in_slice = 0u64;
            loop {
                fib.steps(DUTY_CHECK_STEPS);
                in_slice += DUTY_CHECK_STEPS;
                if mono_ns() >= slice_end {
                    break;
                }
                if stop::requested() {
                    slice_steps[k * slices + j] = in_slice;
                    *period = OnPeriod {
                        start: on_start,
                        end: mono_ns(),
                        cpu_ns: thread_cpu_ns() - c0,
                        steps: steps + in_slice,
                    };
                    total += steps + in_slice;
                    done = k + 1;
                    break 'cycles;
                }
            }
            slice_steps[k * slices + j] = in_slice;
            steps += in_slice;
        }
        *period = OnPeriod {
            start: on_start,
            end: mono_ns(),
            cpu_ns: thread_cpu_ns() - c0,
            steps,
        };
        total += steps;
        done = k + 1;
    }
    if done == cycles {
        // The last off-period too, so the run's average share is on / (on + off).
        sleep_until(start + cycles as u64 * cycle_ns);
    }
    let mut out = outcome(spec, start, cpu0, &fib, total, Vec::new(), 0);
    out.report.units = done as u64;
    out.duty = periods[..done]
        .iter()
        .enumerate()
        .map(|(k, o)| {
            let on_s = secs(o.end - o.start);
            DutyPeriod {
                thread: spec.index,
                period: k as u64,
                start_s: since(start, o.start),
                on_s,
                cpu_s: secs(o.cpu_ns),
                steps: o.steps,
                steps_per_s: if on_s > 0.0 {
                    o.steps as f64 / on_s
                } else {
                    0.0
                },
                slice_steps: slice_steps[k * slices..(k + 1) * slices].to_vec(),
                slice_s: secs(p.slice_ns),
            }
        })
        .collect();
    out
}

/// Ask all threads to stop at their next check (tests, signal handlers).
pub fn request_stop() {
    stop::request();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zero_lands_on_the_grid() {
        let none = Alignment::default();
        assert_eq!(none.time_zero(1234), 1234);
        let a = Alignment {
            align_ns: 100,
            phase_ns: 0,
            origin_ns: 0,
        };
        assert_eq!(a.time_zero(1234), 1300);
        assert_eq!(a.time_zero(1300), 1300);
        let shifted = Alignment {
            origin_ns: 1007,
            ..a
        };
        assert_eq!(shifted.time_zero(1234), 1307);
        assert_eq!(shifted.time_zero(500), 1007);
        let b = Alignment {
            align_ns: 100,
            phase_ns: 20,
            origin_ns: 0,
        };
        assert_eq!(b.time_zero(1234), 1320);
        assert_eq!(b.time_zero(1210), 1220);
        assert_eq!(b.time_zero(1221), 1320);
    }

    #[test]
    fn requests_are_spread_over_threads() {
        let p = RequestParams {
            work_ns: 1,
            count: 10,
            interval_ns: 0,
            threads: 3,
        };
        let n: Vec<usize> = (0..3).map(|t| requests_for(&p, t)).collect();
        assert_eq!(n, vec![4, 3, 3]);
        assert_eq!(n.iter().sum::<usize>(), 10);
    }

    #[test]
    fn duty_cycles_and_slices() {
        let p = DutyParams {
            on_ns: 1_000_000_000,
            off_ns: 9_000_000_000,
            duration_ns: 60_000_000_000,
            slice_ns: 100_000_000,
        };
        assert_eq!(p.cycles(), 6);
        assert_eq!(p.slices(), 10);
        let short = DutyParams {
            duration_ns: 1,
            on_ns: 250_000_000,
            slice_ns: 100_000_000,
            ..p
        };
        assert_eq!(short.cycles(), 1);
        assert_eq!(short.slices(), 3);
    }

    #[test]
    fn slow_capacity_covers_the_duration() {
        let p = FibParams {
            duration_ns: 5_000_000_000,
            fast_check_steps: 1,
            slow_steps: 100,
            slow_sleep_ns: 10_000_000,
        };
        assert!(slow_capacity(&p) >= 500);
    }
}
