//! Ctrl-C and friends: SIGINT, SIGTERM and SIGHUP only set a flag (all a handler may
//! safely do); the run loop sees it at its next tick, stops the workload, and the normal
//! teardown path removes cgroups and writes partial results. The handler is installed
//! without SA_RESTART so a sleeping sampler wakes at once.

use nix::sys::prctl;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static CHILD_EVENTS: AtomicU32 = AtomicU32::new(0);
static CHILD_HANDLER: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: nix::libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
}

extern "C" fn on_child(_: nix::libc::c_int) {
    CHILD_EVENTS.fetch_add(1, Ordering::SeqCst);
}

/// Install the handlers. Safe to call more than once.
///
/// SIGCHLD is counted too: a child's exit then interrupts the sampler's sleep, and the
/// run loop only asks the kernel about its workload (waitpid) after such an event,
/// instead of on every tick.
pub fn install() {
    let handlers: [(Signal, extern "C" fn(nix::libc::c_int)); 4] = [
        (Signal::SIGINT, on_signal),
        (Signal::SIGTERM, on_signal),
        (Signal::SIGHUP, on_signal),
        (Signal::SIGCHLD, on_child),
    ];
    for (sig, handler) in handlers {
        // Without SA_RESTART, so a sleeping sampler wakes at once; children that stop
        // (a duty-cycle limiter at work) are no child events.
        let flags = if sig == Signal::SIGCHLD {
            SaFlags::SA_NOCLDSTOP
        } else {
            SaFlags::empty()
        };
        let action = SigAction::new(SigHandler::Handler(handler), flags, SigSet::empty());
        // SAFETY: the handlers only touch atomics, which is async-signal-safe.
        if unsafe { sigaction(sig, &action) }.is_ok() && sig == Signal::SIGCHLD {
            CHILD_HANDLER.store(true, Ordering::SeqCst);
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
    CHILD_HANDLER.load(Ordering::SeqCst)
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
    let _ = prctl::set_child_subreaper(true);
}

/// Whether this process is a child subreaper (see `become_subreaper`).
pub fn is_subreaper() -> bool {
    prctl::get_child_subreaper().unwrap_or(false)
}
