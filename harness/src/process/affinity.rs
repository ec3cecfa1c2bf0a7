//! Pinning the calling thread to a set of CPUs for a while (the sampler runs away from the
//! workload's CPUs when one is spare), and restoring what it had.

use fibtest::cpulist::CpuList;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Pins the calling thread to some CPUs until dropped, then restores its old affinity.
pub struct AffinityGuard {
    old: Option<CpuSet>,
}

impl AffinityGuard {
    /// Pin to `cpus`; if the kernel refuses (a CPU not allowed), nothing changes.
    pub fn pin(cpus: &CpuList) -> AffinityGuard {
        let this = Pid::from_raw(0);
        let Ok(old) = sched_getaffinity(this) else {
            return AffinityGuard { old: None };
        };
        let mut set = CpuSet::new();
        for c in cpus.iter() {
            if set.set(c as usize).is_err() {
                return AffinityGuard { old: None };
            }
        }
        match sched_setaffinity(this, &set) {
            Ok(()) => AffinityGuard { old: Some(old) },
            Err(_) => AffinityGuard { old: None },
        }
    }
}

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        if let Some(old) = &self.old {
            let _ = sched_setaffinity(Pid::from_raw(0), old);
        }
    }
}
