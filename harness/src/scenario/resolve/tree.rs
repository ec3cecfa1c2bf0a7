//! Trees of groups and the changes made to them: each `[[group]]`'s `parent` resolved
//! to an earlier group (the groups put in an order where every parent comes before its
//! children, otherwise as written), loops and unknown parents refused; each
//! `[[change]]`'s group and time checked against the run; and what the kernel permits
//! but a reader should know (a child limited above its parent) said as a note.

use super::limit::resolve_limit;
use crate::scenario::duration::Span;
use crate::scenario::plan::{GroupLimit, Limiter, PlannedChange, PlannedGroup};
use crate::scenario::schema::{ChangeSpec, GroupSpec};
use crate::scenario::ScenarioError;
use fibtest::cpulist::CpuList;
use std::time::Duration;

/// Put `groups` (resolved from `specs`, in the same order) in tree order and set each
/// one's `parent`.
pub(super) fn order_tree(
    specs: &[GroupSpec],
    mut groups: Vec<PlannedGroup>,
    source: &str,
) -> Result<Vec<PlannedGroup>, ScenarioError> {
    let names: Vec<&str> = specs.iter().map(|g| g.name.as_str()).collect();
    let parent_of = |i: usize| -> Result<Option<usize>, ScenarioError> {
        match &specs[i].parent {
            None => Ok(None),
            Some(p) => names.iter().position(|n| n == p).map(Some).ok_or_else(|| {
                ScenarioError::field(
                    source,
                    "group.parent",
                    format!(
                        "group `{}` names parent `{p}`, which is no group (the groups are {})",
                        names[i],
                        names.join(", ")
                    ),
                )
            }),
        }
    };
    let parents: Vec<Option<usize>> = (0..specs.len()).map(parent_of).collect::<Result<_, _>>()?;
    // A loop: following parents from a group comes back to it.
    for start in 0..specs.len() {
        let mut at = start;
        let mut chain = vec![names[start]];
        for _ in 0..specs.len() {
            match parents[at] {
                None => break,
                Some(p) => {
                    chain.push(names[p]);
                    if p == start {
                        return Err(ScenarioError::field(
                            source,
                            "group.parent",
                            format!("the parents make a loop: {}", chain.join(" → ")),
                        ));
                    }
                    at = p;
                }
            }
        }
    }
    // Tree order: a group after its parent, otherwise as written.
    let mut order: Vec<usize> = Vec::with_capacity(specs.len());
    while order.len() < specs.len() {
        for (i, parent) in parents.iter().enumerate() {
            if !order.contains(&i) && parent.is_none_or(|p| order.contains(&p)) {
                order.push(i);
            }
        }
    }
    let mut slots: Vec<Option<PlannedGroup>> = groups.drain(..).map(Some).collect();
    let mut out = Vec::with_capacity(order.len());
    for &i in &order {
        let mut g = slots[i].take().expect("each group once");
        g.parent = parents[i].map(|p| order.iter().position(|&o| o == p).expect("ordered"));
        out.push(g);
    }
    Ok(out)
}

/// Resolve the `[[change]]` tables against the run's groups; `length` is how long the
/// run is planned to last, when that is known.
pub(super) fn resolve_changes(
    specs: &[ChangeSpec],
    groups: &[PlannedGroup],
    limiter: &Limiter,
    length: Option<Duration>,
    source: &str,
    allowed: &CpuList,
) -> Result<Vec<PlannedChange>, ScenarioError> {
    let mut out = Vec::new();
    let mut last = Span::default();
    for c in specs {
        let group = match &c.group {
            None => None,
            Some(name) => Some(groups.iter().position(|g| &g.name == name).ok_or_else(|| {
                ScenarioError::field(
                    source,
                    "change.group",
                    format!(
                        "no group `{name}` (the groups are {})",
                        groups
                            .iter()
                            .map(|g| g.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?),
        };
        if let Some(len) = length.filter(|l| c.at.0 >= *l) {
            return Err(ScenarioError::field(
                source,
                "change.at",
                format!("{} is past the run, which lasts {}", c.at, Span(len)),
            ));
        }
        if c.at < last {
            return Err(ScenarioError::field(
                source,
                "change.at",
                format!(
                    "{} comes before the change above it ({last}): list changes in time order",
                    c.at
                ),
            ));
        }
        last = c.at;
        if group.is_none() && !matches!(limiter, Limiter::Cfs(_) | Limiter::None) {
            return Err(ScenarioError::field(
                source,
                "change.group",
                format!(
                    "is needed: without it the change is to the run's own cgroup, whose limit is [limiter] (kind = \"{}\", which a change cannot set)",
                    limiter.name()
                ),
            ));
        }
        let limit = resolve_limit(&c.limit, "change.limit", source, allowed)?;
        out.push(PlannedChange {
            at: c.at,
            group,
            limit,
        });
    }
    Ok(out)
}

/// What the kernel permits but a reader should know: a group whose quota is above its
/// parent's (it can never use it).
pub(super) fn notes(groups: &[PlannedGroup], limiter: &Limiter) -> Vec<String> {
    let share = |l: &Option<GroupLimit>| {
        l.as_ref()
            .and_then(|l| l.cfs)
            .and_then(|c| c.quota_us.map(|q| q as f64 / c.period_us as f64))
    };
    let mut v = Vec::new();
    for g in groups {
        let Some(own) = share(&g.limit) else {
            continue;
        };
        let (above, name) = match g.parent {
            Some(p) => (share(&groups[p].limit), groups[p].name.clone()),
            None => (
                match limiter {
                    Limiter::Cfs(c) => c.quota_us.map(|q| q as f64 / c.period_us as f64),
                    _ => None,
                },
                "the run's cgroup ([limiter])".to_string(),
            ),
        };
        if let Some(above) = above.filter(|a| own > *a * 1.000_001) {
            v.push(format!(
                "group `{}` is limited to {own:.3} CPUs, more than its parent {name} ({above:.3}): cgroup v2 allows it (the parent's limit holds the group), cgroup v1 refuses it",
                g.name
            ));
        }
    }
    v
}

/// Why cgroup v1 would refuse the run's limits, if it would: v1 does not let a group's
/// quota (in CPUs) exceed that of its nearest limited ancestor, at the start or after
/// any change (kernel/sched/core.c, `tg_cfs_schedulable_down`: EINVAL); v2 allows it.
pub fn v1_refuses(run: &crate::scenario::plan::PlannedRun) -> Option<String> {
    let share =
        |c: &crate::scenario::plan::CfsLimit| c.quota_us.map(|q| q as f64 / c.period_us as f64);
    let top = match &run.limiter {
        Limiter::Cfs(c) => share(c),
        _ => None,
    };
    let mut shares: Vec<Option<f64>> = run
        .groups
        .iter()
        .map(|g| {
            g.limit
                .as_ref()
                .and_then(|l| l.cfs.as_ref())
                .and_then(share)
        })
        .collect();
    let mut top_now = top;
    let check = |shares: &[Option<f64>], top: Option<f64>, when: &str| -> Option<String> {
        for (g, own) in shares.iter().enumerate() {
            let Some(own) = own else { continue };
            // The nearest ancestor with a quota.
            let mut at = run.groups[g].parent;
            let above = loop {
                match at {
                    Some(p) => match shares[p] {
                        Some(s) => break Some((s, run.groups[p].name.clone())),
                        None => at = run.groups[p].parent,
                    },
                    None => break top.map(|t| (t, "the run's cgroup ([limiter])".to_string())),
                }
            };
            if let Some((a, name)) = above.filter(|(a, _)| *own > *a * 1.000_001) {
                return Some(format!(
                    "{when}group `{}` would have a quota of {own:.3} CPUs under {name} with {a:.3}: cgroup v1 refuses a quota above an ancestor's (EINVAL; v2 allows it). Order the changes so children go down first, or run it on cgroup v2 (throttlebench vm)",
                    run.groups[g].name
                ));
            }
        }
        None
    };
    if let Some(e) = check(&shares, top_now, "") {
        return Some(e);
    }
    for c in &run.changes {
        if let Some(cfs) = &c.limit.cfs {
            match c.group {
                Some(g) => shares[g] = share(cfs),
                None => top_now = share(cfs),
            }
            let when = format!("after the change at {}: ", c.at);
            if let Some(e) = check(&shares, top_now, &when) {
                return Some(e);
            }
        }
    }
    None
}
