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
    /// Limits changed while the run runs, in time order.
    #[serde(default, rename = "change", skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeSpec>,
    /// Requests sent to a group's service from outside its cgroup while it runs; the run
    /// ends when they are done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadTable>,
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
    /// A CPU-time budget for the whole workload, which is ended when it is spent
    /// ("Practical resource limiting" [Practical Limiting]).
    Budget,
    /// A CPU-time budget within a rolling window (ApisCP's 24-hour limit [ApisCP]).
    Window,
    /// A real OCI runtime (runc, crun, podman) starting the workload in a container with
    /// the limit in its config.
    Runtime,
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
            LimiterKind::Budget => "budget",
            LimiterKind::Window => "window",
            LimiterKind::Runtime => "runtime",
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
    /// budget: CPU time the whole workload may use ("2s"); window: CPU time within each
    /// `window`; command: the CPU time the command is meant to hold the workload to
    /// (fills {cpu}, in s, and gives the budget columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Span>,
    /// budget: whose CPU time counts (default "tree").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<BudgetTrack>,
    /// budget, window: how often the limiter reads the usage (default 100ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Span>,
    /// budget, window with action = "stop": time between SIGTERM and SIGKILL (default 2s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<Span>,
    /// budget, window with action = "stop": how the workload is ended (default
    /// "stop-first").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<KillOrder>,
    /// window: the rolling window the budget `cpu` is for ("24h").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Span>,
    /// window: what happens when the window's budget is used (default "throttle").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<WindowAction>,
    /// window with action = "throttle": the share of one CPU the workload is held to
    /// until its usage ages out of the window (default 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<f64>,
    /// signal: end the run at the first stop/continue cycle that leaves a process
    /// stopped (the workload's duration bounds the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_stuck: Option<bool>,
    /// runtime: which one starts the container ("runc", "crun", "podman").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// runtime: the limit in any unit of a group's `limit` (instead of quota/period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitSpec>,
}

/// Whose CPU time a budget counts ("Practical resource limiting" [Practical Limiting]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetTrack {
    /// The process tree below the workload's main process, by parent pid, read from
    /// /proc: live processes plus the reaped children in their cutime/cstime (the
    /// article's design). Misses what detaches from the tree (a double-forked daemon).
    Tree,
    /// The workload's process group, read from /proc the same way (the article's earlier
    /// design). Misses what a shell inside moves to a group of its own.
    Group,
    /// The run's cgroup's own counter (cpuacct.usage, cpu.stat usage_usec), which no
    /// process of the run escapes.
    Cgroup,
}

impl BudgetTrack {
    pub fn name(&self) -> &'static str {
        match self {
            BudgetTrack::Tree => "tree",
            BudgetTrack::Group => "group",
            BudgetTrack::Cgroup => "cgroup",
        }
    }
}

/// How a limiter ends a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KillOrder {
    /// Stop every process (listing again until no new one appears), SIGTERM them all,
    /// continue them all; SIGKILL what is left after the grace time ("Practical resource
    /// limiting" [Practical Limiting]).
    StopFirst,
    /// SIGTERM one process at a time, the newest first, waiting up to the grace time for
    /// each to exit before the next, without stopping any: the naive order, whose pipe
    /// peers can die of SIGPIPE.
    Each,
}

impl KillOrder {
    pub fn name(&self) -> &'static str {
        match self {
            KillOrder::StopFirst => "stop-first",
            KillOrder::Each => "each",
        }
    }
}

/// What a window limiter does when the window's budget is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowAction {
    /// Hold the workload to `floor` with a CFS quota until its usage ages out of the window.
    Throttle,
    /// End the workload, as the budget limiter does.
    Stop,
}

impl WindowAction {
    pub fn name(&self) -> &'static str {
        match self {
            WindowAction::Throttle => "throttle",
            WindowAction::Stop => "stop",
        }
    }
}

/// Which processes a signal limiter stops and continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalBy {
    /// Processes whose name matches exactly, like `pkill -x` (the first design of "EC2 Micro Instance Throttling" [EC2 Micro]).
    Name,
    /// The workload's process group (that article's fix, a process group made with setsid).
    Group,
    /// Every process of the workload's tree, rescanned until no new one appears ("Practical resource
    /// limiting" [Practical Limiting]).
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

/// A `[[group]]` table: one of several workloads that compete at once, or (without a
/// workload) a cgroup above others in a tree (a Kubernetes pod above its containers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Names the group's cgroup and its rows in the results.
    pub name: String,
    /// The group this one's cgroup is made in (default: the run's own cgroup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// weight: the group's CPU weight (v2 units, 1-10000; default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// The group's own limit, on its own cgroup (beside the run's `[limiter]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitSpec>,
    /// What runs in it; absent for a group that only holds others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadSpec>,
}

/// A number or a text, for fields that take both (`millicores = 500` or `"500m"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumberOrText {
    Int(i64),
    Float(f64),
    Text(String),
}

impl NumberOrText {
    pub fn text(&self) -> String {
        match self {
            NumberOrText::Int(i) => i.to_string(),
            NumberOrText::Float(f) => f.to_string(),
            NumberOrText::Text(t) => t.clone(),
        }
    }
}

/// A `limit = { ... }` table (of a group or a change): a CFS quota in one of the units
/// people write, a weight, CPUs. docs/limiters.md ("The units users write") says how each unit becomes quota and period.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    /// Run time per period, as the kernel takes it ("40ms", or "max").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// With `quota`: the period (default 100ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Span>,
    /// Burst allowance (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<Span>,
    /// Docker's `--cpus` (0.5): quota = cpus × 100 ms per 100 ms, exact to 9 decimals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<NumberOrText>,
    /// A Kubernetes CPU limit: millicores (500) or a quantity ("500m", "0.5"), written
    /// as kubelet writes it (MilliCPUToQuota).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millicores: Option<NumberOrText>,
    /// systemd's `CPUQuota=` in % of one CPU (40, or "40.25%").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota_pct: Option<NumberOrText>,
    /// The period the unit's system uses: kubelet's `--cpu-cfs-quota-period` (with
    /// `millicores`), systemd's `CPUQuotaPeriodSec=` (with `cpu_quota_pct`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_period: Option<Span>,
    /// CPU weight in v2 units (1-10000; v1 shares = weight × 1024 / 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// A Kubernetes CPU request (millicores or a quantity): v1 shares as kubelet writes
    /// them (MilliCPUToShares), v2 weight by kubelet's conversion of those shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<NumberOrText>,
    /// CPUs the group may run on ("0", "0-1").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
}

/// A `[[change]]` table: a group's limit changed while the run runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeSpec {
    /// When, after the run's first sample.
    pub at: Span,
    /// Which group (default: the run's own cgroup, which `[limiter]` limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The new settings (those not given stay as they are).
    pub limit: LimitSpec,
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
    /// fibtest's reference server: every request costs `work` of CPU on one of
    /// `threads` workers; runs until the harness stops it (loaded by `[load]`).
    Serve,
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
            WorkloadKind::Serve => "serve",
        }
    }
}

/// The `[workload]` table. Fields that do not apply to `kind` are rejected when resolving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub kind: WorkloadKind,
    /// requests, serve: CPU time each request needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<Span>,
    /// requests: how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// requests: time between arrivals (0 = back to back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Span>,
    /// requests, duty, serve: worker threads (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// requests: threads each request's work is split over, evenly (default 1); the
    /// request is done when the last part is (a parallel burst: `fibtest --fanout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fanout: Option<u32>,
    /// requests, duty, serve: CPUs to pin to ("0", "1-3", "0,2-3").
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
    /// command: the shell command to run (`sh -c`); `{port}` is the port `[load]` picked,
    /// `{dir}` the scenario file's folder.
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
    /// serve: "http" (HTTP/1.1, keep-alive; the default) or "line" (a line in, the same
    /// line out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// any kind, under a cfs quota below one CPU: start the work this long after a CFS
    /// period boundary (found by the workload before it starts). Absent: whenever the
    /// workload is ready, at no particular point of the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Span>,
}

/// The `[load]` table: an open-loop load of a group's service (docs/latency.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadTable {
    /// `http://127.0.0.1:{port}/path` (HTTP/1.1; GET, or POST with `body`) or
    /// `tcp://127.0.0.1:{port}` (a line out, a line back). `{port}` is a free loopback
    /// port the harness picks and hands to the service (`--port` of `serve`, `{port}` in
    /// a command).
    pub target: String,
    /// Requests per second, over all connections, on a schedule fixed in advance.
    pub rate: f64,
    /// Exponential gaps between arrivals (a Poisson process) instead of even ones.
    #[serde(default)]
    pub poisson: bool,
    /// Seed of the Poisson arrivals (default 1; the repeat number is added, so repeats
    /// differ, every configuration of a sweep meets the same arrivals, and a rerun is
    /// the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Connections, each with at most one request in flight (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// Threads of the generator (default: one per connection up to the CPUs left to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// CPUs of the generator's threads (default: the CPUs no workload pins, if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// How long requests are sent, after the warm-up (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Span>,
    /// Requests due in this first stretch are written but left out of the summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Span>,
    /// An answer later than this after its send is a timeout (default 2s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    /// How long the service may take to accept connections (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_wait: Option<Span>,
    /// HTTP: POST this body; tcp: the line to send (default `ping`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// HTTP: headers to send, "Name: value" (`["Accept-Encoding: gzip"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// The group whose service is loaded (default: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}
