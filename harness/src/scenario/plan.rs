//! Resolving a `Scenario` into a `Plan`: one entry per run (sweeps and repeats
//! expanded), limits in µs, CPU sets checked against the allowed set.
//!
//! Everything that can be rejected is rejected here, before any process starts; once a
//! `Plan` exists, downstream code does not re-check it.

use super::duration::{Quota, Span};
use super::schema::{
    GroupSpec, LimiterKind, LimiterSpec, Scenario, SignalBy, WorkloadKind, WorkloadSpec,
};
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
    /// The workloads that run at once, each in its own cgroup: one ("main") unless the
    /// scenario has `[[group]]` tables.
    pub groups: Vec<PlannedGroup>,
    /// Where in the CFS period the workload starts, when the scenario says.
    pub phase: Option<PeriodPhase>,
}

/// One workload of a run and its cgroup's settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedGroup {
    /// "main" for a scenario without groups.
    pub name: String,
    /// CPU weight (v2 units), for the weight limiter.
    pub weight: Option<u32>,
    pub workload: Workload,
}

impl PlannedRun {
    /// The first group's workload (the only one unless the scenario has groups).
    pub fn workload(&self) -> &Workload {
        &self.groups[0].workload
    }

    /// How long the run should take at most under its limiter (the longest group).
    pub fn expected_duration(&self) -> Duration {
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
    Credits(crate::limiter::credits::CreditModel),
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
        slice: Span,
    },
    /// `sh -c command`; stopped after `duration` if it has not exited by then.
    Command {
        command: String,
        duration: Option<Span>,
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

    /// CPUs the workload pins itself to, if it pins.
    pub fn cpus(&self) -> Option<CpuList> {
        match self {
            Workload::Requests { cpus, .. } | Workload::Duty { cpus, .. } => cpus.clone(),
            Workload::Command { .. } | Workload::Entropy { .. } => None,
            Workload::Steal { cpus, .. } => cpus.clone(),
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
            Workload::Steal { duration, .. } => duration.0 + Duration::from_secs(1),
            // The FIPS pass reads each source for at most 2 s after the supply measurements.
            Workload::Entropy {
                duration, sources, ..
            } => duration.0 + Duration::from_secs(2 * sources.len() as u64 + 2),
            Workload::Command { duration, .. } => {
                duration.map(|d| d.0).unwrap_or(Duration::from_secs(600))
            }
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
        let limiter = resolve_limiter(&sc.limiter, source, allowed)?;
        let groups = resolve_groups(&sc, &limiter, source, allowed)?;
        let phase_spec = match (&sc.workload, sc.groups.as_slice()) {
            (Some(w), _) => w.phase,
            (None, gs) => gs.iter().find_map(|g| g.workload.phase),
        };
        let phase = resolve_phase(phase_spec, &limiter, source)?;
        for repeat in 0..scenario.repeats {
            runs.push(PlannedRun {
                index: runs.len(),
                config,
                repeat,
                params: params.clone(),
                sample_interval: sc.sample_interval,
                limiter: limiter.clone(),
                groups: groups.clone(),
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
            ["limiter" | "workload", _] | ["limiter" | "workload" | "sample_interval"]
        );
        if !settable {
            return Err(ScenarioError::field(
                source,
                &field,
                "a swept field is `limiter.<field>`, `workload.<field>`, a whole `limiter` or `workload` table, or `sample_interval`",
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
        // A whole table: its fields as `k=v` joined by spaces ("kind=cfs quota=40ms").
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// Reject the fields written in a table that do not apply to its `kind`.
fn reject_unused(
    source: &str,
    section: &str,
    kind: &str,
    present: &[(&str, bool)],
    applies: &[&str],
) -> Result<(), ScenarioError> {
    match present
        .iter()
        .find(|(name, there)| *there && !applies.contains(name))
    {
        Some((name, _)) => Err(ScenarioError::field(
            source,
            &format!("{section}.{name}"),
            format!("does not apply to {section}.kind = \"{kind}\""),
        )),
        None => Ok(()),
    }
}

/// The groups of a run: the `[[group]]` tables, or the `[workload]` as group "main".
fn resolve_groups(
    sc: &Scenario,
    limiter: &Limiter,
    source: &str,
    allowed: &CpuList,
) -> Result<Vec<PlannedGroup>, ScenarioError> {
    let groups: Vec<PlannedGroup> = match (&sc.workload, sc.groups.as_slice()) {
        (Some(_), [_, ..]) => {
            return Err(ScenarioError::field(
                source,
                "workload",
                "give either a [workload] table or [[group]] tables, not both",
            ))
        }
        (None, []) => {
            return Err(ScenarioError::field(
                source,
                "workload",
                "is required (or [[group]] tables, each with its workload)",
            ))
        }
        (Some(w), []) => vec![PlannedGroup {
            name: "main".into(),
            weight: None,
            workload: resolve_workload(w, source, allowed)?,
        }],
        (None, gs) => gs
            .iter()
            .map(|g| resolve_group(g, source, allowed))
            .collect::<Result<_, _>>()?,
    };
    let mut names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(ScenarioError::field(
            source,
            "group.name",
            "group names must differ",
        ));
    }
    let weighted = groups.iter().any(|g| g.weight.is_some());
    let mut groups = groups;
    if *limiter == Limiter::Weight {
        for g in &mut groups {
            g.weight.get_or_insert(100);
        }
    }
    if weighted && *limiter != Limiter::Weight {
        return Err(ScenarioError::field(
            source,
            "group.weight",
            "weights need limiter.kind = \"weight\"",
        ));
    }
    if *limiter == Limiter::Weight && sc.groups.len() < 2 {
        return Err(ScenarioError::field(
            source,
            "limiter.kind",
            "\"weight\" needs two or more [[group]] tables that compete",
        ));
    }
    let by_name = matches!(
        limiter,
        Limiter::Signal {
            by: SignalBy::Name,
            name: None,
            ..
        }
    );
    if by_name && !matches!(groups[0].workload, Workload::Command { .. }) && groups.len() > 1 {
        return Err(ScenarioError::field(
            source,
            "limiter.name",
            "by = \"name\" with several groups needs the name to match",
        ));
    }
    Ok(groups)
}

fn resolve_group(
    g: &GroupSpec,
    source: &str,
    allowed: &CpuList,
) -> Result<PlannedGroup, ScenarioError> {
    let ok_name = !g.name.is_empty()
        && g.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c));
    if !ok_name {
        return Err(ScenarioError::field(
            source,
            "group.name",
            format!(
                "`{}` cannot name a cgroup: use letters, digits, '_' and '-'",
                g.name
            ),
        ));
    }
    if let Some(w) = g.weight {
        if !(1..=10_000).contains(&w) {
            return Err(ScenarioError::field(
                source,
                "group.weight",
                format!(
                    "{w} is outside 1-10000 (the cgroup v2 cpu.weight range; 100 is the default)"
                ),
            ));
        }
    }
    Ok(PlannedGroup {
        name: g.name.clone(),
        weight: g.weight,
        workload: resolve_workload(&g.workload, source, allowed)?,
    })
}

/// freezer and signal: fixed on/off, or a target share with a cycle length.
fn resolve_duty(l: &LimiterSpec, source: &str) -> Result<DutyControl, ScenarioError> {
    let kind = l.kind.name();
    match (l.share, l.on, l.off) {
        (Some(share), None, None) => {
            if !(share > 0.0 && share <= 1.0) {
                return Err(ScenarioError::field(
                    source,
                    "limiter.share",
                    format!("{share} is not a share of one CPU in (0, 1]"),
                ));
            }
            let cycle = l.cycle.unwrap_or(Span::from_millis(100));
            if cycle.0 < Duration::from_millis(10) {
                return Err(ScenarioError::field(
                    source,
                    "limiter.cycle",
                    "must be at least 10ms: shorter cycles are mostly signal and wake-up latency",
                ));
            }
            Ok(DutyControl::Closed { share, cycle })
        }
        (None, Some(on), off) => {
            if l.cycle.is_some() {
                return Err(ScenarioError::field(
                    source,
                    "limiter.cycle",
                    "is for the closed loop (share); with on/off the cycle is on + off",
                ));
            }
            Ok(DutyControl::Open {
                on: positive(source, "limiter.on", on)?,
                off: off.unwrap_or_default(),
            })
        }
        (Some(_), _, _) => Err(ScenarioError::field(
            source,
            "limiter.share",
            format!("kind = \"{kind}\" takes either share (closed loop) or on/off (open loop), not both"),
        )),
        (None, None, _) => Err(ScenarioError::field(
            source,
            "limiter.share",
            format!("kind = \"{kind}\" needs share (closed loop) or on and off (open loop)"),
        )),
    }
}

pub fn resolve_limiter(
    l: &LimiterSpec,
    source: &str,
    allowed: &CpuList,
) -> Result<Limiter, ScenarioError> {
    let kind = l.kind.name();
    let present = [
        ("quota", l.quota.is_some()),
        ("period", l.period.is_some()),
        ("burst", l.burst.is_some()),
        ("by", l.by.is_some()),
        ("name", l.name.is_some()),
        ("share", l.share.is_some()),
        ("cycle", l.cycle.is_some()),
        ("on", l.on.is_some()),
        ("off", l.off.is_some()),
        ("cpus", l.cpus.is_some()),
        ("command", l.command.is_some()),
        ("baseline", l.baseline.is_some()),
        ("balance_max", l.balance_max.is_some()),
        ("balance_start", l.balance_start.is_some()),
        ("tick", l.tick.is_some()),
    ];
    let applies: &[&str] = match l.kind {
        LimiterKind::None | LimiterKind::Weight => &[],
        LimiterKind::Cfs => &["quota", "period", "burst"],
        LimiterKind::Cpuset => &["cpus"],
        LimiterKind::Freezer => &["share", "cycle", "on", "off"],
        LimiterKind::Signal => &["by", "name", "share", "cycle", "on", "off"],
        LimiterKind::Command => &["command", "share"],
        LimiterKind::Credits => &["baseline", "balance_max", "balance_start", "period", "tick"],
    };
    reject_unused(source, "limiter", kind, &present, applies)?;
    match l.kind {
        LimiterKind::None | LimiterKind::Weight => Ok(if l.kind == LimiterKind::None {
            Limiter::None
        } else {
            Limiter::Weight
        }),
        LimiterKind::Cpuset => {
            let text = l.cpus.as_deref().ok_or_else(|| {
                ScenarioError::field(source, "limiter.cpus", "is required for kind = \"cpuset\"")
            })?;
            Ok(Limiter::Cpuset {
                cpus: cpus_field(source, "limiter.cpus", text, allowed)?,
            })
        }
        LimiterKind::Freezer => Ok(Limiter::Freezer {
            duty: resolve_duty(l, source)?,
        }),
        LimiterKind::Signal => {
            let by = l.by.ok_or_else(|| {
                ScenarioError::field(
                    source,
                    "limiter.by",
                    "is required for kind = \"signal\": \"name\", \"group\" or \"tree\"",
                )
            })?;
            if l.name.is_some() && by != SignalBy::Name {
                return Err(ScenarioError::field(
                    source,
                    "limiter.name",
                    "only applies to by = \"name\"",
                ));
            }
            Ok(Limiter::Signal {
                by,
                duty: resolve_duty(l, source)?,
                name: l.name.clone(),
            })
        }
        LimiterKind::Command => {
            let template = l.command.clone().ok_or_else(|| {
                ScenarioError::field(
                    source,
                    "limiter.command",
                    "is required for kind = \"command\"",
                )
            })?;
            crate::limiter::command::check_template(&template)
                .map_err(|e| ScenarioError::field(source, "limiter.command", e))?;
            if (template.contains("{percent}") || template.contains("{share}")) && l.share.is_none()
            {
                return Err(ScenarioError::field(
                    source,
                    "limiter.share",
                    "the command uses {percent} or {share}: give share",
                ));
            }
            Ok(Limiter::Command {
                template,
                share: l.share,
            })
        }
        LimiterKind::Credits => {
            let baseline = l.baseline.ok_or_else(|| {
                ScenarioError::field(
                    source,
                    "limiter.baseline",
                    "is required for kind = \"credits\" (e.g. 0.1)",
                )
            })?;
            if !(baseline > 0.0 && baseline < 1.0) {
                return Err(ScenarioError::field(
                    source,
                    "limiter.baseline",
                    format!("{baseline} is not a share of one CPU in (0, 1)"),
                ));
            }
            let max = l.balance_max.ok_or_else(|| {
                ScenarioError::field(
                    source,
                    "limiter.balance_max",
                    "is required for kind = \"credits\" (e.g. \"30s\")",
                )
            })?;
            let start = l.balance_start.unwrap_or(max);
            if start > max {
                return Err(ScenarioError::field(
                    source,
                    "limiter.balance_start",
                    format!("{start} is more than balance_max {max}"),
                ));
            }
            let period = l.period.unwrap_or(Span::from_millis(100));
            if baseline * (period.as_micros() as f64) < 1000.0 {
                return Err(ScenarioError::field(
                    source,
                    "limiter.period",
                    "baseline x period must be at least 1ms, the kernel's smallest quota",
                ));
            }
            let tick = l.tick.unwrap_or(Span::from_millis(10));
            if tick.0 < Duration::from_millis(1) || tick.0 > Duration::from_secs(1) {
                return Err(ScenarioError::field(
                    source,
                    "limiter.tick",
                    format!("{tick} is outside 1ms to 1s"),
                ));
            }
            Ok(Limiter::Credits(crate::limiter::credits::CreditModel {
                baseline,
                balance_max_s: max.as_secs_f64(),
                balance_start_s: start.as_secs_f64(),
                tick_ns: tick.0.as_nanos() as u64,
                period_us: period.as_micros(),
            }))
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
                    // The kernel keeps bandwidth in 44 bits of µs (MAX_BW in
                    // kernel/sched/core.c): a larger quota is EINVAL when written.
                    const MAX_QUOTA_US: u64 = (1 << 44) - 1;
                    if q.as_micros() > MAX_QUOTA_US {
                        return Err(ScenarioError::field(
                            source,
                            "limiter.quota",
                            format!(
                                "{q} is above the kernel's maximum of {MAX_QUOTA_US}us (about 203 days); use \"max\" for no limit"
                            ),
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
    let present = [
        ("work", w.work.is_some()),
        ("count", w.count.is_some()),
        ("interval", w.interval.is_some()),
        ("threads", w.threads.is_some()),
        ("cpus", w.cpus.is_some()),
        ("fast", w.fast.is_some()),
        ("slow", w.slow.is_some()),
        ("fast_cpus", w.fast_cpus.is_some()),
        ("slow_cpus", w.slow_cpus.is_some()),
        ("slow_steps", w.slow_steps.is_some()),
        ("slow_sleep", w.slow_sleep.is_some()),
        ("duration", w.duration.is_some()),
        ("on", w.on.is_some()),
        ("off", w.off.is_some()),
        ("slice", w.slice.is_some()),
        ("command", w.command.is_some()),
        ("phase", w.phase.is_some()),
        ("threshold", w.threshold.is_some()),
        ("sources", w.sources.is_some()),
        ("sizes", w.sizes.is_some()),
        ("readers", w.readers.is_some()),
    ];
    let applies: &[&str] = match w.kind {
        WorkloadKind::Requests => &["work", "count", "interval", "threads", "cpus", "phase"],
        WorkloadKind::Fibtest => &[
            "fast",
            "slow",
            "fast_cpus",
            "slow_cpus",
            "slow_steps",
            "slow_sleep",
            "duration",
            "phase",
        ],
        WorkloadKind::Duty => &["on", "off", "duration", "threads", "cpus", "slice", "phase"],
        WorkloadKind::Command => &["command", "duration"],
        WorkloadKind::Steal => &["duration", "cpus", "threshold"],
        WorkloadKind::Entropy => &["duration", "sources", "sizes", "readers"],
    };
    reject_unused(source, "workload", kind, &present, applies)?;
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
                slice: positive(
                    source,
                    "workload.slice",
                    w.slice.unwrap_or(Span::from_millis(100)),
                )?,
            })
        }
        WorkloadKind::Steal => Ok(Workload::Steal {
            duration: positive(
                source,
                "workload.duration",
                w.duration.unwrap_or(Span::from_millis(10_000)),
            )?,
            cpus: opt_cpus("workload.cpus", &w.cpus)?,
            threshold: positive(
                source,
                "workload.threshold",
                w.threshold.unwrap_or(Span::from_micros(5)),
            )?,
        }),
        WorkloadKind::Entropy => {
            use crate::probe::entropy::Source;
            let sources = match &w.sources {
                None => Source::ALL.to_vec(),
                Some(v) => v
                    .iter()
                    .map(|name| {
                        Source::ALL
                            .into_iter()
                            .find(|s| s.name() == name)
                            .ok_or_else(|| {
                                ScenarioError::field(
                                    source,
                                    "workload.sources",
                                    format!("unknown source \"{name}\" (getrandom, urandom, random, hwrng)"),
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            };
            let nonempty = |field: &str, empty: bool| {
                if empty {
                    Err(ScenarioError::field(
                        source,
                        field,
                        "needs at least one value, none of them 0",
                    ))
                } else {
                    Ok(())
                }
            };
            nonempty("workload.sources", sources.is_empty())?;
            let sizes = w.sizes.clone().unwrap_or(vec![32, 4096, 65536]);
            nonempty("workload.sizes", sizes.is_empty() || sizes.contains(&0))?;
            let readers = w.readers.clone().unwrap_or(vec![1, 4]);
            nonempty(
                "workload.readers",
                readers.is_empty() || readers.contains(&0),
            )?;
            Ok(Workload::Entropy {
                duration: positive(
                    source,
                    "workload.duration",
                    w.duration.unwrap_or(Span::from_millis(10_000)),
                )?,
                sources,
                sizes,
                readers,
            })
        }
        WorkloadKind::Command => {
            let command = w
                .command
                .clone()
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| {
                    ScenarioError::field(
                        source,
                        "workload.command",
                        "is required for kind = \"command\" (run with sh -c)",
                    )
                })?;
            Ok(Workload::Command {
                command,
                duration: w
                    .duration
                    .map(|d| positive(source, "workload.duration", d))
                    .transpose()?,
            })
        }
    }
}
