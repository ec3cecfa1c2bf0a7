//! What a scenario file says, field for field (serde, unknown fields rejected).
//!
//! This schema is a contract with users' files and outside scripts: fields are added,
//! never renamed. Which fields apply to which `kind` is checked when the scenario is
//! resolved into a `Plan` (see `plan.rs`), so errors there can name the field and kind.

use super::duration::{Quota, Span};
use super::requires::Requires;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Names the result folder (`results/<name>/...`) and the `scenario` column.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Runs per configuration.
    #[serde(default = "default_repeats")]
    pub repeats: u32,
    /// How often the sampler reads the kernel's counters.
    #[serde(default = "default_sample_interval")]
    pub sample_interval: Span,
    #[serde(default)]
    pub limiter: LimiterSpec,
    /// The workload; absent when `[[group]]` tables give one per group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadSpec>,
    /// Groups that run at the same time, each in its own cgroup with its own workload
    /// (and weight, for `limiter.kind = "weight"`).
    #[serde(default, rename = "group", skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupSpec>,
    /// One configuration per combination of values: `"limiter.quota" = ["20ms", "40ms"]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sweep: BTreeMap<String, Vec<toml::Value>>,
    /// What `throttlebench check` tests: a name for each expectation and its expression
    /// over summary columns, `p99 = "median(latency_p99_s) < 500ms"` (syntax in
    /// `report/expect.rs` and docs/ci.md). `run` ignores it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expect: BTreeMap<String, String>,
    /// What `check` needs of the machine to tell anything (`[requires]`, e.g. `cpus = 8`);
    /// with less it answers 125 (cannot test). `run` ignores it.
    #[serde(default, skip_serializing_if = "Requires::is_empty")]
    pub requires: Requires,
    /// A kernel selftest whose own verdict `check` gives besides `[expect]`
    /// (`report/selftest.rs`): "test_cpucg_weight_overprovisioned",
    /// "test_cpucg_weight_underprovisioned".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selftest: Option<String>,
}

fn default_repeats() -> u32 {
    1
}

fn default_sample_interval() -> Span {
    Span::from_millis(10)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimiterKind {
    /// No limit: the workload still runs in its own cgroup so its usage is measured.
    #[default]
    None,
    /// CFS bandwidth control: quota per period, with optional burst.
    Cfs,
    /// CPU weight of competing groups (v1 cpu.shares, v2 cpu.weight).
    Weight,
    /// Pinning to CPUs (cpuset.cpus).
    Cpuset,
    /// A duty cycle of freezing and thawing the cgroup.
    Freezer,
    /// A duty cycle of SIGSTOP and SIGCONT.
    Signal,
    /// An external limiter command, to validate.
    Command,
    /// An emulated burstable CPU: credits earned at a baseline, spent when busy.
    Credits,
}

impl LimiterKind {
    pub fn name(&self) -> &'static str {
        match self {
            LimiterKind::None => "none",
            LimiterKind::Cfs => "cfs",
            LimiterKind::Weight => "weight",
            LimiterKind::Cpuset => "cpuset",
            LimiterKind::Freezer => "freezer",
            LimiterKind::Signal => "signal",
            LimiterKind::Command => "command",
            LimiterKind::Credits => "credits",
        }
    }
}

/// The `[limiter]` table. Fields that do not apply to `kind` are rejected when resolving.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimiterSpec {
    #[serde(default)]
    pub kind: LimiterKind,
    /// cfs: run time allowed per period, or "max".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// cfs: the period (default 100ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Span>,
    /// cfs: run time that unused quota may accumulate into (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<Span>,
    /// signal: which processes get SIGSTOP/SIGCONT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<SignalBy>,
    /// signal by name: the process name to match exactly (default: the workload's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// freezer, signal: target share in CPUs (closed loop); command: fills {share}/{percent}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// freezer, signal: closed loop cycle length (default 100ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle: Option<Span>,
    /// freezer, signal: open loop run time per cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Span>,
    /// freezer, signal: open loop stop time per cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off: Option<Span>,
    /// cpuset: the CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// command: the limiter command, with {pid}, {pgid}, {percent}, {share} placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// credits: share of one CPU earned per second and held to when out of credits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// credits: the largest balance, in CPU-seconds at full speed ("30s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_max: Option<Span>,
    /// credits: the balance at the start (default: balance_max).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_start: Option<Span>,
    /// credits: how often the balance is updated (default 10ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick: Option<Span>,
}

/// Which processes a signal limiter stops and continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalBy {
    /// Processes whose name matches exactly, like `pkill -x` (seed 000's first design).
    Name,
    /// The workload's process group (seed 000's setsid fix).
    Group,
    /// Every process of the workload's tree, rescanned until no new one appears (seed 004).
    Tree,
}

impl SignalBy {
    pub fn name(&self) -> &'static str {
        match self {
            SignalBy::Name => "name",
            SignalBy::Group => "group",
            SignalBy::Tree => "tree",
        }
    }
}

/// A `[[group]]` table: one of several workloads that compete at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Names the group's cgroup and its rows in the results.
    pub name: String,
    /// weight: the group's CPU weight (v2 units, 1-10000; default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    pub workload: WorkloadSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Requests of a fixed CPU cost arriving on a schedule.
    Requests,
    /// Fast and slow Fibonacci threads.
    Fibtest,
    /// Run for `on`, sleep for `off`.
    Duty,
    /// Any program, run with `sh -c` (its whole process tree is the workload).
    Command,
    /// The CPU steal probe: pinned threads spinning on the clock, next to /proc/stat.
    Steal,
    /// The entropy probe: RNG readiness, supply per source and readers, FIPS tests.
    Entropy,
}

impl WorkloadKind {
    pub fn name(&self) -> &'static str {
        match self {
            WorkloadKind::Requests => "requests",
            WorkloadKind::Fibtest => "fibtest",
            WorkloadKind::Duty => "duty",
            WorkloadKind::Command => "command",
            WorkloadKind::Steal => "steal",
            WorkloadKind::Entropy => "entropy",
        }
    }
}

/// The `[workload]` table. Fields that do not apply to `kind` are rejected when resolving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub kind: WorkloadKind,
    /// requests: CPU time each request needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<Span>,
    /// requests: how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// requests: time between arrivals (0 = back to back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Span>,
    /// requests, duty: worker threads (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// requests, duty: CPUs to pin to ("0", "1-3", "0,2-3").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// fibtest: fast threads (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast: Option<u32>,
    /// fibtest: slow threads (default: one per remaining CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<u32>,
    /// fibtest: CPUs of the fast threads (default "0").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_cpus: Option<String>,
    /// fibtest: CPUs of the slow threads (default: the allowed CPUs after the fast ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_cpus: Option<String>,
    /// fibtest: steps a slow thread does before it sleeps (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_steps: Option<u64>,
    /// fibtest: how long a slow thread sleeps (default 10ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_sleep: Option<Span>,
    /// fibtest, duty: how long the workload runs; command: when to stop it (default: when
    /// it exits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Span>,
    /// duty: run time per cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Span>,
    /// duty: sleep time per cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off: Option<Span>,
    /// duty: length of the slices work is counted in (default 100ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<Span>,
    /// command: the shell command to run (`sh -c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// steal: shortest gap between clock reads counted as a stall (default 5us).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Span>,
    /// entropy: sources to read ("getrandom", "urandom", "random", "hwrng"; default all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    /// entropy: bytes per read (default [32, 4096, 65536]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<Vec<u64>>,
    /// entropy: concurrent reader counts (default [1, 4]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readers: Option<Vec<u32>>,
    /// any kind, under a cfs quota below one CPU: start the work this long after a CFS
    /// period boundary (found by the workload before it starts). Absent: whenever the
    /// workload is ready, at no particular point of the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Span>,
}
