//! The workloads: fast and slow Fibonacci threads, fixed-cost requests, duty cycles.
//!
//! Every thread pins itself to its CPU, allocates its buffers, waits at a barrier, and
//! starts at the same time zero. The measured loops allocate nothing, take no locks and
//! print nothing; records are built and written by the main thread after the threads end.
//! The loops reach clocks, sleep and the stop flag through `clock::Host`, so tests run them
//! against a fake host with scripted stalls (see the tests at the end of this file).
//!
//! ## When a unit is due (latency without coordinated omission)
//! - Slow units are due on an absolute schedule: unit k at `time zero + k * slow_sleep`
//!   (`SlowSchedule::Absolute`, the default). A thread that wakes late, because its cgroup
//!   was throttled or it was throttled while working, runs the units that fell due in the
//!   meantime back to back, and each of them records its wait. A 100 ms stall with a 10 ms
//!   sleep is then ten late units (latencies of about 100, 90, ..., 10 ms) in the tail of
//!   the distribution, as it is for a service that has to do something every 10 ms.
//!   Scheduling each unit `slow_sleep` after the previous one ended (Fibtest's own
//!   `usleep`, `SlowSchedule::Relative`) would record that stall as one late unit out of
//!   the few a stalled thread gets through, and the tail would hide most of it: that is
//!   coordinated omission. The Fibtest-compatible form uses the relative schedule, as
//!   Fibtest does, and reports no latencies.
//! - Request k is due at `time zero + k * interval` (open loop: arrivals do not wait for
//!   earlier requests), and is served by thread `k mod threads`. Its latency is its end
//!   minus its due time, so queueing behind a slow request counts.

use crate::clock::Host;
use crate::cpulist::pin_current_thread;
use crate::fib::Fib;
use crate::record::{DutyPeriod, Role, ThreadReport, UnitKind, UnitLatency};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;

/// Steps between deadline checks of a fast thread (about 0.3 ms at 3.6 G steps/s).
pub const FAST_CHECK_STEPS: u64 = 1 << 20;
/// Steps between CPU-clock reads of a request (a syscall; about 20 µs of work).
pub const REQUEST_CHECK_STEPS: u64 = 1 << 16;
/// Steps between clock reads of a duty thread (vDSO; about 10 µs of work).
pub const DUTY_CHECK_STEPS: u64 = 1 << 15;
/// Most latencies one thread keeps (48 bytes each, about 100 MB); later units are counted
/// in `units_dropped`.
pub const MAX_UNITS_PER_THREAD: usize = 1 << 21;

/// One thread to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadSpec {
    pub role: Role,
    /// Index within its role.
    pub index: u32,
    /// CPU the thread pins itself to.
    pub cpu: Option<u32>,
}

/// When a slow thread's units are due (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlowSchedule {
    /// Unit k is due at time zero + k * slow_sleep; late units run back to back.
    #[default]
    Absolute,
    /// Each unit is due slow_sleep after the previous one ended (Fibtest's usleep).
    Relative,
}

impl SlowSchedule {
    /// When the unit after one that was due at `due_ns` and ended at `end_ns` is due.
    pub fn next_due(self, due_ns: u64, end_ns: u64, sleep_ns: u64) -> u64 {
        match self {
            SlowSchedule::Absolute => due_ns + sleep_ns,
            SlowSchedule::Relative => end_ns + sleep_ns,
        }
    }
}

impl FromStr for SlowSchedule {
    type Err = String;
    fn from_str(s: &str) -> Result<SlowSchedule, String> {
        match s {
            "absolute" => Ok(SlowSchedule::Absolute),
            "relative" => Ok(SlowSchedule::Relative),
            _ => Err(format!(
                "`{s}` is not a schedule: write \"absolute\" or \"relative\""
            )),
        }
    }
}

impl fmt::Display for SlowSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlowSchedule::Absolute => "absolute",
            SlowSchedule::Relative => "relative",
        })
    }
}

/// What the fast and slow threads do.
#[derive(Debug, Clone, Copy)]
pub struct FibParams {
    pub duration_ns: u64,
    /// Steps between a fast thread's deadline checks.
    pub fast_check_steps: u64,
    /// Steps in one slow unit.
    pub slow_steps: u64,
    /// Time between slow units, in ns (more than 0).
    pub slow_sleep_ns: u64,
    pub schedule: SlowSchedule,
}

impl FibParams {
    /// Slow units due before the deadline: the most a slow thread can do.
    pub fn slow_units(&self) -> u64 {
        self.duration_ns.div_ceil(self.slow_sleep_ns.max(1))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RequestParams {
    /// CPU time each request needs, in ns of the thread's CPU clock.
    pub work_ns: u64,
    pub count: u64,
    /// Time between arrivals, in ns (0: all due at time zero).
    pub interval_ns: u64,
    pub threads: u32,
    /// Steps between reads of the CPU clock.
    pub check_steps: u64,
}

impl RequestParams {
    /// Requests thread `thread` serves out of `count` spread over `threads`.
    pub fn requests_for(&self, thread: u32) -> u64 {
        let (c, t, i) = (self.count, self.threads.max(1) as u64, thread as u64);
        c / t + u64::from(i < c % t)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct DutyParams {
    pub on_ns: u64,
    pub off_ns: u64,
    pub duration_ns: u64,
    /// Length of the slices an on-period's steps are counted in (more than 0).
    pub slice_ns: u64,
    /// Steps between clock reads.
    pub check_steps: u64,
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

/// Latencies of one thread, in a buffer allocated before time zero that never grows:
/// units beyond its capacity are counted, not stored.
#[derive(Debug, Clone, Default)]
pub struct LatencyBuffer {
    units: Vec<UnitLatency>,
    dropped: u64,
}

impl LatencyBuffer {
    /// Room for `units` latencies, at most `MAX_UNITS_PER_THREAD`.
    pub fn with_capacity(units: u64) -> LatencyBuffer {
        LatencyBuffer {
            units: Vec::with_capacity(units.min(MAX_UNITS_PER_THREAD as u64) as usize),
            dropped: 0,
        }
    }
    /// Store `u` if there is room (no allocation), else count it as dropped.
    #[inline]
    pub fn record(&mut self, u: UnitLatency) {
        if self.units.len() < self.units.capacity() {
            self.units.push(u);
        } else {
            self.dropped += 1;
        }
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn since(start: u64, t: u64) -> f64 {
    secs(t.saturating_sub(start))
}

/// The latency record of a unit that was due at `due`, began at `begin` and ended at
/// `end` (all ns on the same clock as `start`, time zero).
pub fn unit_latency(
    kind: UnitKind,
    thread: u32,
    index: u64,
    start: u64,
    due: u64,
    begin: u64,
    end: u64,
) -> UnitLatency {
    UnitLatency {
        kind,
        thread,
        index,
        due_s: since(start, due),
        start_s: since(start, begin),
        end_s: since(start, end),
        latency_s: secs(end.saturating_sub(due)),
    }
}

/// One on-period's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnPeriod {
    /// When it was due to start (ns, same clock as time zero).
    pub start_ns: u64,
    /// When it ended.
    pub end_ns: u64,
    /// CPU time the thread got in it.
    pub cpu_ns: u64,
    pub steps: u64,
}

/// What a duty thread measured, in buffers allocated before time zero.
#[derive(Debug, Clone, Default)]
pub struct DutyTrace {
    /// The on-periods done, in order (capacity: every cycle).
    pub periods: Vec<OnPeriod>,
    /// Steps per slice, `slices` per cycle, cycle after cycle.
    pub slice_steps: Vec<u64>,
    pub slices: usize,
    pub slice_ns: u64,
}

impl DutyTrace {
    pub fn for_params(p: &DutyParams) -> DutyTrace {
        let cycles = p.cycles() as usize;
        DutyTrace {
            periods: Vec::with_capacity(cycles),
            slice_steps: vec![0; cycles * p.slices()],
            slices: p.slices(),
            slice_ns: p.slice_ns,
        }
    }

    /// The `duty` records of thread `thread` whose time zero was `start`.
    pub fn records(&self, thread: u32, start: u64) -> Vec<DutyPeriod> {
        self.periods
            .iter()
            .enumerate()
            .map(|(k, o)| {
                let on_s = secs(o.end_ns.saturating_sub(o.start_ns));
                DutyPeriod {
                    thread,
                    period: k as u64,
                    start_s: since(start, o.start_ns),
                    on_s,
                    cpu_s: secs(o.cpu_ns),
                    steps: o.steps,
                    steps_per_s: if on_s > 0.0 {
                        o.steps as f64 / on_s
                    } else {
                        0.0
                    },
                    slice_steps: self.slice_steps[k * self.slices..(k + 1) * self.slices].to_vec(),
                    slice_s: secs(self.slice_ns),
                }
            })
            .collect()
    }
}

/// What one thread did.
#[derive(Debug, Clone)]
pub struct ThreadOutcome {
    pub report: ThreadReport,
    pub units: Vec<UnitLatency>,
    pub duty: DutyTrace,
    /// The thread's last Fibonacci number (mod 2^64), as Fibtest's `-v` prints it.
    pub fib: u64,
    /// Set when the thread could not pin itself.
    pub error: Option<String>,
}

/// Time zero and what each thread did, in `specs` order.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Time zero on CLOCK_MONOTONIC, in ns.
    pub start_ns: u64,
    /// When the last thread had ended, on CLOCK_MONOTONIC, in ns.
    pub end_ns: u64,
    /// CPU time of the whole process (CLOCK_PROCESS_CPUTIME_ID) then, in ns.
    pub process_cpu_ns: u64,
    pub threads: Vec<ThreadOutcome>,
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
/// cgroup's bandwidth timer started), and Indeed's conceptual model [Unthrottled] is about a request
/// that starts at a period boundary; this finds one at the cost of one period's quota.
pub fn find_period_boundary<H: Host>(h: &H, min_gap_ns: u64, limit_ns: u64) -> Option<u64> {
    let start = h.now_ns();
    let mut last = start;
    let mut fib = Fib::default();
    loop {
        h.steps(&mut fib, 256);
        let now = h.now_ns();
        if now - last >= min_gap_ns {
            return Some(now);
        }
        if now - start >= limit_ns || h.stop_requested() {
            return None;
        }
        last = now;
    }
}

/// Start one thread per spec, all at the same time zero, and collect what they did.
///
/// On each thread, pinned: `prepare` makes the thread's state (its buffers) before the
/// barrier, then `body` runs with time zero (which may lie a little in the future when
/// `align` asks for a grid) and that state; `body` must not allocate in its loops.
pub fn run_threads<S, P, B>(
    specs: &[ThreadSpec],
    align: Alignment,
    prepare: P,
    body: B,
) -> RunOutcome
where
    P: Fn(&ThreadSpec) -> S + Sync,
    B: Fn(&ThreadSpec, u64, S) -> ThreadOutcome + Sync,
{
    let ready = Barrier::new(specs.len() + 1);
    let go = Barrier::new(specs.len() + 1);
    let start = AtomicU64::new(0);
    let threads = std::thread::scope(|s| {
        let handles: Vec<_> = specs
            .iter()
            .map(|spec| {
                let (ready, go, start, prepare, body) = (&ready, &go, &start, &prepare, &body);
                s.spawn(move || {
                    let pinned = match spec.cpu {
                        Some(cpu) => pin_current_thread(cpu).map_err(|e| {
                            format!("pinning a {:?} thread to CPU {cpu}: {e}", spec.role)
                        }),
                        None => Ok(()),
                    };
                    let state = prepare(spec);
                    ready.wait();
                    go.wait();
                    let t0 = start.load(Ordering::SeqCst);
                    match pinned {
                        Ok(()) => body(spec, t0, state),
                        Err(e) => ThreadOutcome {
                            error: Some(e),
                            ..empty(spec)
                        },
                    }
                })
            })
            .collect();
        ready.wait();
        start.store(align.time_zero(crate::clock::mono_ns()), Ordering::SeqCst);
        go.wait();
        handles
            .into_iter()
            .map(|h| h.join().expect("a workload thread panicked"))
            .collect::<Vec<_>>()
    });
    RunOutcome {
        start_ns: start.load(Ordering::SeqCst),
        end_ns: crate::clock::mono_ns(),
        process_cpu_ns: crate::clock::process_cpu_ns(),
        threads,
    }
}

/// The outcome of a thread that did nothing.
fn empty(spec: &ThreadSpec) -> ThreadOutcome {
    ThreadOutcome {
        report: ThreadReport {
            role: spec.role,
            index: spec.index,
            cpu: spec.cpu,
            steps: 0,
            units: 0,
            units_dropped: 0,
            wall_s: 0.0,
            cpu_s: 0.0,
        },
        units: Vec::new(),
        duty: DutyTrace::default(),
        fib: 0,
        error: None,
    }
}

/// A thread's outcome with its totals; units and duty periods are filled in by the caller.
fn finish<H: Host>(
    h: &H,
    spec: &ThreadSpec,
    start: u64,
    cpu0: u64,
    steps: u64,
    fib: u64,
) -> ThreadOutcome {
    ThreadOutcome {
        report: ThreadReport {
            role: spec.role,
            index: spec.index,
            cpu: spec.cpu,
            steps,
            units: 0,
            units_dropped: 0,
            wall_s: since(start, h.now_ns()),
            cpu_s: secs(h.thread_cpu_ns().saturating_sub(cpu0)),
        },
        units: Vec::new(),
        duty: DutyTrace::default(),
        fib,
        error: None,
    }
}

fn with_units(mut out: ThreadOutcome, buf: LatencyBuffer) -> ThreadOutcome {
    out.report.units = buf.units.len() as u64 + buf.dropped;
    out.report.units_dropped = buf.dropped;
    out.units = buf.units;
    out
}

/// A fast thread: Fibonacci steps as fast as possible until the deadline.
pub fn fast_thread<H: Host>(h: &H, spec: &ThreadSpec, start: u64, p: &FibParams) -> ThreadOutcome {
    h.sleep_until(start);
    let cpu0 = h.thread_cpu_ns();
    let deadline = start + p.duration_ns;
    let mut fib = Fib::default();
    let mut steps = 0u64;
    loop {
        h.steps(&mut fib, p.fast_check_steps);
        steps += p.fast_check_steps;
        if h.stop_requested() || h.now_ns() >= deadline {
            break;
        }
    }
    finish(h, spec, start, cpu0, steps, fib.a)
}

/// Room for a slow thread's units: every unit due before the deadline, plus margin.
pub fn slow_capacity(p: &FibParams) -> u64 {
    p.slow_units() + 16
}

/// A slow thread: `slow_steps` steps per unit, units due every `slow_sleep` (see the
/// module doc for the schedule), until the deadline.
pub fn slow_thread<H: Host>(
    h: &H,
    spec: &ThreadSpec,
    start: u64,
    p: &FibParams,
    mut buf: LatencyBuffer,
) -> ThreadOutcome {
    let cpu0 = h.thread_cpu_ns();
    let deadline = start + p.duration_ns;
    let mut fib = Fib::default();
    let mut steps = 0u64;
    let mut due = start;
    let mut index = 0u64;
    while due < deadline && h.sleep_until(due) {
        let begin = h.now_ns();
        h.steps(&mut fib, p.slow_steps);
        steps += p.slow_steps;
        let end = h.now_ns();
        buf.record(unit_latency(
            UnitKind::Slow,
            spec.index,
            index,
            start,
            due,
            begin,
            end,
        ));
        index += 1;
        due = p.schedule.next_due(due, end, p.slow_sleep_ns);
    }
    with_units(finish(h, spec, start, cpu0, steps, fib.a), buf)
}

/// Requests served by one thread: k = thread, thread + threads, ... < count. A request
/// cut short by a stop is not reported (it has no end).
pub fn request_thread<H: Host>(
    h: &H,
    spec: &ThreadSpec,
    start: u64,
    p: &RequestParams,
    mut buf: LatencyBuffer,
) -> ThreadOutcome {
    let cpu0 = h.thread_cpu_ns();
    let mut fib = Fib::default();
    let mut steps = 0u64;
    let mut k = spec.index as u64;
    let mut index = 0u64;
    'requests: while k < p.count {
        let due = start + k * p.interval_ns;
        if !h.sleep_until(due) {
            break;
        }
        let begin = h.now_ns();
        let c0 = h.thread_cpu_ns();
        loop {
            h.steps(&mut fib, p.check_steps);
            steps += p.check_steps;
            if h.thread_cpu_ns() - c0 >= p.work_ns {
                break;
            }
            if h.stop_requested() {
                break 'requests;
            }
        }
        let end = h.now_ns();
        buf.record(unit_latency(
            UnitKind::Request,
            spec.index,
            index,
            start,
            due,
            begin,
            end,
        ));
        index += 1;
        k += p.threads as u64;
    }
    with_units(finish(h, spec, start, cpu0, steps, fib.a), buf)
}

/// A duty thread: run for `on`, sleep for `off`, for whole cycles of the duration,
/// counting steps per slice of each on-period into `trace` (from `DutyTrace::for_params`).
pub fn duty_thread<H: Host>(
    h: &H,
    spec: &ThreadSpec,
    start: u64,
    p: &DutyParams,
    mut trace: DutyTrace,
) -> ThreadOutcome {
    let cycles = p.cycles();
    let slices = trace.slices;
    let cycle_ns = p.on_ns + p.off_ns;
    let cpu0 = h.thread_cpu_ns();
    let mut fib = Fib::default();
    let mut total = 0u64;
    let mut stopped = false;
    for k in 0..cycles {
        let on_start = start + k * cycle_ns;
        if !h.sleep_until(on_start) {
            stopped = true;
            break;
        }
        let on_end = on_start + p.on_ns;
        let c0 = h.thread_cpu_ns();
        let mut steps = 0u64;
        for j in 0..slices {
            let slice_end = (on_start + (j as u64 + 1) * p.slice_ns).min(on_end);
            let mut in_slice = 0u64;
            loop {
                h.steps(&mut fib, p.check_steps);
                in_slice += p.check_steps;
                if h.now_ns() >= slice_end {
                    break;
                }
                if h.stop_requested() {
                    stopped = true;
                    break;
                }
            }
            trace.slice_steps[k as usize * slices + j] = in_slice;
            steps += in_slice;
            if stopped {
                break;
            }
        }
        // Within the capacity reserved before time zero: push does not allocate.
        trace.periods.push(OnPeriod {
            start_ns: on_start,
            end_ns: h.now_ns(),
            cpu_ns: h.thread_cpu_ns() - c0,
            steps,
        });
        total += steps;
        if stopped {
            break;
        }
    }
    if !stopped {
        // The last off-period too, so the run's average share is on / (on + off).
        h.sleep_until(start + cycles * cycle_ns);
    }
    let mut out = finish(h, spec, start, cpu0, total, fib.a);
    out.report.units = trace.periods.len() as u64;
    out.duty = trace;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeHost;

    const MS: u64 = 1_000_000;
    const US: u64 = 1_000;

    fn spec(role: Role) -> ThreadSpec {
        ThreadSpec {
            role,
            index: 0,
            cpu: None,
        }
    }

    fn latencies_us(out: &ThreadOutcome) -> Vec<u64> {
        out.units
            .iter()
            .map(|u| (u.latency_s * 1e6).round() as u64)
            .collect()
    }

    fn fib_params(schedule: SlowSchedule) -> FibParams {
        FibParams {
            duration_ns: 100 * MS,
            fast_check_steps: 1_000,
            slow_steps: 100,
            slow_sleep_ns: 10 * MS,
            schedule,
        }
    }

    #[test]
    fn absolute_schedule_puts_a_stall_in_every_unit_it_delayed() {
        // 100 steps of 1 µs per unit, a unit due every 10 ms, a stall from 30 to 65 ms.
        let h = FakeHost::new(US, &[(30 * MS, 65 * MS)]);
        let p = fib_params(SlowSchedule::Absolute);
        let out = slow_thread(
            &h,
            &spec(Role::Slow),
            0,
            &p,
            LatencyBuffer::with_capacity(20),
        );
        // Units due at 30, 40, 50 and 60 ms wait for the stall's end, then run back to back.
        assert_eq!(
            latencies_us(&out),
            vec![100, 100, 100, 35_100, 25_200, 15_300, 5_400, 100, 100, 100]
        );
        let due: Vec<u64> = out
            .units
            .iter()
            .map(|u| (u.due_s * 1e3).round() as u64)
            .collect();
        assert_eq!(due, (0..10).map(|k| k * 10).collect::<Vec<_>>());
        assert_eq!(out.report.units, p.slow_units());
        assert_eq!(out.report.steps, 1_000);
        assert_eq!(out.units[3].start_s, 0.065);
    }

    #[test]
    fn relative_schedule_shows_a_stall_once() {
        let h = FakeHost::new(US, &[(30 * MS, 65 * MS)]);
        let p = fib_params(SlowSchedule::Relative);
        let out = slow_thread(
            &h,
            &spec(Role::Slow),
            0,
            &p,
            LatencyBuffer::with_capacity(20),
        );
        // Due 0, 10.1, 20.2, 30.3 (woken at 65), 75.1, 85.2, 95.3 ms.
        assert_eq!(
            latencies_us(&out),
            vec![100, 100, 100, 34_800, 100, 100, 100]
        );
    }

    #[test]
    fn a_full_buffer_counts_units_instead_of_growing() {
        let h = FakeHost::new(US, &[]);
        let p = fib_params(SlowSchedule::Absolute);
        let out = slow_thread(
            &h,
            &spec(Role::Slow),
            0,
            &p,
            LatencyBuffer::with_capacity(4),
        );
        assert_eq!(out.units.len(), 4);
        assert_eq!((out.report.units, out.report.units_dropped), (10, 6));
    }

    #[test]
    fn slow_thread_stops_when_asked() {
        let h = FakeHost::new(US, &[]).stop_at(25 * MS);
        let p = fib_params(SlowSchedule::Absolute);
        let out = slow_thread(
            &h,
            &spec(Role::Slow),
            0,
            &p,
            LatencyBuffer::with_capacity(20),
        );
        assert_eq!(out.units.len(), 3);
    }

    fn request_params(count: u64, interval_ns: u64, threads: u32) -> RequestParams {
        RequestParams {
            work_ns: 5 * MS,
            count,
            interval_ns,
            threads,
            // 1 µs per step: the CPU clock is read after every 1 ms of work.
            check_steps: 1_000,
        }
    }

    #[test]
    fn requests_due_together_queue_behind_each_other() {
        let h = FakeHost::new(US, &[]);
        let p = request_params(3, 0, 1);
        let out = request_thread(
            &h,
            &spec(Role::Request),
            0,
            &p,
            LatencyBuffer::with_capacity(3),
        );
        assert_eq!(latencies_us(&out), vec![5_000, 10_000, 15_000]);
        assert!(out.units.iter().all(|u| u.due_s == 0.0));
        assert_eq!(out.units[2].start_s, 0.010);
    }

    #[test]
    fn a_stalled_request_delays_the_next_arrival() {
        // Request 0 runs 2 ms, stalls until 30 ms, ends at 33; request 1 (due at 20) waits
        // for it and ends at 38; request 2 (due at 40) is on time.
        let h = FakeHost::new(US, &[(2 * MS, 30 * MS)]);
        let p = request_params(3, 20 * MS, 1);
        let out = request_thread(
            &h,
            &spec(Role::Request),
            0,
            &p,
            LatencyBuffer::with_capacity(3),
        );
        assert_eq!(latencies_us(&out), vec![33_000, 18_000, 5_000]);
        // CPU time is what the requests needed, the stall is not in it.
        assert_eq!((out.report.cpu_s * 1e3).round(), 15.0);
    }

    #[test]
    fn requests_are_spread_over_threads() {
        let p = request_params(10, 0, 3);
        let n: Vec<u64> = (0..3).map(|t| p.requests_for(t)).collect();
        assert_eq!(n, vec![4, 3, 3]);
        // Thread 1 serves requests 1, 4, 7: due at 10, 40, 70 ms.
        let p = request_params(10, 10 * MS, 3);
        let h = FakeHost::new(US, &[]);
        let s = ThreadSpec {
            index: 1,
            ..spec(Role::Request)
        };
        let out = request_thread(&h, &s, 0, &p, LatencyBuffer::with_capacity(3));
        let due: Vec<f64> = out.units.iter().map(|u| u.due_s).collect();
        assert_eq!(due, vec![0.01, 0.04, 0.07]);
        let index: Vec<u64> = out.units.iter().map(|u| u.index).collect();
        assert_eq!(index, vec![0, 1, 2]);
    }

    #[test]
    fn an_unfinished_request_is_not_reported() {
        let h = FakeHost::new(US, &[]).stop_at(7 * MS);
        let p = request_params(3, 0, 1);
        let out = request_thread(
            &h,
            &spec(Role::Request),
            0,
            &p,
            LatencyBuffer::with_capacity(3),
        );
        assert_eq!(latencies_us(&out), vec![5_000]);
    }

    #[test]
    fn fast_thread_loses_the_steps_of_a_stall() {
        let p = FibParams {
            duration_ns: 10 * MS,
            fast_check_steps: 1_000,
            ..fib_params(SlowSchedule::Absolute)
        };
        let free = fast_thread(&FakeHost::new(US, &[]), &spec(Role::Fast), 0, &p);
        assert_eq!(free.report.steps, 10_000);
        let stalled = fast_thread(
            &FakeHost::new(US, &[(3 * MS, 8 * MS)]),
            &spec(Role::Fast),
            0,
            &p,
        );
        assert_eq!(stalled.report.steps, 5_000);
    }

    fn duty_params() -> DutyParams {
        DutyParams {
            on_ns: 10 * MS,
            off_ns: 10 * MS,
            duration_ns: 40 * MS,
            slice_ns: 5 * MS,
            check_steps: 1_000,
        }
    }

    #[test]
    fn duty_slices_show_a_stall_inside_an_on_period() {
        // On 0-10 and 20-30 ms; stalled 22-27 ms, inside the second on-period: its first
        // slice gets 2 ms of work (20-22), its second 3 ms (27-30).
        let p = duty_params();
        let h = FakeHost::new(US, &[(22 * MS, 27 * MS)]);
        let out = duty_thread(&h, &spec(Role::Duty), 0, &p, DutyTrace::for_params(&p));
        let d = out.duty.records(0, 0);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].slice_steps, vec![5_000, 5_000]);
        assert_eq!(d[1].slice_steps, vec![2_000, 3_000]);
        assert_eq!((d[1].start_s, d[1].steps), (0.02, 5_000));
        assert_eq!(out.report.units, 2);
        // The last off-period is slept too.
        assert_eq!(h.now_ns(), 40 * MS);
    }

    #[test]
    fn duty_stopped_inside_an_on_period_keeps_it() {
        let p = duty_params();
        let h = FakeHost::new(US, &[]).stop_at(23 * MS);
        let out = duty_thread(&h, &spec(Role::Duty), 0, &p, DutyTrace::for_params(&p));
        let d = out.duty.records(0, 0);
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].slice_steps, vec![3_000, 0]);
    }

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
    fn period_boundary_is_the_end_of_the_first_long_stall() {
        // Steps of 1 ns, checked every 256: the short stall is passed over, the long one
        // found within one chunk of its end.
        let h = FakeHost::new(1, &[(1_000, 1_100), (5_000, 9_000)]);
        let found = find_period_boundary(&h, 1_000, 100_000).unwrap();
        assert!((9_000..9_256).contains(&found), "{found}");
        let h = FakeHost::new(1, &[]);
        assert_eq!(find_period_boundary(&h, 1_000, 10_000), None);
    }

    #[test]
    fn duty_cycles_and_slices() {
        let p = DutyParams {
            on_ns: 1_000 * MS,
            off_ns: 9_000 * MS,
            duration_ns: 60_000 * MS,
            slice_ns: 100 * MS,
            check_steps: 1,
        };
        assert_eq!(p.cycles(), 6);
        assert_eq!(p.slices(), 10);
        let short = DutyParams {
            duration_ns: 1,
            on_ns: 250 * MS,
            ..p
        };
        assert_eq!(short.cycles(), 1);
        assert_eq!(short.slices(), 3);
    }

    #[test]
    fn schedule_reads_and_writes_its_name() {
        for s in [SlowSchedule::Absolute, SlowSchedule::Relative] {
            assert_eq!(s.to_string().parse::<SlowSchedule>(), Ok(s));
        }
        assert!("sometimes".parse::<SlowSchedule>().is_err());
    }
}
