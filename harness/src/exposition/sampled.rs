//! A sampler's samples into the exposition: each group's cumulative counters (ns, clock
//! ticks, µs) become `CpuCounters` in seconds and counts, stored through the group's
//! `GroupHandle` at every tick; the machine-wide values (steal, PSI) go to one row of
//! their own, `cgroup="/"`. Counters a group's cgroup does not report (`Has`) and PSI
//! on a kernel without it (`SystemHas`) stay absent.
//!
//! `update` allocates nothing and takes no lock (each handle's `update` is built for
//! that); `add` and `remove`, when a watched cgroup comes or goes, do.

use super::{CpuCounters, CpuLimits, Exposition, GroupHandle, GroupLabels};
use crate::sample::cpustat::Has;
use crate::sample::{Sample, SystemHas};

/// The exported side of a sampler's groups, in the sampler's order.
pub struct SampledGroups {
    exposition: Exposition,
    /// Seconds per /proc/stat clock tick.
    s_per_tick: f64,
    system: SystemHas,
    groups: Vec<(GroupHandle, Has)>,
    /// The machine's row: steal and PSI.
    host: GroupHandle,
}

impl SampledGroups {
    /// An exported set without groups yet, and the machine's row labelled `host`
    /// (cgroup `/`). `ticks_per_s`: USER_HZ, the unit of /proc/stat.
    pub fn new(
        exposition: &Exposition,
        host: GroupLabels,
        ticks_per_s: u64,
        system: SystemHas,
    ) -> SampledGroups {
        SampledGroups {
            exposition: exposition.clone(),
            s_per_tick: 1.0 / ticks_per_s.max(1) as f64,
            system,
            groups: Vec::new(),
            host: exposition.add_group(host, false),
        }
    }

    /// Export a group (at the end of the order), with its limits and which counters its
    /// cgroup reports.
    pub fn add(&mut self, labels: GroupLabels, has: Has, limits: &CpuLimits) {
        let mut h = self.exposition.add_group(labels, false);
        h.set_limits(limits);
        self.groups.push((h, has));
    }

    /// Stop exporting group `g`: its series go from the next scrape on.
    pub fn remove(&mut self, g: usize) {
        self.groups.remove(g);
    }

    /// Group `g`'s limits changed.
    pub fn set_limits(&mut self, g: usize, limits: &CpuLimits) {
        self.groups[g].0.set_limits(limits);
    }

    /// How many groups are exported.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether no group is exported.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Store one tick's samples (one per group, in order). Allocates nothing.
    pub fn update(&mut self, samples: &[Sample]) {
        for ((h, has), s) in self.groups.iter_mut().zip(samples) {
            h.update(s.t_ns as f64 / 1e9, &counters(s, *has));
        }
        if let Some(s) = samples.first() {
            let host = CpuCounters {
                steal_s: Some(s.steal_ticks as f64 * self.s_per_tick),
                pressure_waiting_s: self.system.psi.then(|| s.psi_some_us as f64 / 1e6),
                ..CpuCounters::default()
            };
            self.host.update(s.t_ns as f64 / 1e9, &host);
        }
    }
}

/// A group's sample as exported counters: bandwidth and burst counters only where its
/// cpu.stat has them, times in seconds.
pub fn counters(s: &Sample, has: Has) -> CpuCounters {
    let secs = |ns: u64| ns as f64 / 1e9;
    let bw = has.bandwidth;
    let burst = has.burst;
    CpuCounters {
        nr_periods: bw.then_some(s.nr_periods),
        nr_throttled: bw.then_some(s.nr_throttled),
        throttled_s: bw.then(|| secs(s.throttled_ns)),
        nr_bursts: burst.then_some(s.nr_bursts),
        burst_s: burst.then(|| secs(s.burst_ns)),
        usage_s: Some(secs(s.usage_ns)),
        pressure_waiting_s: None,
        steal_s: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::tests::allocations;

    fn labels(g: &str) -> GroupLabels {
        GroupLabels {
            cgroup: format!("/x/{g}"),
            group: g.into(),
            limiter: "cfs".into(),
            scenario: "watch".into(),
            host: "h".into(),
        }
    }

    fn line<'a>(text: &'a str, series: &str, group: &str) -> Option<&'a str> {
        text.lines().find(|l| {
            l.starts_with(&format!("{series}{{")) && l.contains(&format!("group=\"{group}\""))
        })
    }

    #[test]
    fn samples_become_seconds_absent_counters_stay_absent_and_the_host_row_has_steal() {
        let e = Exposition::new();
        let system = SystemHas {
            psi: true,
            psi_full: false,
        };
        let mut g = SampledGroups::new(&e, labels("host"), 100, system);
        g.add(labels("a"), Has::ALL, &CpuLimits::default());
        g.add(labels("v2-no-cpu"), Has::default(), &CpuLimits::default());
        let s = Sample {
            t_ns: 1_000_000_000,
            usage_ns: 1_500_000_000,
            nr_periods: 10,
            nr_throttled: 4,
            throttled_ns: 250_000_000,
            steal_ticks: 30,
            psi_some_us: 2_000_000,
            ..Sample::default()
        };
        let before = allocations();
        g.update(&[s, s]);
        assert_eq!(allocations() - before, 0, "update allocated");
        let text = e.encode_text();
        let v = |series: &str, group: &str| {
            line(&text, series, group).map(|l| l.rsplit(' ').next().unwrap().to_string())
        };
        assert_eq!(
            v("throttlebench_cpu_usage_seconds_total", "a").as_deref(),
            Some("1.5")
        );
        assert_eq!(
            v("throttlebench_cpu_cfs_throttled_seconds_total", "a").as_deref(),
            Some("0.25")
        );
        assert_eq!(
            v("throttlebench_cpu_cfs_periods_total", "v2-no-cpu"),
            None,
            "{text}"
        );
        assert_eq!(
            v("throttlebench_cpu_steal_seconds_total", "host").as_deref(),
            Some("0.3")
        );
        assert_eq!(
            v("throttlebench_cpu_pressure_waiting_seconds_total", "host").as_deref(),
            Some("2.0")
        );
        g.remove(0);
        assert_eq!(g.len(), 1);
        let text = e.encode_text();
        assert!(line(&text, "throttlebench_cpu_usage_seconds_total", "a").is_none());
    }
}
