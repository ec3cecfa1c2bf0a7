//! What a scenario file says, field for field (serde, unknown fields rejected).
//!
//! This schema is a contract with users' files and outside scripts: fields are added,
//! never renamed. Which fields apply to which `kind` is checked when the scenario is
//! resolved into a `Plan` (see `plan.rs`), so errors there can name the field and kind.

use super::duration::{Quota, Span};
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
    pub workload: WorkloadSpec,
    /// One configuration per combination of values: `"limiter.quota" = ["20ms", "40ms"]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sweep: BTreeMap<String, Vec<toml::Value>>,
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
}

impl LimiterKind {
    pub fn name(&self) -> &'static str {
        match self {
            LimiterKind::None => "none",
            LimiterKind::Cfs => "cfs",
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
}

impl WorkloadKind {
    pub fn name(&self) -> &'static str {
        match self {
            WorkloadKind::Requests => "requests",
            WorkloadKind::Fibtest => "fibtest",
            WorkloadKind::Duty => "duty",
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
    /// fibtest, duty: how long the workload runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Span>,
    /// duty: run time per cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Span>,
    /// duty: sleep time per cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off: Option<Span>,
    /// any kind, under a cfs quota below one CPU: start the work this long after a CFS
    /// period boundary (found by the workload before it starts). Absent: whenever the
    /// workload is ready, at no particular point of the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Span>,
}
