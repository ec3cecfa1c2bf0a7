//! `[requires]`: what a scenario needs of the machine before `throttlebench check` can
//! tell anything from it. On a machine with less, `check` answers 125 ("cannot test",
//! `git bisect run`'s skip) and says why, instead of a verdict that means nothing: a test
//! of stranded per-CPU runtime on two CPUs, a selftest that itself skips below four, or a
//! check of timings in a software-emulated guest, whose timings are not real. `run`
//! ignores it (a run on too few CPUs is still a measurement).
//!
//! Std, serde and nix only, so it can move with the scenario module.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// The fewest CPUs this process may run on (its affinity mask) for the check to tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// The check judges timings (how often a job at its quota is throttled, latency
    /// tails), which software emulation does not reproduce: in a guest that
    /// `throttlebench vm` runs emulated (without --kvm) it cannot tell.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub real_timing: bool,
}

impl Requires {
    pub fn is_empty(&self) -> bool {
        self.cpus.is_none() && !self.real_timing
    }

    /// Why a machine where this process may use `cpus` CPUs, in the VM `vm` says (the
    /// `THROTTLEBENCH_VM` that `throttlebench vm` sets, run.json's `host.vm`), cannot
    /// answer, if it cannot.
    pub fn unmet(&self, cpus: usize, vm: Option<&str>) -> Option<String> {
        if let Some(need) = self.cpus {
            if (cpus as u64) < u64::from(need) {
                return Some(format!(
                    "this check needs at least {need} CPUs ([requires] cpus = {need}) and \
                     this process may use {cpus}: it cannot tell here (in a guest: \
                     throttlebench vm --cpus {need})"
                ));
            }
        }
        match vm {
            Some(vm) if self.real_timing && vm.contains("emulated") => Some(format!(
                "this check judges timings ([requires] real_timing = true) and runs in a \
                 guest under software emulation ({vm}), whose timings are not real: it \
                 cannot tell here (use real hardware or --kvm, or a check of cgroup \
                 accounting such as scenarios/cfs-slice-expiry.toml)"
            )),
            _ => None,
        }
    }

    /// The VM this process runs in, as `throttlebench vm` told it (THROTTLEBENCH_VM).
    pub fn this_vm() -> Option<String> {
        std::env::var("THROTTLEBENCH_VM")
            .ok()
            .filter(|v| !v.is_empty())
    }
}

/// How many CPUs this process may run on (its affinity mask; 1 if unreadable).
pub fn usable_cpus() -> usize {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_cpus_than_required_cannot_tell() {
        let r: Requires = toml::from_str("cpus = 8").unwrap();
        assert_eq!(r.cpus, Some(8));
        let why = r.unmet(2, None).unwrap();
        assert!(
            why.contains("at least 8 CPUs") && why.contains("may use 2"),
            "{why}"
        );
        assert!(why.contains("--cpus 8"));
        assert_eq!(r.unmet(8, None), None);
        assert_eq!(r.unmet(16, Some("virtme-ng, emulated (TCG)")), None);
        assert_eq!(Requires::default().unmet(1, None), None);
        assert!(Requires::default().is_empty());
        // A misspelt field is an error, not a requirement silently dropped.
        assert!(toml::from_str::<Requires>("cpu = 8").is_err());
    }

    #[test]
    fn timings_cannot_be_judged_under_emulation() {
        let r: Requires = toml::from_str("real_timing = true").unwrap();
        assert!(!r.is_empty());
        let why = r.unmet(2, Some("virtme-ng, emulated (TCG)")).unwrap();
        assert!(
            why.contains("software emulation") && why.contains("cfs-slice-expiry"),
            "{why}"
        );
        assert_eq!(r.unmet(2, Some("virtme-ng, KVM")), None);
        assert_eq!(r.unmet(2, None), None);
        // Without it, an emulated guest answers.
        let r: Requires = toml::from_str("cpus = 2").unwrap();
        assert_eq!(r.unmet(2, Some("virtme-ng, emulated (TCG)")), None);
    }

    #[test]
    fn usable_cpus_are_the_affinity_mask() {
        // The kernel's own account of the mask, in /proc/self/status.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim();
        let cpus: fibtest::cpulist::CpuList = list.parse().unwrap();
        assert_eq!(usable_cpus(), cpus.len(), "Cpus_allowed_list: {list}");
    }
}
