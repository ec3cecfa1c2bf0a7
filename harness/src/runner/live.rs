//! A run while it is live: its samplers, its groups' workloads and its limiter, from the
//! first sample to the collected output (steps 2 to 4 of `runner`).

use super::scope::{scope_pids, RunProcs};
use super::spawn::{spawn, tail, Running};
use super::Runner;
use crate::cgroup::{Cgroup, Version};
use crate::clock::{monotonic_ns, sleep_until};
use crate::limiter::{self, ActiveLimiter};
use crate::process::affinity::AffinityGuard;
use crate::process::leaks::{self, LeakReport, LeakedProcess};
use crate::process::{describe_status, teardown};
use crate::result::{GroupResult, Outcome, RunResult, WorkloadOutput};
use crate::sample::{Sampler, SamplerSources};
use crate::scenario::PlannedRun;
use crate::signals;
use anyhow::Result;
use fibtest::cpulist::CpuList;
use std::time::Duration;

pub(super) struct Live<'a> {
    runner: &'a Runner,
    run: &'a PlannedRun,
    /// The run's cgroup; None for a run measured from /proc.
    top: Option<&'a Cgroup>,
    /// One per group, in the plan's order, like `running`.
    samplers: Vec<Sampler>,
    running: Vec<Running>,
    limiter: Option<ActiveLimiter>,
    /// CLOCK_MONOTONIC of the first sample, in ns: sample times count from it.
    t0: u64,
    /// Processes an external limiter that died mid-run had left stopped (continued at
    /// once, reported at the end).
    left_stopped: Vec<LeakedProcess>,
    /// The sampler's thread runs away from the workloads' CPUs while the run is live.
    _pin: Option<AffinityGuard>,
}

impl<'a> Live<'a> {
    /// Open the samplers and take the first sample, start each group's workload in
    /// `groups[g]` (none without cgroups), then the limiter.
    pub(super) fn start(
        runner: &'a Runner,
        run: &'a PlannedRun,
        top: Option<&'a Cgroup>,
        groups: &[&'a Cgroup],
    ) -> Result<Live<'a>> {
        let interval_ns = run.sample_interval.as_micros() * 1000;
        let expected_samples =
            (run.expected_duration().as_nanos() as u64 / interval_ns.max(1)) as usize + 64;
        let mut samplers: Vec<Sampler> = (0..run.groups.len())
            .map(|g| {
                let cg = groups.get(g);
                let stat = cg.map(|c| c.cpu_stat_path());
                let usage = cg
                    .filter(|c| c.version == Version::V1)
                    .map(|c| c.usage_path());
                Sampler::open(
                    &SamplerSources {
                        cpu_stat: stat.as_deref(),
                        usage: usage.as_deref(),
                        proc_root: &runner.proc_root,
                    },
                    expected_samples,
                    run.sample_interval.0,
                )
            })
            .collect::<Result<_, _>>()?;
        let t0 = monotonic_ns();
        for s in samplers.iter_mut() {
            s.tick(0)?;
        }
        let mut running: Vec<Running> = Vec::new();
        for g in 0..run.groups.len() {
            running.push(spawn(
                &runner.workload,
                &runner.proc_root,
                groups.get(g).copied(),
                run,
                g,
            )?);
        }
        if top.is_none() {
            for (s, r) in samplers.iter_mut().zip(&running) {
                s.arm_process(&runner.proc_root, r.guard.pid())?;
            }
        }
        let limiter = ActiveLimiter::start(
            &run.limiter,
            &limiter::Target {
                cgroup: top,
                pid: running[0].guard.pid(),
                proc_root: &runner.proc_root,
            },
        )?;
        // The sampler runs away from the workloads' CPUs when there is a CPU to spare. It
        // is pinned only now: threads and processes started before inherit no pinning.
        let used = run
            .groups
            .iter()
            .map(|g| g.workload.cpus())
            .try_fold(CpuList::default(), |acc, c| c.map(|c| acc.union(&c)));
        let spare = used
            .map(|w| runner.allowed.difference(&w))
            .filter(|s| !s.is_empty());
        Ok(Live {
            runner,
            run,
            top,
            samplers,
            running,
            limiter,
            t0,
            left_stopped: Vec::new(),
            _pin: spare.as_ref().map(AffinityGuard::pin),
        })
    }

    /// The main processes not yet waited for: only they are roots of the run's process
    /// tree (a reaped one's pid may be reused by a process that is none of the run's).
    fn live_mains(&self) -> Vec<i32> {
        self.running
            .iter()
            .filter(|r| r.live())
            .map(|r| r.guard.pid())
            .collect()
    }

    /// What the run's processes look like now: which are stopped, which alive.
    fn survey(&self) -> LeakReport {
        leaks::check(
            &scope_pids(&self.runner.proc_root, self.top, &self.live_mains()),
            &self.runner.proc_root,
        )
    }

    /// Sample every tick until the run is over. None when the workloads ended (or were
    /// due to be stopped by the harness), else why the run was cut short.
    pub(super) fn sample_until_done(&mut self) -> Result<Option<Outcome>> {
        let interval_ns = self.run.sample_interval.as_micros() * 1000;
        let t0 = self.t0;
        let signals_installed = signals::child_events_installed();
        // Start from MAX so the first tick always looks (a fast workload may be gone already).
        let mut seen_child_events = u32::MAX;
        let limit = self.run.expected_duration() * 2 + Duration::from_secs(30);
        let limit_ns = limit.as_nanos() as u64;
        let mut next = t0;
        loop {
            next += interval_ns;
            let now = monotonic_ns();
            if next <= now {
                // Fell behind (a stall or a slow read): skip the missed ticks, keep the grid.
                next = now + interval_ns - (now - t0) % interval_ns;
            }
            sleep_until(next);
            let now = monotonic_ns();
            for s in self.samplers.iter_mut() {
                s.tick(now - t0)?;
            }
            // waitpid only after a SIGCHLD (or when no handler is installed).
            let events = signals::child_events();
            if !signals_installed || events != seen_child_events {
                seen_child_events = events;
                if self.limiter.as_mut().is_some_and(|a| a.poll()) {
                    // The external limiter died: nothing would continue what it stopped.
                    let orphaned = self.survey();
                    leaks::repair(&orphaned);
                    self.left_stopped.extend(orphaned.stopped);
                }
                for r in self.running.iter_mut().filter(|r| r.live()) {
                    if let Some(child) = r.guard.child.as_mut() {
                        r.status = child.try_wait()?;
                    }
                }
            }
            let live = self.running.iter().filter(|r| r.live()).count();
            if live == 0 {
                return Ok(None);
            }
            // Workloads that run until the harness stops them: done when all that still
            // run are due.
            let due = self
                .running
                .iter()
                .filter(|r| r.live() && r.stop_at_ns.is_some_and(|t| now - t0 >= t))
                .count();
            if due == live {
                return Ok(None);
            }
            if signals::received().is_some() {
                return Ok(Some(Outcome::Interrupted));
            }
            if now - t0 > limit_ns {
                return Ok(Some(Outcome::TimedOut {
                    limit_s: limit.as_secs_f64(),
                }));
            }
        }
    }

    /// Take the last sample, stop the limiter, record and repair what it left behind, end
    /// what still runs, and collect each group's output.
    pub(super) fn finish(mut self, outcome: Option<Outcome>) -> Result<RunResult> {
        let end = monotonic_ns();
        for s in self.samplers.iter_mut() {
            // One more read after the end: the counters are final now.
            s.tick(end - self.t0)?;
        }
        // The limiter goes first (it leaves the workload running). What it left stopped
        // is recorded before anything else touches the processes.
        let limiter_report = self.limiter.take().map(|a| a.stop()).unwrap_or_default();
        let mut leaks = self.survey();
        leaks.escaped.clear();
        leaks.stopped.append(&mut self.left_stopped);
        // Repair: continue what the limiter left stopped, so it can end.
        leaks::repair(&leaks);
        // Processes alive after every main process exited on its own outlived the
        // workload: reported as escaped (then ended like the rest).
        let workload_running = self.running.iter().any(Running::live);
        if !workload_running {
            leaks.escaped = self
                .survey()
                .escaped
                .into_iter()
                .filter(|p| !leaks.stopped.iter().any(|q| q.pid == p.pid))
                .collect();
        }
        // Then whatever still runs ends, in the order of "Practical resource limiting":
        // stop all, SIGTERM all, continue all (the workloads the harness stops at their
        // duration, all of them after an interrupt or a time-out, and what outlived them).
        let remaining =
            !scope_pids(&self.runner.proc_root, self.top, &self.live_mains()).is_empty();
        let teardown = (remaining || workload_running).then(|| {
            teardown::stop_term_cont(
                &mut RunProcs {
                    cgroup: self.top,
                    proc_root: &self.runner.proc_root,
                    mains: self
                        .running
                        .iter_mut()
                        .map(|r| (&mut r.guard, &mut r.status))
                        .collect(),
                },
                Duration::from_secs(2),
            )
        });
        // Descendants of the workload or the limiter that outlived them were orphaned to
        // this process (a child subreaper): reap them, and kill and report the live ones.
        if signals::is_subreaper() {
            leaks
                .escaped
                .extend(leaks::reap_orphans(&self.runner.proc_root));
        }
        let mut groups = Vec::new();
        let mut failure: Option<Outcome> = None;
        for ((r, s), g) in self
            .running
            .into_iter()
            .zip(self.samplers)
            .zip(&self.run.groups)
        {
            let stdout = r.out.join().unwrap_or_default();
            let stderr = r.err.join().unwrap_or_default();
            let harness_stopped = r.stop_at_ns.is_some();
            let ok = harness_stopped || r.status.map(|s| s.success()).unwrap_or(false);
            if !ok && failure.is_none() {
                failure = Some(Outcome::Failed {
                    status: format!("group {}: {}", g.name, describe_status(r.status)),
                    stderr_tail: tail(&String::from_utf8_lossy(&stderr), 20),
                });
            }
            groups.push(GroupResult {
                name: g.name.clone(),
                exit_status: describe_status(r.status),
                counters: s.counters(),
                samples: s.into_samples(),
                workload: WorkloadOutput::parse(&String::from_utf8_lossy(&stdout)),
            });
        }
        Ok(RunResult {
            planned: self.run.clone(),
            cgroup: self.top.map(|t| t.name()).unwrap_or_default(),
            without_cgroup: None,
            outcome: outcome.or(failure).unwrap_or(Outcome::Completed),
            wall_s: (end - self.t0) as f64 / 1e9,
            t0_monotonic_ns: self.t0,
            groups,
            limiter: limiter_report,
            leaks,
            teardown,
        })
    }
}
