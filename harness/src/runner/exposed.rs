//! `--serve` for a run: a sink that hands every tick to the sink it wraps (the result
//! folder's writer) and then stores it in the exposition, and every unit a workload
//! reports into its group's latency histogram.
//!
//! The tick side allocates nothing and takes no lock (`SampledGroups::update`). The
//! latency side runs on the thread that reads the workloads' output; each group gets a
//! latency histogram of its own there (a second exposed entry with the same labels), so
//! every set of atomics keeps its single writer.

use super::sink::{OutputSink, RequestSink, RunSink, Stream};
use crate::cgroup::CfsLimit;
use crate::exposition::sampled::SampledGroups;
use crate::exposition::{CpuLimits, Exposition, GroupHandle, GroupLabels};
use crate::sample::cpustat::Has;
use crate::sample::{Sample, SystemHas};
use crate::scenario::{Limiter, PlannedRun};
use fibtest::record::{DutyPeriod, UnitLatency};
use std::io;
use std::path::Path;

/// A run's sink that also exports what it sees.
pub struct Exposed<'a> {
    inner: &'a mut dyn RunSink,
    exposition: Exposition,
    /// One per group, in the plan's order; `cgroup` set when the runner names them.
    labels: Vec<GroupLabels>,
    host: GroupLabels,
    /// Each group's CFS limits: its own (`limit = { ... }`) or the run's limiter's.
    limits: Vec<CpuLimits>,
    ticks_per_s: u64,
    groups: Option<SampledGroups>,
}

/// The limits a run's limiter sets on its cgroup, in seconds: a CFS quota's; none for
/// the others (a duty cycle or a weight is no CFS limit).
pub fn limits_of(limiter: &Limiter) -> CpuLimits {
    // A runtime's container has the CFS limits the runtime wrote.
    match limiter.cfs() {
        Some(c) => cfs_limits(c),
        None => CpuLimits::default(),
    }
}

fn cfs_limits(c: &CfsLimit) -> CpuLimits {
    CpuLimits {
        quota_s: c.quota_us.map(|q| q as f64 / 1e6),
        period_s: Some(c.period_us as f64 / 1e6),
        burst_s: Some(c.burst_us as f64 / 1e6),
    }
}

/// Group `g`'s CFS limits: its own quota when it has one, else the run's limiter's.
fn group_limits(run: &PlannedRun, g: usize) -> CpuLimits {
    match run.groups[g].limit.as_ref().and_then(|l| l.cfs.as_ref()) {
        Some(c) => cfs_limits(c),
        None => limits_of(&run.limiter),
    }
}

/// The `cgroup` label of a cgroup folder: its path from the `throttlebench` parent on
/// (`/throttlebench/run-1-2-0/site1`), as /proc/<pid>/cgroup would show it.
fn cgroup_label(dir: &Path) -> String {
    let parts: Vec<String> = dir
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    match parts.iter().rposition(|p| p == crate::cgroup::PARENT) {
        Some(i) => format!("/{}", parts[i..].join("/")),
        None => dir.display().to_string(),
    }
}

impl<'a> Exposed<'a> {
    /// Wrap `inner` for planned run `run` of scenario `scenario` on host `host`;
    /// `ticks_per_s` is USER_HZ (the unit of /proc/stat).
    pub fn new(
        inner: &'a mut dyn RunSink,
        exposition: &Exposition,
        run: &PlannedRun,
        scenario: &str,
        host: &str,
        ticks_per_s: u64,
    ) -> Exposed<'a> {
        let label = |group: &str, cgroup: &str| GroupLabels {
            cgroup: cgroup.to_string(),
            group: group.to_string(),
            limiter: run.limiter.name().to_string(),
            scenario: scenario.to_string(),
            host: host.to_string(),
        };
        Exposed {
            inner,
            exposition: exposition.clone(),
            labels: run.groups.iter().map(|g| label(&g.name, "")).collect(),
            host: label("host", "/"),
            limits: (0..run.groups.len())
                .map(|g| group_limits(run, g))
                .collect(),
            ticks_per_s,
            groups: None,
        }
    }
}

impl RunSink for Exposed<'_> {
    fn cgroups(&mut self, dirs: &[&Path]) {
        for (l, d) in self.labels.iter_mut().zip(dirs) {
            l.cgroup = cgroup_label(d);
        }
        self.inner.cgroups(dirs);
    }

    fn begin(&mut self, counters: &[Has], system: SystemHas) -> io::Result<()> {
        self.inner.begin(counters, system)?;
        let mut g = SampledGroups::new(
            &self.exposition,
            self.host.clone(),
            self.ticks_per_s,
            system,
        );
        for ((l, has), limits) in self.labels.iter().zip(counters).zip(&self.limits) {
            g.add(l.clone(), *has, limits);
        }
        self.groups = Some(g);
        Ok(())
    }

    fn tick(&mut self, samples: &[Sample]) -> io::Result<()> {
        self.inner.tick(samples)?;
        if let Some(g) = self.groups.as_mut() {
            g.update(samples);
        }
        Ok(())
    }

    fn requests(&mut self) -> io::Result<Box<dyn RequestSink>> {
        self.inner.requests()
    }

    /// A quota set (at the start, or by a `[[change]]`): on to the wrapped sink, and into
    /// the group's quota gauge (CPUs times its period).
    fn limit(&mut self, group: usize, cpus: Option<f64>) -> io::Result<()> {
        self.inner.limit(group, cpus)?;
        if let Some(l) = self.limits.get_mut(group) {
            // The kernel's quota is whole µs: 0.2 CPUs of 0.1 s is 0.02 s, not 0.2 * 0.1.
            let quota_s = cpus
                .zip(l.period_s)
                .map(|(c, p)| (c * p * 1e6).round() / 1e6);
            if l.quota_s != quota_s && l.period_s.is_some() {
                l.quota_s = quota_s;
                if let Some(g) = self.groups.as_mut() {
                    g.set_limits(group, l);
                }
            }
        }
        Ok(())
    }

    fn output(&mut self) -> io::Result<Box<dyn OutputSink>> {
        Ok(Box::new(LatencyExport {
            inner: self.inner.output()?,
            exposition: self.exposition.clone(),
            labels: self.labels.clone(),
            handles: (0..self.labels.len()).map(|_| None).collect(),
        }))
    }
}

/// The output side: units into latency histograms, then on to the wrapped sink.
struct LatencyExport {
    inner: Box<dyn OutputSink>,
    exposition: Exposition,
    labels: Vec<GroupLabels>,
    /// A group's latency histogram, made when its first unit comes.
    handles: Vec<Option<GroupHandle>>,
}

impl OutputSink for LatencyExport {
    fn unit(&mut self, group: usize, unit: &UnitLatency) -> io::Result<()> {
        if let Some(slot) = self.handles.get_mut(group) {
            let h = slot
                .get_or_insert_with(|| self.exposition.add_group(self.labels[group].clone(), true));
            h.observe_latency(unit.latency_s);
        }
        self.inner.unit(group, unit)
    }

    fn duty(&mut self, group: usize, period: &DutyPeriod) -> io::Result<()> {
        self.inner.duty(group, period)
    }

    fn text(&mut self, group: usize, stream: Stream, line: &[u8]) -> io::Result<()> {
        self.inner.text(group, stream, line)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup_is_labelled_from_the_tools_parent_on() {
        assert_eq!(
            cgroup_label(Path::new(
                "/sys/fs/cgroup/cpu/throttlebench/run-1-2-0/site1"
            )),
            "/throttlebench/run-1-2-0/site1"
        );
        assert_eq!(cgroup_label(Path::new("/x/y")), "/x/y");
    }

    fn quota_lines(e: &Exposition) -> Vec<String> {
        e.encode_text()
            .lines()
            .filter(|l| l.starts_with("throttlebench_spec_cpu_quota_seconds{"))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_quota_set_at_the_start_or_by_a_change_reaches_the_writer_and_the_gauge() {
        struct Limits(Vec<(usize, Option<f64>)>);
        impl RunSink for Limits {
            fn begin(&mut self, _: &[Has], _: SystemHas) -> io::Result<()> {
                Ok(())
            }
            fn tick(&mut self, _: &[Sample]) -> io::Result<()> {
                Ok(())
            }
            fn output(&mut self) -> io::Result<Box<dyn OutputSink>> {
                Ok(Box::new(super::super::sink::Discard))
            }
            fn requests(&mut self) -> io::Result<Box<dyn RequestSink>> {
                Ok(Box::new(super::super::sink::Discard))
            }
            fn limit(&mut self, group: usize, cpus: Option<f64>) -> io::Result<()> {
                self.0.push((group, cpus));
                Ok(())
            }
        }
        let text = "name = \"t\"\n[limiter]\nkind = \"cfs\"\nquota = \"20ms\"\n\
                    [workload]\nkind = \"duty\"\non = \"1s\"\noff = \"0s\"\nduration = \"1s\"\n";
        let sc = crate::scenario::parse(text, "t.toml").unwrap();
        let run = crate::scenario::resolve(&sc, "t.toml", &"0-1".parse().unwrap())
            .unwrap()
            .runs
            .remove(0);
        let (exposition, mut inner) = (Exposition::new(), Limits(Vec::new()));
        let mut sink = Exposed::new(&mut inner, &exposition, &run, "t", "h", 100);
        let has = Has {
            bandwidth: true,
            burst: false,
        };
        sink.begin(&[has], SystemHas::default()).unwrap();
        assert_eq!(quota_lines(&exposition), ["0.02"]);
        // What the runner tells the sink before the first tick, then a change to 0.5 CPUs
        // and one to none: whole µs of the 100 ms period, and absent without a quota.
        sink.limit(0, Some(0.2)).unwrap();
        assert_eq!(quota_lines(&exposition), ["0.02"]);
        sink.limit(0, Some(0.5)).unwrap();
        assert_eq!(quota_lines(&exposition), ["0.05"]);
        sink.limit(0, None).unwrap();
        assert!(quota_lines(&exposition).is_empty());
        assert_eq!(inner.0, [(0, Some(0.2)), (0, Some(0.5)), (0, None)]);
    }
}
