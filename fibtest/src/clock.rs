//! Clocks and sleeping: CLOCK_MONOTONIC for wall time (vDSO, no syscall), the thread's
//! CPU clock for request work, and an absolute-deadline sleep that wakes early when the
//! run is asked to stop.
//!
//! Workload threads reach all of these through the `Host` trait, so the same loops can run
//! against `FakeHost` in tests: a host in which time passes only when the thread sleeps or
//! runs steps, with stalls standing in for throttling. The real host (`System`) is a
//! zero-sized type whose methods inline into the loops.

use crate::fib::Fib;
use crate::stop;
use nix::sys::time::TimeSpec;
use nix::time::{clock_gettime, clock_nanosleep, ClockId, ClockNanosleepFlags};
use std::cell::Cell;

#[inline]
fn read(clock: ClockId) -> u64 {
    // clock_gettime on these clocks cannot fail on Linux; 0 would only be a wrong reading.
    clock_gettime(clock)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// CLOCK_MONOTONIC, in ns.
#[inline]
pub fn mono_ns() -> u64 {
    read(ClockId::CLOCK_MONOTONIC)
}

/// CPU time of the calling thread, in ns.
#[inline]
pub fn thread_cpu_ns() -> u64 {
    read(ClockId::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time of the whole process, in ns.
pub fn process_cpu_ns() -> u64 {
    read(ClockId::CLOCK_PROCESS_CPUTIME_ID)
}

/// Longest single sleep, so a stop request is seen within this time.
const MAX_NAP_NS: u64 = 100_000_000;

/// Sleep until CLOCK_MONOTONIC reaches `deadline_ns`. Returns false if the run was asked
/// to stop before then.
pub fn sleep_until(deadline_ns: u64) -> bool {
    loop {
        if stop::requested() {
            return false;
        }
        let now = mono_ns();
        if now >= deadline_ns {
            return true;
        }
        let target = deadline_ns.min(now + MAX_NAP_NS);
        let ts = TimeSpec::new((target / 1_000_000_000) as _, (target % 1_000_000_000) as _);
        // An absolute sleep; EINTR just loops.
        let _ = clock_nanosleep(
            ClockId::CLOCK_MONOTONIC,
            ClockNanosleepFlags::TIMER_ABSTIME,
            &ts,
        );
    }
}

/// What a workload thread needs from the machine: its clocks, sleeping, the stop flag,
/// and running Fibonacci steps (the one way a workload spends CPU time).
pub trait Host {
    /// Wall time (CLOCK_MONOTONIC), in ns.
    fn now_ns(&self) -> u64;
    /// CPU time of the calling thread, in ns.
    fn thread_cpu_ns(&self) -> u64;
    /// Sleep until wall time `deadline_ns`; false if the run was asked to stop first.
    fn sleep_until(&self, deadline_ns: u64) -> bool;
    /// Whether the run was asked to stop (SIGINT, SIGTERM).
    fn stop_requested(&self) -> bool;
    /// Advance `fib` by `n` steps.
    fn steps(&self, fib: &mut Fib, n: u64);
}

/// The real machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Host for System {
    #[inline]
    fn now_ns(&self) -> u64 {
        mono_ns()
    }
    #[inline]
    fn thread_cpu_ns(&self) -> u64 {
        thread_cpu_ns()
    }
    #[inline]
    fn sleep_until(&self, deadline_ns: u64) -> bool {
        sleep_until(deadline_ns)
    }
    #[inline]
    fn stop_requested(&self) -> bool {
        stop::requested()
    }
    #[inline]
    fn steps(&self, fib: &mut Fib, n: u64) {
        fib.steps(n);
    }
}

/// A host for tests, in which time passes only when the thread sleeps or runs steps.
///
/// Each step costs `ns_per_step` of CPU time. During a stall (`[from, to)` in wall ns) the
/// thread cannot run, as when its cgroup is throttled: wall time that reaches a stall
/// jumps to its end, and CPU time does not advance. A stop is requested once wall time
/// reaches `stop_at_ns`.
#[derive(Debug, Default)]
pub struct FakeHost {
    now: Cell<u64>,
    cpu: Cell<u64>,
    ns_per_step: u64,
    stalls: Vec<(u64, u64)>,
    stop_at_ns: Option<u64>,
}

impl FakeHost {
    /// Time starts at 0; each step costs `ns_per_step`; `stalls` are sorted `[from, to)`.
    pub fn new(ns_per_step: u64, stalls: &[(u64, u64)]) -> FakeHost {
        FakeHost {
            ns_per_step,
            stalls: stalls.to_vec(),
            ..FakeHost::default()
        }
    }
    /// Request a stop once wall time reaches `t_ns`.
    pub fn stop_at(mut self, t_ns: u64) -> FakeHost {
        self.stop_at_ns = Some(t_ns);
        self
    }
    /// The end of the stall `t` falls in, or `t`.
    fn runnable_at(&self, t: u64) -> u64 {
        self.stalls.iter().fold(
            t,
            |t, &(from, to)| if (from..to).contains(&t) { to } else { t },
        )
    }
    /// The start of the first stall after `t`.
    fn next_stall(&self, t: u64) -> u64 {
        self.stalls
            .iter()
            .map(|&(from, _)| from)
            .find(|&from| from > t)
            .unwrap_or(u64::MAX)
    }
}

impl Host for FakeHost {
    fn now_ns(&self) -> u64 {
        self.now.get()
    }
    fn thread_cpu_ns(&self) -> u64 {
        self.cpu.get()
    }
    fn sleep_until(&self, deadline_ns: u64) -> bool {
        if self.stop_requested() {
            return false;
        }
        if let Some(stop) = self.stop_at_ns.filter(|&s| s <= deadline_ns) {
            self.now.set(self.now.get().max(stop));
            return false;
        }
        let woke = self.runnable_at(self.now.get().max(deadline_ns));
        self.now.set(woke);
        true
    }
    fn stop_requested(&self) -> bool {
        self.stop_at_ns.is_some_and(|s| self.now.get() >= s)
    }
    fn steps(&self, fib: &mut Fib, n: u64) {
        fib.steps(n);
        let mut left = n * self.ns_per_step;
        self.cpu.set(self.cpu.get() + left);
        let mut now = self.runnable_at(self.now.get());
        while left > 0 {
            let run = left.min(self.next_stall(now) - now);
            now += run;
            left -= run;
            now = self.runnable_at(now);
        }
        self.now.set(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_host_stalls_wall_time_but_not_cpu_time() {
        let h = FakeHost::new(1_000, &[(5_000, 20_000)]);
        let mut f = Fib::default();
        h.steps(&mut f, 3); // 0 -> 3 µs
        assert_eq!((h.now_ns(), h.thread_cpu_ns()), (3_000, 3_000));
        h.steps(&mut f, 4); // 3 -> 5, stalled to 20, -> 22 µs
        assert_eq!((h.now_ns(), h.thread_cpu_ns()), (22_000, 7_000));
        assert!(h.sleep_until(10_000)); // already past: no sleep
        assert_eq!(h.now_ns(), 22_000);
        let h = FakeHost::new(1, &[(100, 200)]);
        assert!(h.sleep_until(150)); // wakes inside a stall: runs at its end
        assert_eq!(h.now_ns(), 200);
    }

    #[test]
    fn fake_host_stops_at_its_stop_time() {
        let h = FakeHost::new(1, &[]).stop_at(50);
        assert!(h.sleep_until(40));
        assert!(!h.stop_requested());
        assert!(!h.sleep_until(60));
        assert_eq!(h.now_ns(), 50);
        assert!(h.stop_requested());
    }
}
