//! Resolving a `Scenario` into a `Plan`: one entry per run (sweeps and repeats
//! expanded), limits in µs, CPU sets checked against the allowed set.
//!
//! Everything that can be rejected is rejected here, before any process starts; once a
//! `Plan` exists, downstream code does not re-check it.

use super::duration::{Quota, Span};
use super::schema::{LimiterKind, LimiterSpec, Scenario, WorkloadKind, WorkloadSpec};
use super::ScenarioError;
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
    pub workload: Workload,
    /// Where in the CFS period the workload starts, when the scenario says.
    pub phase: Option<PeriodPhase>,
}

impl PlannedRun {
    /// Arguments for the fibtest workload generator.
    pub fn fibtest_args(&self) -> Vec<String> {
        let mut a = self.workload.fibtest_args();
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
}

impl Limiter {
    pub fn name(&self) -> &'static str {
        match self {
            Limiter::None => "none",
            Limiter::Cfs(_) => "cfs",
        }
    }

    /// Share of one CPU this limiter allows at most, if it caps usage.
    pub fn cap_cpus(&self) -> Option<f64> {
        match self {
            Limiter::Cfs(c) => c.quota_us.map(|q| q as f64 / c.period_us as f64),
            Limiter::None => None,
        }
    }
}

/// CFS bandwidth settings in µs, as the kernel takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CfsLimit {
    /// Run time per period; None is "max" (no limit).
    pub quota_us: Option<u64>,
    pub period_us: u64,
    pub burst_us: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Workload {
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
    },
}

impl Workload {
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Requests { .. } => "requests",
            Workload::Fibtest { .. } => "fibtest",
            Workload::Duty { .. } => "duty",
        }
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
            } => {
                push("duty", String::new());
                push("--on", on.to_string());
                push("--off", off.to_string());
                push("--duration", duration.to_string());
                push("--threads", threads.to_string());
                if let Some(c) = cpus {
                    push("--cpus", c.to_string());
                }
            }
        }
        // The subcommand was pushed with an empty value to share `push`; drop it.
        a.retain(|s| !s.is_empty());
        a
    }

    /// CPUs the workload pins itself to, if it pins.
    pub fn cpus(&self) -> Option<CpuList> {
        match self {
            Workload::Requests { cpus, .. } | Workload::Duty { cpus, .. } => cpus.clone(),
            Workload::Fibtest {
                fast_cpus,
                slow_cpus,
                ..
            } => Some(fast_cpus.union(slow_cpus)),
        }
    }

    /// A generous upper bound of how long the workload should take under `limiter`,
    /// used to size sample buffers and to give up on a hung workload.
    pub fn expected_duration(&self, limiter: &Limiter) -> Duration {
        match self {
            Workload::Fibtest { duration, .. } | Workload::Duty { duration, .. } => duration.0,
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

/// Resolves a scenario (already deserialized) against the CPUs this process may use.
pub fn resolve(
    scenario: &Scenario,
    source: &str,
    allowed: &CpuList,
) -> Result<Plan, ScenarioError> {
    check_scenario(scenario, source)?;
    let swept: Vec<String> = scenario.sweep.keys().cloned().collect();
    let configs = expand_sweep(scenario, source)?;
    let mut runs = Vec::new();
    for (config, (params, sc)) in configs.into_iter().enumerate() {
        let limiter = resolve_limiter(&sc.limiter, source)?;
        let workload = resolve_workload(&sc.workload, source, allowed)?;
        let phase = resolve_phase(sc.workload.phase, &limiter, source)?;
        for repeat in 0..scenario.repeats {
            runs.push(PlannedRun {
                index: runs.len(),
                config,
                repeat,
                params: params.clone(),
                sample_interval: sc.sample_interval,
                limiter: limiter.clone(),
                workload: workload.clone(),
                phase,
            });
        }
    }
    Ok(Plan {
        scenario: scenario.clone(),
        source: source.to_string(),
        swept,
        runs,
    })
}

fn check_scenario(s: &Scenario, source: &str) -> Result<(), ScenarioError> {
    let ok_name = !s.name.is_empty()
        && s.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !s.name.starts_with('.');
    if !ok_name {
        return Err(ScenarioError::field(
            source,
            "name",
            format!(
                "`{}` cannot name a result folder: use letters, digits, '.', '_' and '-'",
                s.name
            ),
        ));
    }
    if s.repeats == 0 || s.repeats > 1000 {
        return Err(ScenarioError::field(
            source,
            "repeats",
            "must be between 1 and 1000",
        ));
    }
    let si = s.sample_interval.0;
    if si < Duration::from_millis(1) || si > Duration::from_secs(10) {
        return Err(ScenarioError::field(
            source,
            "sample_interval",
            "must be between 1ms and 10s",
        ));
    }
    Ok(())
}

/// The scenario once per sweep combination, with each swept value set, and the values as
/// text. Sweep values are applied to the file's TOML and deserialized again, so a bad value
/// gets the same checks as a value written in place.
/// Swept fields and their values as text.
type Params = Vec<(String, String)>;

fn expand_sweep(s: &Scenario, source: &str) -> Result<Vec<(Params, Scenario)>, ScenarioError> {
    let base = toml::Value::try_from(Scenario {
        sweep: Default::default(),
        ..s.clone()
    })
    .map_err(|e| ScenarioError::field(source, "sweep", e.to_string()))?;
    let mut combos: Vec<(Params, toml::Value)> = vec![(Vec::new(), base)];
    for (key, values) in &s.sweep {
        let field = format!("sweep.\"{key}\"");
        let path: Vec<&str> = key.split('.').collect();
        let settable = matches!(
            path.as_slice(),
            ["limiter" | "workload", _] | ["sample_interval"]
        );
        if !settable {
            return Err(ScenarioError::field(
                source,
                &field,
                "a swept field is `limiter.<field>`, `workload.<field>` or `sample_interval`",
            ));
        }
        if values.is_empty() {
            return Err(ScenarioError::field(
                source,
                &field,
                "needs at least one value",
            ));
        }
        let mut next = Vec::new();
        for (params, value) in &combos {
            for v in values {
                let mut value = value.clone();
                set_path(&mut value, &path, v.clone());
                let mut params = params.clone();
                params.push((key.clone(), value_text(v)));
                next.push((params, value));
            }
        }
        combos = next;
    }
    combos
        .into_iter()
        .map(|(params, value)| {
            let text = params
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sc: Scenario = value.try_into().map_err(|e: toml::de::Error| {
                ScenarioError::field(
                    source,
                    "sweep",
                    format!("with {text}: {}", e.message().trim()),
                )
            })?;
            check_scenario(&sc, source)?;
            Ok((params, sc))
        })
        .collect()
}

fn set_path(v: &mut toml::Value, path: &[&str], new: toml::Value) {
    let table = v.as_table_mut().expect("a scenario serializes to a table");
    match path {
        [leaf] => {
            table.insert(leaf.to_string(), new);
        }
        [head, rest @ ..] => {
            let child = table
                .entry(head.to_string())
                .or_insert_with(|| toml::Value::Table(Default::default()));
            set_path(child, rest, new);
        }
        [] => {}
    }
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn reject_unused(
    source: &str,
    section: &str,
    kind: &str,
    fields: &[(&str, bool)],
) -> Result<(), ScenarioError> {
    for (name, present) in fields {
        if *present {
            return Err(ScenarioError::field(
                source,
                &format!("{section}.{name}"),
                format!("does not apply to {section}.kind = \"{kind}\""),
            ));
        }
    }
    Ok(())
}

fn resolve_limiter(l: &LimiterSpec, source: &str) -> Result<Limiter, ScenarioError> {
    match l.kind {
        LimiterKind::None => {
            reject_unused(
                source,
                "limiter",
                "none",
                &[
                    ("quota", l.quota.is_some()),
                    ("period", l.period.is_some()),
                    ("burst", l.burst.is_some()),
                ],
            )?;
            Ok(Limiter::None)
        }
        LimiterKind::Cfs => {
            let period = l.period.unwrap_or(Span::from_millis(100));
            // The kernel accepts periods of 1 ms to 1 s and quotas of at least 1 ms.
            if period.0 < Duration::from_millis(1) || period.0 > Duration::from_secs(1) {
                return Err(ScenarioError::field(
                    source,
                    "limiter.period",
                    format!("{period} is outside the kernel's range of 1ms to 1s"),
                ));
            }
            let quota = l.quota.ok_or_else(|| {
                ScenarioError::field(
                    source,
                    "limiter.quota",
                    "is required for kind = \"cfs\" (a duration per period, or \"max\")",
                )
            })?;
            let quota_us = match quota {
                Quota::Max => None,
                Quota::Limit(q) => {
                    if q.0 < Duration::from_millis(1) {
                        return Err(ScenarioError::field(
                            source,
                            "limiter.quota",
                            format!("{q} is below the kernel's minimum of 1ms"),
                        ));
                    }
                    Some(q.as_micros())
                }
            };
            let burst_us = l.burst.map(|b| b.as_micros()).unwrap_or(0);
            if burst_us > 0 {
                match quota_us {
                    None => {
                        return Err(ScenarioError::field(
                            source,
                            "limiter.burst",
                            "needs a quota: with quota = \"max\" there is nothing to burst above",
                        ))
                    }
                    Some(q) if burst_us > q => {
                        return Err(ScenarioError::field(
                            source,
                            "limiter.burst",
                            format!(
                                "{} is larger than the quota {}: the kernel allows a burst of at most the quota",
                                Span::from_micros(burst_us),
                                Span::from_micros(q)
                            ),
                        ))
                    }
                    _ => {}
                }
            }
            Ok(Limiter::Cfs(CfsLimit {
                quota_us,
                period_us: period.as_micros(),
                burst_us,
            }))
        }
    }
}

/// The shortest stall that the phase search takes for throttling: well above this
/// machine's usual stalls (up to about 10 ms, see docs/metrics.md).
const MIN_SYNC_GAP_US: u64 = 10_000;

fn resolve_phase(
    phase: Option<Span>,
    limiter: &Limiter,
    source: &str,
) -> Result<Option<PeriodPhase>, ScenarioError> {
    let Some(phase) = phase else {
        return Ok(None);
    };
    let field = "workload.phase";
    let Limiter::Cfs(c) = limiter else {
        return Err(ScenarioError::field(
            source,
            field,
            "needs limiter.kind = \"cfs\": the phase is a point in the CFS period",
        ));
    };
    let Some(quota) = c.quota_us.filter(|q| *q < c.period_us) else {
        return Err(ScenarioError::field(
            source,
            field,
            "needs a quota below one CPU (quota < period): the period boundary is found by being throttled",
        ));
    };
    // Throttled for period - quota per period; half of that tells it from ordinary stalls.
    let gap = (c.period_us - quota) / 2;
    if gap < MIN_SYNC_GAP_US {
        return Err(ScenarioError::field(
            source,
            field,
            format!(
                "needs period - quota of at least {}: shorter throttling cannot be told from this machine's ordinary stalls",
                Span::from_micros(2 * MIN_SYNC_GAP_US)
            ),
        ));
    }
    if phase.as_micros() >= c.period_us {
        return Err(ScenarioError::field(
            source,
            field,
            format!(
                "{phase} is not shorter than the period {}",
                Span::from_micros(c.period_us)
            ),
        ));
    }
    Ok(Some(PeriodPhase {
        period_us: c.period_us,
        phase_us: phase.as_micros(),
        sync_gap_us: gap,
    }))
}

fn cpus_field(
    source: &str,
    field: &str,
    text: &str,
    allowed: &CpuList,
) -> Result<CpuList, ScenarioError> {
    let list: CpuList = text
        .parse()
        .map_err(|e| ScenarioError::field(source, field, format!("{e}")))?;
    if let Some(cpu) = list.iter().find(|c| !allowed.contains(*c)) {
        return Err(ScenarioError::field(
            source,
            field,
            format!("CPU {cpu} is not one this process may use (allowed: {allowed})"),
        ));
    }
    Ok(list)
}

fn positive(source: &str, field: &str, v: Span) -> Result<Span, ScenarioError> {
    if v.is_zero() {
        Err(ScenarioError::field(source, field, "must be longer than 0"))
    } else {
        Ok(v)
    }
}

fn resolve_workload(
    w: &WorkloadSpec,
    source: &str,
    allowed: &CpuList,
) -> Result<Workload, ScenarioError> {
    let kind = w.kind.name();
    let opt_cpus = |field: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| cpus_field(source, field, t, allowed))
            .transpose()
    };
    let threads = |v: Option<u32>| match v {
        None => Ok(1),
        Some(0) => Err(ScenarioError::field(
            source,
            "workload.threads",
            "must be at least 1",
        )),
        Some(n) => Ok(n),
    };
    match w.kind {
        WorkloadKind::Requests => {
            reject_unused(
                source,
                "workload",
                kind,
                &[
                    ("fast", w.fast.is_some()),
                    ("slow", w.slow.is_some()),
                    ("fast_cpus", w.fast_cpus.is_some()),
                    ("slow_cpus", w.slow_cpus.is_some()),
                    ("slow_steps", w.slow_steps.is_some()),
                    ("slow_sleep", w.slow_sleep.is_some()),
                    ("duration", w.duration.is_some()),
                    ("on", w.on.is_some()),
                    ("off", w.off.is_some()),
                ],
            )?;
            let work = w.work.ok_or_else(|| {
                ScenarioError::field(
                    source,
                    "workload.work",
                    "is required for kind = \"requests\" (CPU time per request, like \"200ms\")",
                )
            })?;
            let count = w.count.unwrap_or(10);
            if count == 0 {
                return Err(ScenarioError::field(
                    source,
                    "workload.count",
                    "must be at least 1",
                ));
            }
            Ok(Workload::Requests {
                work: positive(source, "workload.work", work)?,
                count,
                interval: w.interval.unwrap_or(Span::from_millis(1000)),
                threads: threads(w.threads)?,
                cpus: opt_cpus("workload.cpus", &w.cpus)?,
            })
        }
        WorkloadKind::Fibtest => {
            reject_unused(
                source,
                "workload",
                kind,
                &[
                    ("work", w.work.is_some()),
                    ("count", w.count.is_some()),
                    ("interval", w.interval.is_some()),
                    ("threads", w.threads.is_some()),
                    ("cpus", w.cpus.is_some()),
                    ("on", w.on.is_some()),
                    ("off", w.off.is_some()),
                ],
            )?;
            let fast_cpus = cpus_field(
                source,
                "workload.fast_cpus",
                w.fast_cpus.as_deref().unwrap_or("0"),
                allowed,
            )?;
            let slow_cpus = match &w.slow_cpus {
                Some(t) => cpus_field(source, "workload.slow_cpus", t, allowed)?,
                None => {
                    let rest = allowed.difference(&fast_cpus);
                    if rest.is_empty() {
                        fast_cpus.clone()
                    } else {
                        rest
                    }
                }
            };
            let fast = w.fast.unwrap_or(1);
            let slow = w.slow.unwrap_or(slow_cpus.len() as u32);
            if fast + slow == 0 {
                return Err(ScenarioError::field(
                    source,
                    "workload.fast",
                    "fast and slow are both 0: nothing would run",
                ));
            }
            Ok(Workload::Fibtest {
                fast,
                slow,
                fast_cpus,
                slow_cpus,
                slow_steps: w.slow_steps.unwrap_or(100),
                slow_sleep: w.slow_sleep.unwrap_or(Span::from_millis(10)),
                duration: positive(
                    source,
                    "workload.duration",
                    w.duration.unwrap_or(Span::from_millis(5000)),
                )?,
            })
        }
        WorkloadKind::Duty => {
            reject_unused(
                source,
                "workload",
                kind,
                &[
                    ("work", w.work.is_some()),
                    ("count", w.count.is_some()),
                    ("interval", w.interval.is_some()),
                    ("fast", w.fast.is_some()),
                    ("slow", w.slow.is_some()),
                    ("fast_cpus", w.fast_cpus.is_some()),
                    ("slow_cpus", w.slow_cpus.is_some()),
                    ("slow_steps", w.slow_steps.is_some()),
                    ("slow_sleep", w.slow_sleep.is_some()),
                ],
            )?;
            let on = w.on.ok_or_else(|| {
                ScenarioError::field(
                    source,
                    "workload.on",
                    "is required for kind = \"duty\" (run time per cycle)",
                )
            })?;
            Ok(Workload::Duty {
                on: positive(source, "workload.on", on)?,
                off: w.off.unwrap_or_default(),
                duration: positive(
                    source,
                    "workload.duration",
                    w.duration.unwrap_or(Span::from_millis(10_000)),
                )?,
                threads: threads(w.threads)?,
                cpus: opt_cpus("workload.cpus", &w.cpus)?,
            })
        }
    }
}
