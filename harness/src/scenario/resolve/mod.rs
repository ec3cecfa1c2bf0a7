//! Resolving a `Scenario` into a `Plan`: one entry per run (sweeps and repeats
//! expanded), limits in µs, CPU sets checked against the allowed set. Everything that
//! can be rejected is rejected here, before any process starts, with the field named.
//!
//! One file per part: the limiter table (`limiter`), a workload table (`workload`), the
//! sweep (`sweep`), the checks every field shares (`fields`), and what this machine can
//! do (`machine`); groups and the period phase are here.

mod fields;
mod limit;
mod limiter;
mod load;
mod machine;
mod sweep;
mod tree;
pub use tree::v1_refuses;
mod workload;

pub use limiter::resolve_limiter;
pub use machine::{place, PlaceError};

use crate::scenario::duration::Span;
use crate::scenario::plan::{
    Limiter, LoadPlan, PeriodPhase, Placement, Plan, PlannedGroup, PlannedRun, Workload,
};
use crate::scenario::schema::{GroupSpec, Scenario, SignalBy};
use crate::scenario::ScenarioError;
use fibtest::cpulist::CpuList;
use std::time::Duration;
use sweep::expand_sweep;
use workload::resolve_workload;

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
    let mut notes = Vec::new();
    for (config, (params, sc)) in configs.into_iter().enumerate() {
        let limiter = resolve_limiter(&sc.limiter, source, allowed)?;
        let groups = resolve_groups(&sc, &limiter, source, allowed)?;
        let phase_spec = match (&sc.workload, sc.groups.as_slice()) {
            (Some(w), _) => w.phase,
            (None, gs) => gs.iter().find_map(|g| g.workload.as_ref()?.phase),
        };
        let phase = resolve_phase(phase_spec, &limiter, source)?;
        let load = sc
            .load
            .as_ref()
            .map(|l| load::resolve_load(l, source, &groups, allowed))
            .transpose()?;
        if load.is_none() {
            if let Some(g) = groups
                .iter()
                .find(|g| matches!(g.workload, Workload::Serve { .. }))
            {
                return Err(ScenarioError::field(
                    source,
                    "load",
                    format!(
                        "group `{}` runs a server (kind = \"serve\"), which runs until its load is done: add a [load] table",
                        g.name
                    ),
                ));
            }
        }
        let length = nominal_length(&groups, load.as_ref());
        let changes =
            tree::resolve_changes(&sc.changes, &groups, &limiter, length, source, allowed)?;
        for n in tree::notes(&groups, &limiter) {
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
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
                load: load.clone(),
                changes: changes.clone(),
                placement: Placement::Cgroup,
            });
        }
    }
    Ok(Plan {
        scenario: scenario.clone(),
        source: source.to_string(),
        swept,
        runs,
        notes,
    })
}

/// How long a run is planned to last (the longest group, or its load), when every part
/// says: None when a group runs until it exits.
fn nominal_length(groups: &[PlannedGroup], load: Option<&LoadPlan>) -> Option<Duration> {
    if let Some(l) = load {
        return Some(l.warmup.0 + l.duration.0);
    }
    groups
        .iter()
        .map(|g| g.workload.nominal_duration())
        .try_fold(Duration::ZERO, |acc, d| Some(acc.max(d?)))
}

pub(super) fn check_scenario(s: &Scenario, source: &str) -> Result<(), ScenarioError> {
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
            parent: None,
            weight: None,
            limit: None,
            workload: resolve_workload(w, source, allowed)?,
        }],
        (None, gs) => {
            let groups = gs
                .iter()
                .map(|g| resolve_group(g, source, allowed))
                .collect::<Result<Vec<_>, _>>()?;
            if groups.iter().all(|g| g.workload == Workload::None) {
                return Err(ScenarioError::field(
                    source,
                    "group.workload",
                    "no group runs a workload: give at least one group a `workload`",
                ));
            }
            tree::order_tree(gs, groups, source)?
        }
    };
    // `{dir}` in a command is the scenario file's folder, so a scenario can run the
    // scripts beside it from wherever it is run.
    let mut groups = groups;
    for g in &mut groups {
        if let Workload::Command { command, .. } = &mut g.workload {
            if command.contains("{dir}") {
                let dir = std::path::Path::new(source)
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.parent().map(|d| d.display().to_string()))
                    .ok_or_else(|| {
                        ScenarioError::field(
                            source,
                            "workload.command",
                            "uses {dir}, the scenario file's folder, but the scenario is not read from a file",
                        )
                    })?;
                *command = command.replace("{dir}", &dir);
            }
        }
    }
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
        parent: None,
        weight: g.weight,
        limit: g
            .limit
            .as_ref()
            .map(|l| limit::resolve_limit(l, "group.limit", source, allowed))
            .transpose()?,
        workload: match &g.workload {
            Some(w) => resolve_workload(w, source, allowed)?,
            None => Workload::None,
        },
    })
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
