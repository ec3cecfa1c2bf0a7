//! Clocks and sleeping: CLOCK_MONOTONIC for wall time (vDSO, no syscall), the thread's
//! CPU clock for request work, and an absolute-deadline sleep that wakes early when the
//! run is asked to stop.

use crate::stop;

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC, in ns.
#[inline]
pub fn mono_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// CPU time of the calling thread, in ns.
#[inline]
pub fn thread_cpu_ns() -> u64 {
    read(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time of the whole process, in ns.
pub fn process_cpu_ns() -> u64 {
    read(libc::CLOCK_PROCESS_CPUTIME_ID)
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
        let ts = libc::timespec {
            tv_sec: (target / 1_000_000_000) as libc::time_t,
            tv_nsec: (target % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: absolute sleep on a timespec we own; EINTR just loops.
        unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
    }
}
