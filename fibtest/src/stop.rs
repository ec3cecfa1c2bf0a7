//! Stopping early: SIGINT and SIGTERM set a flag that every workload loop checks where it
//! checks its deadline, so a stopped run still reports everything it measured.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Install the SIGINT/SIGTERM handlers.
pub fn install() {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        let _ = unsafe { sigaction(sig, &action) };
    }
}

#[inline]
pub fn requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Ask every loop to stop (as a signal would).
pub fn request() {
    STOP.store(true, Ordering::Relaxed);
}
