//! CLOCK_MONOTONIC for the harness's own loops (sampler ticks, control loops), and an
//! absolute sleep that a signal interrupts, so a loop sees Ctrl-C or a child's exit at
//! once. The workload generator has its own clocks (`fibtest::clock`), which also stop
//! on a stop request.

use nix::sys::time::TimeSpec;
use nix::time::{clock_gettime, clock_nanosleep, ClockId, ClockNanosleepFlags};

fn read(clock: ClockId) -> u64 {
    // clock_gettime on these clocks cannot fail on Linux; 0 would only be a wrong reading.
    clock_gettime(clock)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// CLOCK_MONOTONIC now, in ns.
pub fn monotonic_ns() -> u64 {
    read(ClockId::CLOCK_MONOTONIC)
}

/// CPU time this thread has used, in ns.
pub fn thread_cpu_ns() -> u64 {
    read(ClockId::CLOCK_THREAD_CPUTIME_ID)
}

/// Sleep until CLOCK_MONOTONIC reaches `deadline_ns` (absolute). Returns early, with
/// `false`, when a signal interrupts the sleep, so the caller can look at its flags.
pub fn sleep_until(deadline_ns: u64) -> bool {
    let ts = TimeSpec::new(
        (deadline_ns / 1_000_000_000) as _,
        (deadline_ns % 1_000_000_000) as _,
    );
    clock_nanosleep(
        ClockId::CLOCK_MONOTONIC,
        ClockNanosleepFlags::TIMER_ABSTIME,
        &ts,
    )
    .is_ok()
}
