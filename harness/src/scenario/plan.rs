//! What will happen, run by run: the `Plan` that resolving a `Scenario` gives
//! (`resolve/`), with limits in µs and CPU sets checked. Once a `Plan` exists it is valid;
//! downstream code does not re-check it.

use super::duration::Span;
use super::schema::{Scenario, SignalBy};
pub use crate::cgroup::CfsLimit;
use crate::cgroup::Controller;
use fibtest::cpulist::CpuList;
use serde::Serialize;
use std::time::Duration;

/// Everything that will happen, run by run.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The scenario as written (sweep not expanded).
    pub scenario: Scenario,
    /// The file it came from, or "built-in".
    pub source: String,
    /// Swept fields, in column order (`param_<field>` columns).
    pub swept: Vec<String>,
    pub runs: Vec<PlannedRun>,
    /// What the plan does that the kernel permits but a reader should know (a child
    /// limited above its parent); `run` prints them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One run: a configuration and a repeat number.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRun {
    /// Run number within the plan, from 0 (the `run` column).
    pub index: usize,
    /// Configuration number (one per sweep combination), from 0.
    pub config: usize,
    /// Repeat number within the configuration, from 0.
    pub repeat: u32,
    /// Swept field and its value as text, in `Plan::swept` order.
    pub params: Vec<(String, String)>,
    pub sample_interval: Span,
    pub limiter: Limiter,
    /// The workloads that run at once, each in its own cgroup: one ("main") unless the
    /// scenario has `[[group]]` tables.
    pub groups: Vec<PlannedGroup>,
    /// Where in the CFS period the workload starts, when the scenario says.
    pub phase: Option<PeriodPhase>,
    /// Limits changed while the run runs, in time order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<PlannedChange>,
    /// Requests sent to a group's service while the run lasts (`[load]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadPlan>,
    /// Whether the run gets cgroups of its own (decided once against the machine by
    /// `resolve::place`).
    #[serde(skip_serializing_if = "Placement::is_cgroup")]
    pub placement: Placement,
}

/// Where a run's workloads are measured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "in", rename_all = "snake_case")]
pub enum Placement {
    /// In cgroups of its own (the normal case).
    #[default]
    Cgroup,
    /// Without a cgroup: making one was refused (an unprivileged user) and the limiter
    /// needs none, so the workload's processes are measured from /proc.
    Processes {
        /// Why there is no cgroup.
        reason: String,
    },
}

impl Placement {
    pub fn is_cgroup(&self) -> bool {
        *self == Placement::Cgroup
    }
}

/// One group of a run (a workload, or a cgroup that holds others) and its cgroup's
/// settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedGroup {
    /// "main" for a scenario without groups.
    pub name: String,
    /// The group whose cgroup this one's is made in (an index into the run's groups,
    /// always an earlier one); None: the run's own cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
    /// CPU weight (v2 units), for the weight limiter.
    pub weight: Option<u32>,
    /// The group's own limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<GroupLimit>,
    /// `Workload::None` for a group that only holds others.
    pub workload: Workload,
}

/// A group's own settings (`limit = { ... }`), on its own cgroup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupLimit {
    pub cfs: Option<CfsLimit>,
    pub weight: Option<Weight>,
    pub cpuset: Option<CpuList>,
    /// How a limit given in another system's units became these values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
}

/// A CPU weight as given: in cgroup v2 units, or as v1 shares (a Kubernetes request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Weight {
    V2(u32),
    Shares(u64),
}

/// A limit changed while the run runs (`[[change]]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedChange {
    /// When, after the run's first sample.
    pub at: Span,
    /// The group (an index into the run's groups); None: the run's own cgroup.
    pub group: Option<usize>,
    pub limit: GroupLimit,
}

impl PlannedRun {
    /// The controllers the run's cgroups need besides cpu and cpuacct.
    pub fn extra_controllers(&self) -> Vec<Controller> {
        let mut v = match self.limiter {
            Limiter::Cpuset { .. } => vec![Controller::Cpuset],
            Limiter::Freezer { .. } => vec![Controller::Freezer],
            _ => Vec::new(),
        };
        let cpuset = self
            .groups
            .iter()
            .filter_map(|g| g.limit.as_ref())
            .chain(self.changes.iter().map(|c| &c.limit))
            .any(|l| l.cpuset.is_some());
        if cpuset && !v.contains(&Controller::Cpuset) {
            v.push(Controller::Cpuset);
        }
        v
    }

    /// Whether the run can go without a cgroup of its own: one group, and a limiter that
    /// acts on processes (or none).
    pub fn can_run_without_cgroup(&self) -> bool {
        self.groups.len() == 1
            && self.changes.is_empty()
            && self.groups[0].limit.is_none()
            && matches!(
                self.limiter,
                Limiter::None | Limiter::Signal { .. } | Limiter::Command { .. }
            )
    }

    /// The first group's workload that runs something (the only one unless the scenario
    /// has groups).
    pub fn workload(&self) -> &Workload {
        &self.groups[self.first_workload()].workload
    }

    /// Index of the first group that runs a workload (a tree's upper groups run none).
    pub fn first_workload(&self) -> usize {
        self.groups
            .iter()
            .position(|g| g.workload != Workload::None)
            .unwrap_or(0)
    }

    /// Whether the run makes a cgroup per group (several groups, or a tree), rather than
    /// running its one group in the run's own cgroup.
    pub fn has_child_cgroups(&self) -> bool {
        self.groups.len() > 1 || self.groups.iter().any(|g| g.limit.is_some())
    }

    /// How long the run should take at most under its limiter (the longest group; with
    /// a load, the load ends the run).
    pub fn expected_duration(&self) -> Duration {
        if let Some(l) = &self.load {
            return l.expected_duration();
        }
        self.groups
            .iter()
            .map(|g| g.workload.expected_duration(&self.limiter))
            .max()
            .unwrap_or_default()
    }

    /// Arguments for the fibtest workload generator of group `g`.
    pub fn fibtest_args(&self, g: usize) -> Vec<String> {
        let mut a = self.groups[g].workload.fibtest_args();
        if let Some(p) = &self.phase {
            a.extend([
                "--align".to_string(),
                Span::from_micros(p.period_us).to_string(),
                "--sync-gap".to_string(),
                Span::from_micros(p.sync_gap_us).to_string(),
                "--phase".to_string(),
                Span::from_micros(p.phase_us).to_string(),
            ]);
        }
        a
    }
}

/// A resolved `[load]` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadPlan {
    /// The target with `{port}` still in it.
    pub target: String,
    pub rate: f64,
    /// Poisson arrivals from this seed (plus the run number); None: constant.
    pub poisson: Option<u64>,
    pub connections: u32,
    /// Generator threads (None: one per connection up to the CPUs left to it).
    pub threads: Option<u32>,
    /// The generator's CPUs (None: those no workload pins, if any).
    pub cpus: Option<CpuList>,
    pub duration: Span,
    pub warmup: Span,
    pub timeout: Span,
    pub port_wait: Span,
    pub body: Option<String>,
    pub headers: Vec<String>,
    /// Index of the group whose service is loaded.
    pub group: usize,
}

impl LoadPlan {
    /// Whether the harness picks the port (`{port}` in the target).
    pub fn picks_port(&self) -> bool {
        self.target.contains("{port}")
    }

    /// The longest the load can take: waiting for the port, the warm-up and the
    /// schedule, and the last answer's time-out.
    pub fn expected_duration(&self) -> Duration {
        self.port_wait.0 + self.warmup.0 + self.duration.0 + self.timeout.0
    }
}

/// What `fibtest serve` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServeProtocol {
    Http,
    Line,
}

impl ServeProtocol {
    pub fn name(&self) -> &'static str {
        match self {
            ServeProtocol::Http => "http",
            ServeProtocol::Line => "line",
        }
    }
}

/// Start the workload `phase_us` after a CFS period boundary, which the workload finds by
/// spinning until it is throttled (a stall of at least `sync_gap_us`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PeriodPhase {
    pub period_us: u64,
    pub phase_us: u64,
    pub sync_gap_us: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Limiter {
    None,
    Cfs(CfsLimit),
    /// Weights are per group (`PlannedGroup::weight`).
    Weight,
    Cpuset {
        cpus: CpuList,
    },
    Freezer {
        duty: DutyControl,
    },
    Signal {
        by: SignalBy,
        duty: DutyControl,
        /// by = "name": the name to match (None: the workload's own process name).
        name: Option<String>,
    },
    Command {
        /// The command with {pid}, {pgid}, {percent}, {share} placeholders.
        template: String,
        share: Option<f64>,
    },
    Credits(CreditModel),
}

/// How a duty-cycle limiter decides how long to let the workload run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum DutyControl {
    /// Fixed on/off durations.
    Open { on: Span, off: Span },
    /// A target share in CPUs, corrected every cycle from the cgroup's measured CPU time.
    Closed { share: f64, cycle: Span },
}

impl Limiter {
    pub fn name(&self) -> &'static str {
        match self {
            Limiter::None => "none",
            Limiter::Cfs(_) => "cfs",
            Limiter::Weight => "weight",
            Limiter::Cpuset { .. } => "cpuset",
            Limiter::Freezer { .. } => "freezer",
            Limiter::Signal { .. } => "signal",
            Limiter::Command { .. } => "command",
            Limiter::Credits(_) => "credits",
        }
    }

    /// Share of one CPU this limiter allows at most, if it caps usage.
    pub fn cap_cpus(&self) -> Option<f64> {
        match self {
            Limiter::Cfs(c) => c.quota_us.map(|q| q as f64 / c.period_us as f64),
            Limiter::Cpuset { cpus } => Some(cpus.len() as f64),
            Limiter::Freezer { duty } | Limiter::Signal { duty, .. } => Some(duty.share()),
            Limiter::Command { share, .. } => *share,
            Limiter::None | Limiter::Weight | Limiter::Credits(_) => None,
        }
    }

    /// The CFS period the limiter's quota counts in, in µs, when it sets one.
    pub fn cfs_period_us(&self) -> Option<u64> {
        match self {
            Limiter::Cfs(c) if c.quota_us.is_some() => Some(c.period_us),
            Limiter::Credits(m) => Some(m.period_us),
            _ => None,
        }
    }

    /// The share of CPU the limiter aims at, in CPUs, when it has one.
    pub fn target_share(&self) -> Option<f64> {
        match self {
            Limiter::Cfs(c) => c.quota_us.map(|q| q as f64 / c.period_us as f64),
            Limiter::Freezer { duty } | Limiter::Signal { duty, .. } => match duty {
                DutyControl::Closed { share, .. } => Some(*share),
                DutyControl::Open { .. } => None,
            },
            Limiter::Command { share, .. } => *share,
            _ => None,
        }
    }
}

impl DutyControl {
    /// The share of wall time the workload may run.
    pub fn share(&self) -> f64 {
        match self {
            DutyControl::Open { on, off } => {
                on.as_secs_f64() / (on.as_secs_f64() + off.as_secs_f64()).max(1e-9)
            }
            DutyControl::Closed { share, .. } => *share,
        }
    }
}

/// An emulated burstable CPU's parameters (`limiter.kind = "credits"`): credits are
/// earned at `baseline`, spent by running, and the workload is held at the baseline
/// through a CFS quota when none are left.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CreditModel {
    /// Share of one CPU earned per second, and held to when out of credits.
    pub baseline: f64,
    /// Largest balance, in CPU-seconds.
    pub balance_max_s: f64,
    /// Balance at the start, in CPU-seconds.
    pub balance_start_s: f64,
    /// How often the balance is updated, in ns.
    pub tick_ns: u64,
    /// CFS period used to hold the baseline, in µs.
    pub period_us: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Workload {
    /// Nothing runs: a group whose cgroup only holds others (a pod above its containers).
    None,
    Requests {
        work: Span,
        count: u64,
        interval: Span,
        threads: u32,
        cpus: Option<CpuList>,
    },
    Fibtest {
        fast: u32,
        slow: u32,
        fast_cpus: CpuList,
        slow_cpus: CpuList,
        slow_steps: u64,
        slow_sleep: Span,
        duration: Span,
    },
    Duty {
        on: Span,
        off: Span,
        duration: Span,
        threads: u32,
        cpus: Option<CpuList>,
        slice: Span,
    },
    /// `sh -c command`; stopped after `duration` if it has not exited by then.
    Command {
        command: String,
        duration: Option<Span>,
    },
    /// `fibtest serve`: `threads` workers, each request costing `work` of CPU; listens
    /// on the port `[load]` picked and runs until the harness stops it.
    Serve {
        threads: u32,
        work: Span,
        cpus: Option<CpuList>,
        protocol: ServeProtocol,
    },
    /// `throttlebench probe steal` on `cpus` (default: the allowed CPUs).
    Steal {
        duration: Span,
        cpus: Option<CpuList>,
        threshold: Span,
    },
    /// `throttlebench probe entropy`; `duration` is shared by the supply measurements.
    Entropy {
        duration: Span,
        sources: Vec<crate::probe::entropy::Source>,
        sizes: Vec<u64>,
        readers: Vec<u32>,
    },
}

impl Workload {
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Requests { .. } => "requests",
            Workload::Fibtest { .. } => "fibtest",
            Workload::Duty { .. } => "duty",
            Workload::Command { .. } => "command",
            Workload::Steal { .. } => "steal",
            Workload::Entropy { .. } => "entropy",
            Workload::Serve { .. } => "serve",
            Workload::None => "none",
        }
    }

    /// Whether the workload is one of this program's probes (run as `probe ... --json`).
    pub fn is_probe(&self) -> bool {
        matches!(self, Workload::Steal { .. } | Workload::Entropy { .. })
    }

    /// Arguments for the fibtest workload generator.
    pub fn fibtest_args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |k: &str, v: String| {
            a.push(k.to_string());
            a.push(v);
        };
        match self {
            Workload::Requests {
                work,
                count,
                interval,
                threads,
                cpus,
            } => {
                push("requests", String::new());
                push("--work", work.to_string());
                push("--count", count.to_string());
                push("--interval", interval.to_string());
                push("--threads", threads.to_string());
                if let Some(c) = cpus {
                    push("--cpus", c.to_string());
                }
            }
            Workload::Fibtest {
                fast,
                slow,
                fast_cpus,
                slow_cpus,
                slow_steps,
                slow_sleep,
                duration,
            } => {
                push("fib", String::new());
                push("--fast", fast.to_string());
                push("--slow", slow.to_string());
                push("--fast-cpus", fast_cpus.to_string());
                push("--slow-cpus", slow_cpus.to_string());
                push("--slow-steps", slow_steps.to_string());
                push("--slow-sleep", slow_sleep.to_string());
                push("--duration", duration.to_string());
            }
            Workload::Duty {
                on,
                off,
                duration,
                threads,
                cpus,
                slice,
            } => {
                push("duty", String::new());
                push("--on", on.to_string());
                push("--off", off.to_string());
                push("--duration", duration.to_string());
                push("--threads", threads.to_string());
                push("--slice", slice.to_string());
                if let Some(c) = cpus {
                    push("--cpus", c.to_string());
                }
            }
            Workload::Command { command, .. } => {
                // Not a fibtest workload: the runner starts `sh -c command` instead.
                push("-c", command.clone());
            }
            Workload::None => {}
            Workload::Serve {
                threads,
                work,
                cpus,
                protocol,
            } => {
                // The port is added by the runner, which picks it.
                push("serve", String::new());
                push("--threads", threads.to_string());
                push("--work", work.to_string());
                push("--protocol", protocol.name().to_string());
                if let Some(c) = cpus {
                    push("--cpus", c.to_string());
                }
            }
            Workload::Steal {
                duration,
                cpus,
                threshold,
            } => {
                // This program's `probe steal`, not fibtest.
                push("probe", String::new());
                push("steal", String::new());
                push("--json", String::new());
                push("--duration", duration.to_string());
                push("--threshold", threshold.to_string());
                if let Some(c) = cpus {
                    push("--cpus", c.to_string());
                }
            }
            Workload::Entropy {
                duration,
                sources,
                sizes,
                readers,
            } => {
                let list = |v: Vec<String>| v.join(",");
                push("probe", String::new());
                push("entropy", String::new());
                push("--json", String::new());
                push("--duration", duration.to_string());
                push(
                    "--sources",
                    list(sources.iter().map(|s| s.name().to_string()).collect()),
                );
                push(
                    "--sizes",
                    list(sizes.iter().map(|s| s.to_string()).collect()),
                );
                push(
                    "--readers",
                    list(readers.iter().map(|s| s.to_string()).collect()),
                );
            }
        }
        // The subcommand was pushed with an empty value to share `push`; drop it.
        a.retain(|s| !s.is_empty());
        a
    }

    /// How much CPU the workload asks for when nothing holds it back, in CPUs, where its
    /// plan says: requests need `work` per `interval` (at most their threads), Fibtest's
    /// fast threads spin (its slow threads add little), a duty cycle runs `on` of every
    /// `on + off` on each thread, the steal probe spins on its CPUs. None for a command
    /// or the entropy probe, whose demand only running tells.
    pub fn demand_cpus(&self) -> Option<f64> {
        let pinned = |cpus: &Option<CpuList>, n: f64| match cpus {
            Some(c) => n.min(c.len() as f64),
            None => n,
        };
        match self {
            Workload::Requests {
                work,
                interval,
                threads,
                cpus,
                ..
            } => {
                let threads = *threads as f64;
                let d = if interval.is_zero() {
                    threads
                } else {
                    (work.as_secs_f64() / interval.as_secs_f64()).min(threads)
                };
                Some(pinned(cpus, d))
            }
            Workload::Fibtest {
                fast, fast_cpus, ..
            } => Some((*fast as f64).min(fast_cpus.len() as f64)),
            Workload::Duty {
                on,
                off,
                threads,
                cpus,
                ..
            } => {
                let cycle = on.as_secs_f64() + off.as_secs_f64();
                let share = if cycle > 0.0 {
                    on.as_secs_f64() / cycle
                } else {
                    1.0
                };
                Some(pinned(cpus, *threads as f64 * share))
            }
            Workload::Steal { cpus, .. } => cpus.as_ref().map(|c| c.len() as f64),
            // A server's demand is its load's: rate × work, known to the run, not here.
            Workload::Command { .. }
            | Workload::Entropy { .. }
            | Workload::Serve { .. }
            | Workload::None => None,
        }
    }

    /// CPUs the workload pins itself to, if it pins.
    pub fn cpus(&self) -> Option<CpuList> {
        match self {
            Workload::Requests { cpus, .. }
            | Workload::Duty { cpus, .. }
            | Workload::Serve { cpus, .. } => cpus.clone(),
            Workload::Command { .. } | Workload::Entropy { .. } | Workload::None => None,
            Workload::Steal { cpus, .. } => cpus.clone(),
            Workload::Fibtest {
                fast_cpus,
                slow_cpus,
                ..
            } => Some(fast_cpus.union(slow_cpus)),
        }
    }

    /// How long the workload is planned to run, when its plan says: a duration, or
    /// requests' arrivals (None for a command without a duration, or a server).
    pub fn nominal_duration(&self) -> Option<Duration> {
        match self {
            Workload::Fibtest { duration, .. }
            | Workload::Duty { duration, .. }
            | Workload::Steal { duration, .. }
            | Workload::Entropy { duration, .. } => Some(duration.0),
            Workload::Requests {
                count, interval, ..
            } => Some(interval.0 * (*count).min(u32::MAX as u64) as u32),
            Workload::Command { duration, .. } => duration.map(|d| d.0),
            Workload::Serve { .. } => None,
            Workload::None => Some(Duration::ZERO),
        }
    }

    /// A generous upper bound of how long the workload should take under `limiter`,
    /// used to size sample buffers and to give up on a hung workload.
    pub fn expected_duration(&self, limiter: &Limiter) -> Duration {
        match self {
            Workload::Fibtest { duration, .. } | Workload::Duty { duration, .. } => duration.0,
            Workload::Steal { duration, .. } => duration.0 + Duration::from_secs(1),
            // The FIPS pass reads each source for at most 2 s after the supply measurements.
            Workload::Entropy {
                duration, sources, ..
            } => duration.0 + Duration::from_secs(2 * sources.len() as u64 + 2),
            Workload::Command { duration, .. } => {
                duration.map(|d| d.0).unwrap_or(Duration::from_secs(600))
            }
            // Stopped when its load is done (`PlannedRun::expected_duration`).
            Workload::Serve { .. } => Duration::from_secs(600),
            Workload::None => Duration::ZERO,
            Workload::Requests {
                work,
                count,
                interval,
                threads,
                ..
            } => {
                let share = limiter.cap_cpus().unwrap_or(1.0).clamp(0.01, 1.0);
                let per_request = work.0.as_secs_f64() / share;
                let arrivals = interval.0.as_secs_f64() * (*count as f64);
                let busy = per_request * (*count as f64) / (*threads).max(1) as f64;
                Duration::from_secs_f64(arrivals.max(busy) + per_request)
            }
        }
    }
}
