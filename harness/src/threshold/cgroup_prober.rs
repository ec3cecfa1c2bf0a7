//! Probes as real workloads: each is a fibtest duty run in one cgroup that lives for the
//! whole search, under the limit searched (so an emulated credit balance, or the kernel's
//! burst, carries over from probe to probe as on a real machine).

use super::search::{ProbeResult, ProbeSpec, Prober};
use crate::cgroup::Cgroup;
use crate::limiter::{ActiveLimiter, LimiterReport, Target};
use crate::result::Outcome;
use crate::runner::Runner;
use crate::sample::cpustat::CpuStat;
use crate::scenario::plan::{Placement, PlannedGroup, PlannedRun};
use crate::scenario::{Limiter, Span, Workload};

pub struct CgroupProber<'a> {
    pub runner: &'a Runner,
    pub cgroup: &'a Cgroup,
    pub limiter: Limiter,
    active: Option<ActiveLimiter>,
}

impl<'a> CgroupProber<'a> {
    pub fn new(runner: &'a Runner, cgroup: &'a Cgroup, limiter: Limiter) -> CgroupProber<'a> {
        CgroupProber {
            runner,
            cgroup,
            limiter,
            active: None,
        }
    }

    /// Stop the limiter's loop (credits) and report what it did.
    pub fn finish(&mut self) -> LimiterReport {
        self.active.take().map(|a| a.stop()).unwrap_or_default()
    }

    fn cpu_stat(&self) -> CpuStat {
        std::fs::read_to_string(self.cgroup.cpu_stat_path())
            .ok()
            .and_then(|t| CpuStat::parse(&t).ok())
            .unwrap_or_default()
    }
}

impl Prober for CgroupProber<'_> {
    fn probe(&mut self, spec: &ProbeSpec) -> anyhow::Result<ProbeResult> {
        let span = |d: std::time::Duration| Span::from_micros(d.as_micros() as u64);
        let run = PlannedRun {
            index: 0,
            config: 0,
            repeat: 0,
            params: Vec::new(),
            sample_interval: Span::from_millis(100),
            limiter: Limiter::None,
            groups: vec![PlannedGroup {
                name: "main".into(),
                parent: None,
                weight: None,
                limit: None,
                workload: Workload::Duty {
                    on: span(spec.on),
                    off: span(spec.off),
                    duration: span(spec.duration),
                    threads: 1,
                    cpus: None,
                    slice: span(spec.slice),
                },
            }],
            phase: None,
            load: None,
            changes: Vec::new(),
            placement: Placement::Cgroup,
        };
        let before = self.cpu_stat();
        let (outcome, periods) = self.runner.run_workload_in(self.cgroup, &run)?;
        let after = self.cpu_stat();
        if let Outcome::Failed {
            status,
            stderr_tail,
        } = &outcome
        {
            anyhow::bail!("a probe's workload {status}: {stderr_tail}");
        }
        Ok(ProbeResult {
            periods,
            nr_throttled: after.nr_throttled.saturating_sub(before.nr_throttled),
            throttled_s: after.throttled_ns.saturating_sub(before.throttled_ns) as f64 / 1e9,
            complete: outcome == Outcome::Completed,
        })
    }

    fn start_limit(&mut self) -> anyhow::Result<()> {
        match &self.limiter {
            Limiter::None => Ok(()),
            Limiter::Cfs(c) => Ok(self.cgroup.set_cfs(c)?),
            Limiter::Credits(_) => {
                self.active = ActiveLimiter::start(
                    &self.limiter,
                    &Target {
                        cgroup: Some(self.cgroup),
                        pid: 0,
                        proc_root: &self.runner.proc_root,
                    },
                )?;
                Ok(())
            }
            other => anyhow::bail!(
                "find-threshold searches under limiter kinds none, cfs and credits, not {}",
                other.name()
            ),
        }
    }
}
