//! A run while it is live: its sampler, its groups' workloads, the thread reading their
//! output and its limiter, from the first sample to the collected output (steps 2 to 4
//! of `runner`). Every tick's samples go to the sink as they are taken.

use super::load::{pick_port, LiveLoad};
use super::output::OutputReader;
use super::scope::{scope_pids, RunProcs};
use super::sink::RunSink;
use super::spawn::{spawn, Running};
use super::Runner;
use crate::cgroup::{Cgroup, Version};
use crate::clock::{monotonic_ns, sleep_until};
use crate::limiter::{self, ActiveLimiter, LimiterEnd};
use crate::process::affinity::AffinityGuard;
use crate::process::exits::ExitWatch;
use crate::process::leaks::{self, LeakReport, LeakedProcess};
use crate::process::priority::RealtimeGuard;
use crate::process::{describe_status, teardown};
use crate::result::{AppliedChange, GroupResult, Outcome, RunResult, TickStats};
use crate::sample::{GroupSources, Sampler};
use crate::scenario::{PlannedRun, Workload};
use crate::signals;
use anyhow::Result;
use fibtest::cpulist::CpuList;
use std::time::Duration;

pub(super) struct Live<'a> {
    runner: &'a Runner,
    run: &'a PlannedRun,
    sink: &'a mut dyn RunSink,
    /// The run's cgroup; None for a run measured from /proc.
    top: Option<&'a Cgroup>,
    /// Reads every group's sources at once.
    sampler: Sampler,
    /// One per group, in the plan's order.
    running: Vec<Running>,
    output: Option<OutputReader>,
    ticks: TickStats,
    /// Sum of the ticks' busy times, in ns.
    busy_ns: u64,
    limiter: Option<ActiveLimiter>,
    /// CLOCK_MONOTONIC of the first sample, in ns: sample times count from it.
    t0: u64,
    /// The sampler's grid point at or before the end of the start-up: ticks go on from
    /// there.
    grid_from: u64,
    /// Processes an external limiter that died mid-run had left stopped (continued at
    /// once, reported at the end).
    left_stopped: Vec<LeakedProcess>,
    /// The run's `[load]`, when it has one.
    load: Option<LiveLoad>,
    /// Each group's cgroup (none for a run measured from /proc).
    cgroups: Vec<&'a Cgroup>,
    /// The `[[change]]`s made so far.
    changes: Vec<AppliedChange>,
    /// Quotas set by the limiter so far (credits, window), to see the next.
    limiter_quotas: u64,
    /// The sampler's thread runs away from the workloads' CPUs while the run is live.
    _pin: Option<AffinityGuard>,
    /// How the workloads' processes die (None when they cannot be watched).
    exits: Option<ExitWatch>,
    /// The sampler's thread runs under SCHED_FIFO while the run is live, when allowed,
    /// so busy workloads cannot make it miss ticks.
    _rt: RealtimeGuard,
}

impl<'a> Live<'a> {
    /// Open the sampler, start each group's workload in `groups[g]` (none without
    /// cgroups) and the thread that reads their output, then the limiter. With cgroups
    /// the first sample is taken before any workload starts: the counters of cgroups made
    /// a moment ago are all zero, so nothing a workload does is missed however long the
    /// start-up of many groups takes (on a loaded machine a workload started first may be
    /// done before the last one starts). Without cgroups the sampler reads the processes
    /// themselves, so the first sample comes after they started.
    pub(super) fn start(
        runner: &'a Runner,
        run: &'a PlannedRun,
        sink: &'a mut dyn RunSink,
        top: Option<&'a Cgroup>,
        groups: &[&'a Cgroup],
    ) -> Result<Live<'a>> {
        let paths: Vec<(Option<std::path::PathBuf>, Option<std::path::PathBuf>)> =
            (0..run.groups.len())
                .map(|g| {
                    let cg = groups.get(g);
                    (
                        cg.map(|c| c.cpu_stat_path()),
                        cg.filter(|c| c.version == Version::V1)
                            .map(|c| c.usage_path()),
                    )
                })
                .collect();
        let sources: Vec<GroupSources> = paths
            .iter()
            .map(|(stat, usage)| GroupSources {
                cpu_stat: stat.as_deref(),
                usage: usage.as_deref(),
            })
            .collect();
        let mut sampler = Sampler::open(&sources, &runner.proc_root, run.sample_interval.0)?;
        sink.cgroups(&groups.iter().map(|c| c.cpu_dir()).collect::<Vec<_>>());
        let counters: Vec<_> = (0..run.groups.len()).map(|g| sampler.counters(g)).collect();
        sink.begin(&counters, sampler.system_has())?;
        // Watching from before the first fork, so no process of the workloads is missed.
        let exits = ExitWatch::start();
        let early_t0 = match top {
            Some(_) => Some(first_sample(run, sink, &mut sampler)?),
            None => None,
        };
        let mut running: Vec<Running> = Vec::new();
        let mut pipes = Vec::new();
        let port = pick_port(run)?;
        let loaded = run.load.as_ref().map(|l| l.group);
        for g in 0..run.groups.len() {
            if run.groups[g].workload == Workload::None {
                // A group that only holds others: sampled, nothing started.
                running.push(Running::nothing());
                pipes.push(None);
                continue;
            }
            let (mut r, p) = spawn(
                &runner.workload,
                &runner.proc_root,
                groups.get(g).copied(),
                run,
                g,
                port.filter(|_| loaded == Some(g)),
            )?;
            // A duration the harness enforces counts from the workload's own start.
            if let Some(t0) = early_t0 {
                r.stop_at_ns = r.stop_at_ns.map(|d| d + (monotonic_ns() - t0));
            }
            running.push(r);
            pipes.push(Some(p));
        }
        let output = OutputReader::start(pipes, sink.output()?)?;
        if top.is_none() {
            for (g, r) in running.iter().enumerate() {
                sampler.arm_process(g, &runner.proc_root, r.guard.pid())?;
            }
        }
        let first = run.first_workload();
        let limiter = ActiveLimiter::start(
            &run.limiter,
            &limiter::Target {
                cgroup: top,
                pid: running[first].guard.pid(),
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
        let t0 = match early_t0 {
            Some(t0) => t0,
            None => first_sample(run, sink, &mut sampler)?,
        };
        // The sampler's grid goes on from the end of the start-up: the first row after
        // it covers the start-up, which is not a missed tick.
        let interval_ns = run.sample_interval.as_micros() * 1000;
        let grid_from = t0 + (monotonic_ns() - t0) / interval_ns.max(1) * interval_ns;
        // The load starts once the run is sampled, from outside its cgroups; it waits for
        // the service's port itself.
        let load = match &run.load {
            Some(l) => Some(LiveLoad::start(
                super::load::spec(l, run, port, spare.as_ref())?,
                l.group,
                &run.groups[l.group].name,
                port,
                sink.requests()?,
            )?),
            None => None,
        };
        Ok(Live {
            runner,
            run,
            sink,
            top,
            sampler,
            running,
            output: Some(output),
            ticks: TickStats {
                interval_s: run.sample_interval.as_secs_f64(),
                ticks: 1,
                ..TickStats::default()
            },
            busy_ns: 0,
            limiter,
            t0,
            grid_from,
            left_stopped: Vec::new(),
            load,
            cgroups: groups.to_vec(),
            changes: Vec::new(),
            limiter_quotas: 0,
            _pin: spare.as_ref().map(AffinityGuard::pin),
            _rt: RealtimeGuard::enter(),
            exits,
        })
    }

    /// One tick: read every source and hand the samples to the sink; its busy time is
    /// counted.
    fn tick(&mut self, now: u64) -> Result<()> {
        let samples = self.sampler.tick(now - self.t0)?;
        self.sink.tick(samples)?;
        let busy = monotonic_ns().saturating_sub(now);
        self.ticks.ticks += 1;
        self.busy_ns += busy;
        self.ticks.busy_max_s = self.ticks.busy_max_s.max(busy as f64 / 1e9);
        Ok(())
    }

    /// Make the `[[change]]`s that have fallen due by `now` (CLOCK_MONOTONIC ns): write
    /// their settings, record when, and tell the sink a group's new quota.
    fn make_changes(&mut self, now: u64) -> Result<()> {
        while let Some(c) = self.run.changes.get(self.changes.len()) {
            let at_ns = c.at.as_micros() * 1000;
            if now.saturating_sub(self.t0) < at_ns {
                break;
            }
            let (cg, sampled) = match c.group {
                Some(g) => (self.cgroups.get(g).copied(), Some(g)),
                None => (self.top, (!self.run.has_child_cgroups()).then_some(0)),
            };
            let error = match cg {
                Some(cg) => limiter::apply_group_limit(cg, &c.limit)
                    .err()
                    .map(|e| e.to_string()),
                None => Some("the run has no cgroup to change".into()),
            };
            if let (None, Some(g), Some(cfs)) = (&error, sampled, &c.limit.cfs) {
                let cpus = cfs.quota_us.map(|q| q as f64 / cfs.period_us as f64);
                self.sink.limit(g, cpus)?;
            }
            self.changes.push(AppliedChange {
                at_s: c.at.as_secs_f64(),
                applied_s: (monotonic_ns() - self.t0) as f64 / 1e9,
                group: c
                    .group
                    .map(|g| self.run.groups[g].name.clone())
                    .unwrap_or_default(),
                limit: c.limit.clone(),
                error,
            });
        }
        Ok(())
    }

    /// A quota the limiter set on the run's cgroup as it runs (credits, window), as the
    /// time series' `limit_cpus` of its one group (with groups of their own, the run's
    /// cgroup is none of theirs).
    fn limiter_quota(&mut self) -> Result<()> {
        let set = self
            .limiter
            .as_ref()
            .and_then(|a| a.quota_since(self.limiter_quotas));
        if let Some((n, cpus)) = set {
            self.limiter_quotas = n;
            if !self.run.has_child_cgroups() {
                self.sink.limit(0, cpus)?;
            }
        }
        Ok(())
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
        // The workload starts and exits under its limit too: below a tenth of a CPU that
        // takes longer (an emulated guest took over 30 s to start and stop a 1 s job at
        // 1 ms per 100 ms), so the grace grows with it, up to ten times.
        let cap = self.run.limiter.cap_cpus().unwrap_or(1.0).max(1e-3);
        let grace = Duration::from_secs(30).mul_f64((0.1 / cap).clamp(1.0, 10.0));
        let limit = self.run.expected_duration() * 2 + grace;
        let limit_ns = limit.as_nanos() as u64;
        let mut next = self.grid_from;
        loop {
            next += interval_ns;
            let now = monotonic_ns();
            if next <= now {
                // Fell behind (a stall or a slow read): skip the missed ticks, keep the
                // grid, and count them.
                let skip_to = now + interval_ns - (now - t0) % interval_ns;
                self.ticks.missed += (skip_to - next) / interval_ns;
                next = skip_to;
            }
            sleep_until(next);
            let now = monotonic_ns();
            if now.saturating_sub(next) > interval_ns / 2 {
                self.ticks.late += 1;
            }
            self.tick(now)?;
            self.make_changes(now)?;
            self.limiter_quota()?;
            // waitpid only after a SIGCHLD (or when no handler is installed).
            let events = signals::child_events();
            if !signals_installed || events != seen_child_events {
                seen_child_events = events;
                if self.limiter.as_mut().is_some_and(|a| a.poll()) {
                    if let Some(status) = self.limiter.as_ref().and_then(|a| a.failed_at_start()) {
                        return Ok(Some(Outcome::LimiterFailed {
                            status,
                            stderr_tail: String::new(),
                        }));
                    }
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
            // A load outlives a service that died: its requests from then on fail
            // (refused), and are counted.
            if live == 0 && self.load.as_ref().is_none_or(LiveLoad::done) {
                return Ok(None);
            }
            // A run with a load ends when the load is done: what still runs (the
            // service) is stopped by the harness, as planned.
            if self.load.as_ref().is_some_and(LiveLoad::done) {
                let at = now - t0;
                for r in self.running.iter_mut().filter(|r| r.live()) {
                    r.stop_at_ns.get_or_insert(at);
                }
                return Ok(None);
            }
            // Workloads that run until the harness stops them: done when all that still
            // run are due.
            let due = self
                .running
                .iter()
                .filter(|r| r.live() && r.stop_at_ns.is_some_and(|t| now - t0 >= t))
                .count();
            if due == live && live > 0 {
                return Ok(None);
            }
            if signals::received().is_some() {
                if let Some(l) = self.load.as_mut() {
                    l.cut("interrupted");
                }
                return Ok(Some(Outcome::Interrupted));
            }
            // A limiter that ends the run on a finding (a process left stopped).
            if self.limiter.as_ref().and_then(ActiveLimiter::ended) == Some(LimiterEnd::Stuck) {
                return Ok(Some(Outcome::Stuck));
            }
            if now - t0 > limit_ns {
                if let Some(l) = self.load.as_mut() {
                    l.cut("the run timed out");
                }
                return Ok(Some(Outcome::TimedOut {
                    limit_s: limit.as_secs_f64(),
                }));
            }
        }
    }

    /// Take the last sample, stop the limiter, record and repair what it left behind, end
    /// what still runs, and collect each group's output.
    pub(super) fn finish(mut self, outcome: Option<Outcome>) -> Result<RunResult> {
        // The load first: it ends (cut short if the run was), before anything is stopped.
        let load = self.load.take().map(|l| l.finish(self.t0));
        let end = monotonic_ns();
        // One more read after the end: the counters are final now.
        self.tick(end)?;
        self.ticks.busy_mean_s = self.busy_ns as f64 / 1e9 / self.ticks.ticks.max(1) as f64;
        // The limiter goes first (it leaves the workload running, or finishes ending it).
        // What it left stopped is recorded before anything else touches the processes.
        let limiter_end = self.limiter.as_ref().and_then(ActiveLimiter::ended);
        let limiter_sessions: Vec<i32> = self
            .limiter
            .as_ref()
            .and_then(|a| a.session())
            .into_iter()
            .collect();
        let limiter_report = self.limiter.take().map(|a| a.stop()).unwrap_or_default();
        // A limiter that failed at once: what it said is why.
        let outcome = match outcome {
            Some(Outcome::LimiterFailed { status, .. }) => Some(Outcome::LimiterFailed {
                status,
                stderr_tail: limiter_report
                    .command
                    .as_ref()
                    .map(|c| c.stderr_tail.clone())
                    .unwrap_or_default(),
            }),
            o => o,
        };
        // A service that never opened its port failed to start, whatever its exit.
        let outcome = match (&load, outcome) {
            (Some((_, Some(never))), None) => Some(Outcome::Failed {
                status: never.clone(),
                stderr_tail: String::new(),
            }),
            (_, o) => o,
        };
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
            leaks.escaped.extend(leaks::reap_orphans(
                &self.runner.proc_root,
                &limiter_sessions,
            ));
        }
        // Every process is gone now: the cgroup's count is final, every exit is known.
        let cgroup_cpu_s = self
            .top
            .and_then(|t| limiter::usage::UsageFile::open(t).ok())
            .and_then(|mut u| limiter::duty::CpuUsage::usage_ns(&mut u).ok())
            .map(|ns| ns as f64 / 1e9);
        let mains: Vec<i32> = self.running.iter().map(|r| r.guard.pid()).collect();
        let deaths = self.exits.take().map(|w| w.finish(&mains));
        // The pipes are closed and the reader ends.
        let (outputs, written) = self.output.take().expect("joined once").join();
        written?;
        let mut groups = Vec::new();
        let mut failure: Option<Outcome> = None;
        let load_group = self.run.load.as_ref().map(|l| l.group);
        for (g, (r, out)) in self.running.iter().zip(outputs).enumerate() {
            let plan = &self.run.groups[g];
            let harness_stopped = r.stop_at_ns.is_some();
            let ok = harness_stopped || r.status.map(|s| s.success()).unwrap_or(false);
            if !ok && failure.is_none() {
                failure = Some(Outcome::Failed {
                    status: format!("group {}: {}", plan.name, describe_status(r.status)),
                    stderr_tail: out.stderr_tail.clone(),
                });
            }
            // A service that exited on its own, even with 0, left its load unserved.
            if load_group == Some(g) && !harness_stopped && failure.is_none() {
                failure = Some(Outcome::Failed {
                    status: format!(
                        "group {}: the service {} before its load was done",
                        plan.name,
                        describe_status(r.status)
                    ),
                    stderr_tail: out.stderr_tail.clone(),
                });
            }
            groups.push(GroupResult {
                name: plan.name.clone(),
                exit_status: describe_status(r.status),
                counters: self.sampler.counters(g),
                workload: out,
            });
        }
        Ok(RunResult {
            planned: self.run.clone(),
            cgroup: self.top.map(|t| t.name()).unwrap_or_default(),
            without_cgroup: None,
            // A limiter that ended the workload explains its exit by a signal.
            outcome: outcome
                .or(limiter_end.map(|e| match e {
                    LimiterEnd::Budget => Outcome::Budget,
                    LimiterEnd::Stuck => Outcome::Stuck,
                }))
                .or(failure)
                .unwrap_or(Outcome::Completed),
            wall_s: (end - self.t0) as f64 / 1e9,
            t0_monotonic_ns: self.t0,
            ticks: self.ticks,
            system: self.sampler.system_has(),
            groups,
            limiter: limiter_report,
            leaks,
            teardown,
            cgroup_cpu_s,
            deaths,
            load: load.map(|(l, _)| l),
            changes: std::mem::take(&mut self.changes),
        })
    }
}

/// Tell the sink every group's quota and take the run's first sample; its time is the
/// run's time zero (CLOCK_MONOTONIC ns).
fn first_sample(run: &PlannedRun, sink: &mut dyn RunSink, sampler: &mut Sampler) -> Result<u64> {
    for g in 0..run.groups.len() {
        sink.limit(g, own_quota_cpus(run, g))?;
    }
    let t0 = monotonic_ns();
    sink.tick(sampler.tick(0)?)?;
    Ok(t0)
}

/// Group `g`'s own CFS quota at the start, in CPUs: its `limit`'s, or, when the run's
/// one group is the run's own cgroup, `[limiter]`'s.
fn own_quota_cpus(run: &PlannedRun, g: usize) -> Option<f64> {
    let share = |c: &crate::scenario::CfsLimit| c.quota_us.map(|q| q as f64 / c.period_us as f64);
    match (&run.groups[g].limit, &run.limiter) {
        (Some(l), _) if l.cfs.is_some() => l.cfs.as_ref().and_then(share),
        (_, crate::scenario::Limiter::Cfs(c)) if !run.has_child_cgroups() => share(c),
        _ => None,
    }
}
