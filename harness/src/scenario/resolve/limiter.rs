//! The `[limiter]` table: which fields apply to each kind, their ranges, and the kernel's
//! limits on CFS settings.

use super::fields::{cpus_field, positive, reject_unused};
use crate::scenario::duration::{Quota, Span};
use crate::scenario::plan::{CfsLimit, CreditModel, DutyControl, Limiter};
use crate::scenario::schema::{LimiterKind, LimiterSpec, SignalBy};
use crate::scenario::ScenarioError;
use fibtest::cpulist::CpuList;
use std::time::Duration;

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
            crate::scenario::template::check_template(&template)
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
            Ok(Limiter::Credits(CreditModel {
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
