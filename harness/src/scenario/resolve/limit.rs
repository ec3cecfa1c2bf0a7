//! A `limit = { ... }` table (of a group, or of a change): one CFS quota in the unit the
//! user thinks in (the kernel's own, Docker's `--cpus`, Kubernetes millicores, systemd's
//! `CPUQuota=`), turned into quota and period exactly as that system does
//! (`units::cpu_limits`); a weight or a Kubernetes request; a CPU set. Each resolved
//! setting says where it came from, for `--dry-run` and run.json.

use super::fields::cpus_field;
use crate::scenario::duration::{Quota, Span};
use crate::scenario::plan::{CfsLimit, GroupLimit, Weight};
use crate::scenario::schema::{LimitSpec, NumberOrText};
use crate::scenario::ScenarioError;
use crate::units::cpu_limits::{self as units, CfsQuota, UnitError};
use fibtest::cpulist::CpuList;

/// The kernel's largest quota: bandwidth is kept in 44 bits of µs.
const MAX_QUOTA_US: u64 = (1 << 44) - 1;

/// Resolve `l`, whose fields are named `<at>.<field>` in errors (`group.limit`,
/// `change.limit`).
pub(super) fn resolve_limit(
    l: &LimitSpec,
    at: &str,
    source: &str,
    allowed: &CpuList,
) -> Result<GroupLimit, ScenarioError> {
    let err = |f: &str, why: String| ScenarioError::field(source, &format!("{at}.{f}"), why);
    let unit_err = |f: &str, e: UnitError| err(f, e.to_string());
    let quotas: Vec<&str> = [
        ("quota", l.quota.is_some()),
        ("cpus", l.cpus.is_some()),
        ("millicores", l.millicores.is_some()),
        ("cpu_quota_pct", l.cpu_quota_pct.is_some()),
    ]
    .iter()
    .filter(|(_, there)| *there)
    .map(|(n, _)| *n)
    .collect();
    if quotas.len() > 1 {
        return Err(err(
            quotas[1],
            format!(
                "give the quota once: {} say the same thing in different units",
                quotas.join(" and ")
            ),
        ));
    }
    let no_quota = |f: &str| {
        err(
            f,
            "needs a quota (quota, cpus, millicores or cpu_quota_pct) in the same table".into(),
        )
    };
    if l.period.is_some() && l.quota.is_none() {
        return Err(if quotas.is_empty() {
            no_quota("period")
        } else {
            err(
                "period",
                format!(
                    "goes with `quota`; {} has its system's period (set it with quota_period)",
                    quotas[0]
                ),
            )
        });
    }
    if l.quota_period.is_some() && !matches!(quotas.first(), Some(&"millicores" | &"cpu_quota_pct"))
    {
        return Err(err(
            "quota_period",
            "is kubelet's --cpu-cfs-quota-period (with millicores) or systemd's CPUQuotaPeriodSec= (with cpu_quota_pct); Docker's --cpus cannot be given a period (it conflicts with --cpu-period)".into(),
        ));
    }
    let mut from = Vec::new();
    let quota: Option<CfsQuota> = match quotas.first().copied() {
        None => None,
        Some("quota") => match l.quota.expect("given") {
            Quota::Max => None,
            Quota::Limit(q) => {
                let period = l.period.unwrap_or(Span::from_millis(100));
                let q = CfsQuota {
                    quota_us: q.as_micros(),
                    period_us: period.as_micros(),
                };
                q.check_kernel().map_err(|e| unit_err("quota", e))?;
                if q.quota_us > MAX_QUOTA_US {
                    return Err(err(
                        "quota",
                        format!("is above the kernel's maximum of {MAX_QUOTA_US}us"),
                    ));
                }
                Some(q)
            }
        },
        Some("cpus") => {
            let text = l.cpus.as_ref().expect("given").text();
            let nano = units::parse_docker_cpus(&text).map_err(|e| unit_err("cpus", e))?;
            let q =
                units::docker_cpus(nano, allowed.len() as u32).map_err(|e| unit_err("cpus", e))?;
            if let Some(q) = q {
                q.check_kernel().map_err(|e| unit_err("cpus", e))?;
                from.push(format!("cpus = {text} → {q} (docker run --cpus)"));
            }
            q
        }
        Some("millicores") => {
            let text = match l.millicores.as_ref().expect("given") {
                NumberOrText::Int(i) => format!("{i}m"),
                other => other.text(),
            };
            let milli = units::parse_k8s_cpu(&text).map_err(|e| unit_err("millicores", e))?;
            let period = l
                .quota_period
                .map(|p| p.as_micros())
                .unwrap_or(units::KUBELET_PERIOD_US);
            let q = units::kubelet_limit(milli, period).map_err(|e| unit_err("quota_period", e))?;
            if let Some(q) = q {
                from.push(format!(
                    "millicores = {text} → {q} (kubelet MilliCPUToQuota{})",
                    if l.quota_period.is_some() {
                        ", --cpu-cfs-quota-period"
                    } else {
                        ""
                    }
                ));
            }
            q
        }
        Some(_) => {
            let text = match l.cpu_quota_pct.as_ref().expect("given") {
                NumberOrText::Text(t) => t.clone(),
                n => format!("{}%", n.text()),
            };
            let permyriad =
                units::parse_systemd_cpu_quota(&text).map_err(|e| unit_err("cpu_quota_pct", e))?;
            let q = units::systemd_cpu_quota(permyriad, l.quota_period.map(|p| p.as_micros()));
            from.push(format!("CPUQuota={text} → {q} (systemd)"));
            Some(q)
        }
    };
    let burst_us = l.burst.map(|b| b.as_micros()).unwrap_or(0);
    if l.burst.is_some() && quotas.is_empty() {
        return Err(no_quota("burst"));
    }
    if let Some(q) = quota.filter(|q| burst_us > q.quota_us) {
        return Err(err(
            "burst",
            format!(
                "{} is larger than the quota {}: the kernel allows a burst of at most the quota",
                Span::from_micros(burst_us),
                Span::from_micros(q.quota_us)
            ),
        ));
    }
    let cfs = (!quotas.is_empty()).then(|| CfsLimit {
        quota_us: quota.map(|q| q.quota_us),
        period_us: quota
            .map(|q| q.period_us)
            .or(l.period.map(|p| p.as_micros()))
            .unwrap_or(100_000),
        burst_us,
    });
    let weight = match (l.weight, &l.request) {
        (Some(_), Some(_)) => {
            return Err(err(
                "request",
                "give a weight or a Kubernetes request, not both".into(),
            ))
        }
        (Some(w), None) => {
            if !(1..=10_000).contains(&w) {
                return Err(err(
                    "weight",
                    format!("{w} is outside 1-10000 (cgroup v2 cpu.weight; 100 is the default)"),
                ));
            }
            Some(Weight::V2(w))
        }
        (None, Some(r)) => {
            let text = match r {
                NumberOrText::Int(i) => format!("{i}m"),
                other => other.text(),
            };
            let milli = units::parse_k8s_cpu(&text).map_err(|e| unit_err("request", e))?;
            let shares = units::kubelet_request_shares(milli);
            from.push(format!(
                "request = {text} → cpu.shares {shares} (kubelet MilliCPUToShares), cpu.weight {} on v2",
                units::kubelet_shares_to_weight(shares)
            ));
            Some(Weight::Shares(shares))
        }
        (None, None) => None,
    };
    let cpuset = l
        .cpuset
        .as_deref()
        .map(|t| cpus_field(source, &format!("{at}.cpuset"), t, allowed))
        .transpose()?;
    if cfs.is_none() && weight.is_none() && cpuset.is_none() {
        return Err(ScenarioError::field(
            source,
            at,
            "sets nothing: give a quota (quota, cpus, millicores, cpu_quota_pct), a weight or request, or a cpuset",
        ));
    }
    Ok(GroupLimit {
        cfs,
        weight,
        cpuset,
        from,
    })
}
