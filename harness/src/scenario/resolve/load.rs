//! The `[load]` table: the target (checked with a placeholder port), the schedule, and
//! which group's service it loads; `{port}` must reach that service.

use super::fields::{cpus_field, positive};
use crate::load::Target;
use crate::scenario::duration::Span;
use crate::scenario::plan::{LoadPlan, PlannedGroup, Workload};
use crate::scenario::schema::LoadTable;
use crate::scenario::ScenarioError;
use fibtest::cpulist::CpuList;

/// Resolve `l` for run groups `groups`.
pub(super) fn resolve_load(
    l: &LoadTable,
    source: &str,
    groups: &[PlannedGroup],
    allowed: &CpuList,
) -> Result<LoadPlan, ScenarioError> {
    let field = |f: &str, why: String| ScenarioError::field(source, &format!("load.{f}"), why);
    // Checked with a port of 1 in place of {port}: the port itself is picked at run time.
    let target = Target::with_port(&l.target, 1).map_err(|e| {
        field(
            "target",
            format!(
                "`{}`: {} (write http://127.0.0.1:{{port}}/path or tcp://127.0.0.1:{{port}})",
                l.target, e.why
            ),
        )
    })?;
    if !l.headers.is_empty() && l.target.starts_with("tcp://") {
        return Err(field(
            "headers",
            "a tcp:// target sends lines, not HTTP headers".into(),
        ));
    }
    target
        .render(None, &l.headers)
        .map_err(|e| field("headers", e.why))?;
    let picks_port = l.target.contains("{port}");
    if !(l.rate.is_finite() && l.rate > 0.0 && l.rate <= 1e7) {
        return Err(field(
            "rate",
            format!(
                "{} is not a rate between 0 and 10,000,000 requests/s",
                l.rate
            ),
        ));
    }
    let connections = l.connections.unwrap_or(1);
    if connections == 0 || connections > 10_000 {
        return Err(field("connections", "must be between 1 and 10000".into()));
    }
    if l.threads == Some(0) {
        return Err(field("threads", "must be at least 1".into()));
    }
    let group = match &l.group {
        None => 0,
        Some(name) => groups.iter().position(|g| &g.name == name).ok_or_else(|| {
            field(
                "group",
                format!(
                    "no group `{name}` (the groups are {})",
                    groups
                        .iter()
                        .map(|g| g.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?,
    };
    match &groups[group].workload {
        Workload::Serve { protocol, .. } => {
            if !picks_port {
                return Err(field(
                    "target",
                    "a `serve` workload listens on the port the harness picks: write `{port}` in the target".into(),
                ));
            }
            let line = l.target.starts_with("tcp://");
            if line != (*protocol == crate::scenario::plan::ServeProtocol::Line) {
                return Err(field(
                    "target",
                    format!(
                        "the server speaks {}; the target must start with {}",
                        protocol.name(),
                        if line { "http://" } else { "tcp://" }
                    ),
                ));
            }
        }
        Workload::Command { command, .. } => {
            if picks_port && !command.contains("{port}") {
                return Err(ScenarioError::field(
                    source,
                    "workload.command",
                    "the load's target has `{port}`: the command must use `{port}` too, to listen where the load connects",
                ));
            }
        }
        w => {
            return Err(field(
                "group",
                format!(
                    "the {} workload answers no requests: load a `serve` workload or a `command` that listens",
                    w.name()
                ),
            ))
        }
    }
    let span = |f: &str, v: Option<Span>, default: Span| -> Result<Span, ScenarioError> {
        positive(source, &format!("load.{f}"), v.unwrap_or(default))
    };
    let body = match &l.body {
        Some(b) if l.target.starts_with("tcp://") && b.contains('\n') => {
            return Err(field("body", "the line to send holds a line break".into()))
        }
        b => b.clone(),
    };
    Ok(LoadPlan {
        target: l.target.clone(),
        rate: l.rate,
        poisson: l.poisson.then_some(l.seed.unwrap_or(1)),
        connections,
        threads: l.threads,
        cpus: l
            .cpus
            .as_deref()
            .map(|t| cpus_field(source, "load.cpus", t, allowed))
            .transpose()?,
        duration: span("duration", l.duration, Span::from_millis(10_000))?,
        warmup: l.warmup.unwrap_or_default(),
        timeout: span("timeout", l.timeout, Span::from_millis(2_000))?,
        port_wait: span("port_wait", l.port_wait, Span::from_millis(10_000))?,
        body,
        headers: l.headers.clone(),
        group,
    })
}
