//! Stopping early: SIGINT and SIGTERM set a flag that every workload loop checks where it
//! checks its deadline, so a stopped run still reports everything it measured.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Install the SIGINT/SIGTERM handlers.
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
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
