//! Ctrl-C and friends: SIGINT, SIGTERM and SIGHUP only set a flag (all a handler may
//! safely do); the run loop sees it at its next tick, stops the workload, and the normal
//! teardown path removes cgroups and writes partial results. The handler is installed
//! without SA_RESTART so a sleeping sampler wakes at once.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static CHILD_EVENTS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
}

extern "C" fn on_child(_: libc::c_int) {
    CHILD_EVENTS.fetch_add(1, Ordering::SeqCst);
}

/// Install the handlers. Safe to call more than once.
///
/// SIGCHLD is counted too: a child's exit then interrupts the sampler's sleep, and the
/// run loop only asks the kernel about its workload (waitpid) after such an event,
/// instead of on every tick.
pub fn install() {
    let handlers: [(libc::c_int, extern "C" fn(libc::c_int)); 4] = [
        (libc::SIGINT, on_signal),
        (libc::SIGTERM, on_signal),
        (libc::SIGHUP, on_signal),
        (libc::SIGCHLD, on_child),
    ];
    for (sig, handler) in handlers {
        // SAFETY: the handlers only touch atomics, which is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = if sig == libc::SIGCHLD {
                libc::SA_NOCLDSTOP
            } else {
                0
            };
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// How many SIGCHLD have arrived so far: compare with an earlier value to see whether a
/// child may have exited since.
pub fn child_events() -> u32 {
    CHILD_EVENTS.load(Ordering::SeqCst)
}

/// Whether the SIGCHLD handler is installed (else callers must poll).
pub fn child_events_installed() -> bool {
    // SAFETY: reading the current disposition into a struct we own.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut sa);
        sa.sa_sigaction == on_child as *const () as usize
    }
}

/// The signal that asked us to stop, if any.
pub fn received() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Make this process the reaper of orphaned descendants, so processes a workload leaves
/// behind become our children and can be reaped (not left as zombies of init).
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Whether this process is a child subreaper (see `become_subreaper`).
pub fn is_subreaper() -> bool {
    let mut v: libc::c_int = 0;
    // SAFETY: prctl writes an int we own.
    unsafe {
        libc::prctl(
            libc::PR_GET_CHILD_SUBREAPER,
            &mut v as *mut libc::c_int,
            0,
            0,
            0,
        )
    };
    v != 0
}
