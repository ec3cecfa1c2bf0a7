//! The `[limiter]` fields of CPU-time budgets: `kind = "budget"` (for the whole run,
//! "Practical resource limiting" [Practical Limiting]) and `kind = "window"` (within a
//! rolling window, ApisCP's cumulative limit [ApisCP]), and how either ends a workload.

use super::fields::positive;
use crate::scenario::duration::Span;
use crate::scenario::plan::{
    BudgetLimit, EndPlan, GroupLimit, Limiter, PlannedGroup, PlannedRun, WindowLimit,
};
use crate::scenario::schema::{BudgetTrack, KillOrder, LimiterSpec, WindowAction};
use crate::scenario::ScenarioError;
use fibtest::cpulist::CpuList;
use std::time::Duration;

/// The most buckets a window's usage is kept in (its memory, whatever its length).
pub const MAX_BUCKETS: u64 = 100;

/// `limiter.cpu`: required, longer than 0.
fn cpu(l: &LimiterSpec, source: &str, kind: &str) -> Result<Span, ScenarioError> {
    let cpu = l.cpu.ok_or_else(|| {
        ScenarioError::field(
            source,
            "limiter.cpu",
            format!("is required for kind = \"{kind}\": the CPU time allowed, e.g. \"2s\""),
        )
    })?;
    positive(source, "limiter.cpu", cpu).map_err(|_| {
        ScenarioError::field(
            source,
            "limiter.cpu",
            "a budget of 0 allows nothing: give a CPU time longer than 0",
        )
    })
}

/// `limiter.interval`: 1 ms to 10 s, default 100 ms.
fn interval(l: &LimiterSpec, source: &str) -> Result<Span, ScenarioError> {
    let i = l.interval.unwrap_or(Span::from_millis(100));
    if i.0 < Duration::from_millis(1) || i.0 > Duration::from_secs(10) {
        return Err(ScenarioError::field(
            source,
            "limiter.interval",
            format!("{i} is outside 1ms to 10s"),
        ));
    }
    Ok(i)
}

/// `limiter.kill` and `limiter.grace` (at most 60 s, default 2 s).
fn end(l: &LimiterSpec, source: &str) -> Result<EndPlan, ScenarioError> {
    let grace = l.grace.unwrap_or(Span::from_millis(2000));
    if grace.0 > Duration::from_secs(60) {
        return Err(ScenarioError::field(
            source,
            "limiter.grace",
            format!("{grace} is longer than 60s"),
        ));
    }
    Ok(EndPlan {
        kill: l.kill.unwrap_or(KillOrder::StopFirst),
        grace,
    })
}

pub(super) fn resolve_budget(l: &LimiterSpec, source: &str) -> Result<BudgetLimit, ScenarioError> {
    Ok(BudgetLimit {
        cpu: cpu(l, source, "budget")?,
        track: l.track.unwrap_or(BudgetTrack::Tree),
        interval: interval(l, source)?,
        end: end(l, source)?,
    })
}

pub(super) fn resolve_window(
    l: &LimiterSpec,
    source: &str,
    allowed: &CpuList,
) -> Result<WindowLimit, ScenarioError> {
    let cpu = cpu(l, source, "window")?;
    let interval = interval(l, source)?;
    let window = l.window.ok_or_else(|| {
        ScenarioError::field(
            source,
            "limiter.window",
            "is required for kind = \"window\": the rolling window, e.g. \"24h\"",
        )
    })?;
    if window.0 <= interval.0 {
        return Err(ScenarioError::field(
            source,
            "limiter.window",
            format!("{window} is not longer than the interval {interval}: the window would hold no reading"),
        ));
    }
    // More than the allowed CPUs can use in a window would never be reached.
    let most = window.as_secs_f64() * allowed.len() as f64;
    if cpu.as_secs_f64() >= most {
        return Err(ScenarioError::field(
            source,
            "limiter.cpu",
            format!(
                "{cpu} per {window} is at least what {} CPU(s) can use in the window: it would never be reached",
                allowed.len()
            ),
        ));
    }
    let action = l.action.unwrap_or(WindowAction::Throttle);
    let period = l.period.unwrap_or(Span::from_millis(100));
    if period.0 < Duration::from_millis(1) || period.0 > Duration::from_secs(1) {
        return Err(ScenarioError::field(
            source,
            "limiter.period",
            format!("{period} is outside the kernel's range of 1ms to 1s"),
        ));
    }
    let floor = l.floor.unwrap_or(0.05);
    if action == WindowAction::Stop && (l.floor.is_some() || l.period.is_some()) {
        let field = if l.floor.is_some() { "floor" } else { "period" };
        return Err(ScenarioError::field(
            source,
            &format!("limiter.{field}"),
            "only applies to action = \"throttle\"",
        ));
    }
    if action == WindowAction::Throttle && (l.kill.is_some() || l.grace.is_some()) {
        let field = if l.kill.is_some() { "kill" } else { "grace" };
        return Err(ScenarioError::field(
            source,
            &format!("limiter.{field}"),
            "only applies to action = \"stop\"",
        ));
    }
    if !(floor > 0.0 && floor <= 1.0) {
        return Err(ScenarioError::field(
            source,
            "limiter.floor",
            format!("{floor} is not a share of one CPU in (0, 1]"),
        ));
    }
    if floor * (period.as_micros() as f64) < 1000.0 {
        return Err(ScenarioError::field(
            source,
            "limiter.floor",
            "floor x period must be at least 1ms, the kernel's smallest quota",
        ));
    }
    if action == WindowAction::Throttle && floor * window.as_secs_f64() >= cpu.as_secs_f64() {
        return Err(ScenarioError::field(
            source,
            "limiter.floor",
            format!(
                "{floor} CPU for {window} is at least the budget {cpu}: held to the floor, the workload would use its budget anyway and never be let go"
            ),
        ));
    }
    let buckets = (window.as_micros() / interval.as_micros()).clamp(1, MAX_BUCKETS) as u32;
    Ok(WindowLimit {
        cpu,
        window,
        interval,
        buckets,
        action,
        floor,
        period_us: period.as_micros(),
        end: end(l, source)?,
    })
}

/// A tree or group budget follows one workload's processes: with several groups only the
/// cgroup's count covers them all.
pub(super) fn check_groups(
    limiter: &Limiter,
    groups: &[PlannedGroup],
    source: &str,
) -> Result<(), ScenarioError> {
    match limiter {
        Limiter::Budget(b) if b.track != BudgetTrack::Cgroup && groups.len() > 1 => {
            Err(ScenarioError::field(
                source,
                "limiter.track",
                format!(
                    "\"{}\" follows one workload's processes, and there are {} groups: use track = \"cgroup\"",
                    b.track.name(),
                    groups.len()
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Why cgroup v1 would refuse a window's throttle, if it would: the floor's quota goes on
/// the run's cgroup, above every group's, and v1 refuses a quota below one set under it
/// (kernel/sched/core.c, `tg_cfs_schedulable_down`: EINVAL), at the moment the window
/// fills. A group's own quota (at the start or after a change) above the floor is
/// refused here, before anything starts; v2 allows it.
pub fn window_v1_refuses(run: &PlannedRun) -> Option<String> {
    let Limiter::Window(w) = &run.limiter else {
        return None;
    };
    if w.action != WindowAction::Throttle {
        return None;
    }
    let floor = (w.floor * w.period_us as f64).round().max(1000.0) / w.period_us as f64;
    let own = |l: &GroupLimit| {
        l.cfs
            .and_then(|c| c.quota_us.map(|q| q as f64 / c.period_us as f64))
    };
    let starts = run
        .groups
        .iter()
        .filter_map(|g| Some((g.name.as_str(), own(g.limit.as_ref()?)?, String::new())));
    let changes = run.changes.iter().filter_map(|c| {
        let g = &run.groups[c.group?];
        Some((
            g.name.as_str(),
            own(&c.limit)?,
            format!(" after the change at {}", c.at),
        ))
    });
    starts
        .chain(changes)
        .find(|(_, cpus, _)| *cpus > floor * 1.000_001)
        .map(|(name, cpus, when)| {
            format!(
                "group `{name}` has a quota of {cpus:.3} CPUs{when}, above the window limiter's floor ({floor:.3} CPUs, put on the run's cgroup when the window fills): cgroup v1 refuses a quota below one set under it (EINVAL; v2 allows it). Give the group at most the floor, or run it on cgroup v2 (throttlebench vm)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{parse, resolve};

    fn run(group_limit: &str, change: &str) -> PlannedRun {
        let text = format!(
            "name = \"w\"\n[limiter]\nkind = \"window\"\ncpu = \"3s\"\nwindow = \"10s\"\nfloor = 0.1\n[[group]]\nname = \"a\"\n{group_limit}workload = {{ kind = \"duty\", on = \"20s\" }}\n{change}"
        );
        let s = parse(&text, "w.toml").unwrap();
        let mut p = resolve(&s, "w.toml", &"0-1".parse().unwrap()).unwrap();
        p.runs.remove(0)
    }

    #[test]
    fn a_group_quota_above_the_windows_floor_is_refused_on_v1() {
        assert_eq!(window_v1_refuses(&run("", "")), None);
        assert_eq!(
            window_v1_refuses(&run("limit = { cpus = 0.1 }\n", "")),
            None
        );
        let why = window_v1_refuses(&run("limit = { cpus = 0.5 }\n", "")).unwrap();
        assert!(
            why.contains("group `a` has a quota of 0.500 CPUs,"),
            "{why}"
        );
        assert!(why.contains("floor (0.100 CPUs"), "{why}");
        let change = "[[change]]\nat = \"5s\"\ngroup = \"a\"\nlimit = { cpus = 1 }\n";
        let why = window_v1_refuses(&run("limit = { cpus = 0.1 }\n", change)).unwrap();
        assert!(why.contains("1.000 CPUs after the change at 5s"), "{why}");
    }
}
