//! Running the calling thread (the sampler's) under the lowest real-time priority for a
//! while, and restoring its policy after.
//!
//! A run may start more busy threads than there are CPUs (64 groups of duty cycles on 2
//! CPUs); under plain CFS the sampler then waits its turn behind them and misses ticks,
//! so the series gets holes exactly when it is most needed. Under SCHED_FIFO at priority
//! 1 it runs when its timer fires and sleeps again after a tick's reads (tens of µs), so
//! it takes no more CPU than before, only on time. SCHED_RESET_ON_FORK keeps anything
//! the thread starts out of it. Without the privilege (not root, or a cgroup v1 cpu
//! group with no real-time runtime) the call fails and nothing changes. Raw libc, with
//! SAFETY notes: nix has no binding for sched_setscheduler.

use nix::libc;

/// The calling thread's scheduling policy and priority before, restored on drop.
pub struct RealtimeGuard {
    old: Option<(libc::c_int, libc::sched_param)>,
    /// Not Send: it must be dropped on the thread it changed.
    _thread: std::marker::PhantomData<*const ()>,
}

impl RealtimeGuard {
    /// Move the calling thread to SCHED_FIFO at priority 1, if the kernel lets it.
    pub fn enter() -> RealtimeGuard {
        // SAFETY: pid 0 is the calling thread; `param` is a plain C struct, written
        // whole by sched_getparam before it is read.
        let old = unsafe {
            let policy = libc::sched_getscheduler(0);
            let mut param: libc::sched_param = std::mem::zeroed();
            if policy < 0 || libc::sched_getparam(0, &mut param) != 0 {
                return RealtimeGuard {
                    old: None,
                    _thread: std::marker::PhantomData,
                };
            }
            (policy, param)
        };
        let rt = libc::sched_param { sched_priority: 1 };
        // SAFETY: as above; `rt` is a valid sched_param for SCHED_FIFO (1..=99).
        let ok = unsafe {
            libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &rt) == 0
        };
        RealtimeGuard {
            old: ok.then_some(old),
            _thread: std::marker::PhantomData,
        }
    }

    /// Whether the thread runs under SCHED_FIFO now.
    pub fn active(&self) -> bool {
        self.old.is_some()
    }
}

impl Drop for RealtimeGuard {
    fn drop(&mut self) {
        if let Some((policy, param)) = &self.old {
            // SAFETY: pid 0 is the calling thread (the guard is not Send, so it is the
            // thread that made it); the values are those read before.
            unsafe {
                libc::sched_setscheduler(0, *policy, param);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_before_comes_back() {
        // SAFETY: pid 0 is this thread.
        let before = unsafe { libc::sched_getscheduler(0) };
        {
            let g = RealtimeGuard::enter();
            // SAFETY: as above.
            let now = unsafe { libc::sched_getscheduler(0) } & !libc::SCHED_RESET_ON_FORK;
            if g.active() {
                assert_eq!(now, libc::SCHED_FIFO);
            } else {
                assert_eq!(now, before);
            }
        }
        // SAFETY: as above.
        let after = unsafe { libc::sched_getscheduler(0) };
        assert_eq!(after, before);
    }
}
