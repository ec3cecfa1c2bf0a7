//! `limiter.kind = "runtime"`: a real OCI runtime (runc, crun, podman) starts the
//! workload in a container with the limit in its config. The limit is written as the
//! `cfs` limiter's (`quota`, `period`) or as a `limit = { ... }` table in any unit a
//! group's limit takes (`cpus`, `millicores`, `cpu_quota_pct`, `weight`, `request`),
//! resolved the same way (`limit.rs`). What a container run cannot do (several groups,
//! a load, changes mid-run, a probe) is rejected here with the field named; whether the
//! runtime is installed is checked against the machine before the first run
//! (`runner::container::check_runtimes`).

use super::limit::resolve_limit;
use crate::scenario::plan::{Limiter, PlannedGroup, Workload};
use crate::scenario::schema::{LimitSpec, LimiterSpec, Scenario};
use crate::scenario::ScenarioError;
use fibtest::cpulist::CpuList;

/// The runtimes a scenario can name.
pub const RUNTIMES: [&str; 3] = ["runc", "crun", "podman"];

pub(super) fn resolve_runtime(
    l: &LimiterSpec,
    source: &str,
    allowed: &CpuList,
) -> Result<Limiter, ScenarioError> {
    let runtime = l.runtime.clone().ok_or_else(|| {
        ScenarioError::field(
            source,
            "limiter.runtime",
            "is required for kind = \"runtime\": \"runc\", \"crun\" or \"podman\"",
        )
    })?;
    if !RUNTIMES.contains(&runtime.as_str()) {
        return Err(ScenarioError::field(
            source,
            "limiter.runtime",
            format!(
                "`{runtime}` is not a runtime this suite runs: \"runc\", \"crun\" or \"podman\""
            ),
        ));
    }
    let direct = l.quota.is_some() || l.period.is_some() || l.burst.is_some();
    let (spec, at) = match (&l.limit, direct) {
        (Some(_), true) => {
            return Err(ScenarioError::field(
                source,
                "limiter.limit",
                "give the limit once: quota/period/burst or a limit table, not both",
            ))
        }
        (Some(t), false) => (t.clone(), "limiter.limit"),
        (None, true) => (
            LimitSpec {
                quota: l.quota,
                period: l.period,
                burst: l.burst,
                ..LimitSpec::default()
            },
            "limiter",
        ),
        (None, false) => {
            return Err(ScenarioError::field(
                source,
                "limiter.quota",
                "kind = \"runtime\" needs a limit: quota (and period), or limit = { cpus = 0.5 } (millicores, cpu_quota_pct, weight, request)",
            ))
        }
    };
    let limit = resolve_limit(&spec, at, source, allowed)?;
    if limit.cpuset.is_some() {
        return Err(ScenarioError::field(
            source,
            &format!("{at}.cpuset"),
            "is not passed to runtimes: the container's config gets quota, period and shares",
        ));
    }
    if limit.cfs.is_some_and(|c| c.burst_us > 0) {
        return Err(ScenarioError::field(
            source,
            &format!("{at}.burst"),
            "is not passed to runtimes: the container's config gets quota, period and shares",
        ));
    }
    Ok(Limiter::Runtime { runtime, limit })
}

/// A runtime run starts one workload of this program in one container: no `[[group]]`,
/// `[load]` or `[[change]]`, and a workload this program generates (fibtest, requests,
/// duty), which is copied into the container's root file system.
pub(super) fn check_runtime_run(
    sc: &Scenario,
    limiter: &Limiter,
    groups: &[PlannedGroup],
    source: &str,
) -> Result<(), ScenarioError> {
    if !matches!(limiter, Limiter::Runtime { .. }) {
        return Ok(());
    }
    let refuse = |field: &str, why: &str| Err(ScenarioError::field(source, field, why));
    if !sc.groups.is_empty() {
        return refuse(
            "group",
            "limiter.kind = \"runtime\" runs one [workload] in one container: no [[group]] tables",
        );
    }
    if sc.load.is_some() {
        return refuse(
            "load",
            "limiter.kind = \"runtime\" has no network in its container: no [load]",
        );
    }
    if !sc.changes.is_empty() {
        return refuse(
            "change",
            "limiter.kind = \"runtime\": the container's limit is set once, by the runtime; no [[change]]",
        );
    }
    match groups.first().map(|g| &g.workload) {
        Some(Workload::Fibtest { .. } | Workload::Requests { .. } | Workload::Duty { .. }) => {
            Ok(())
        }
        Some(w) => Err(ScenarioError::field(
            source,
            "workload.kind",
            format!(
                "\"{}\" cannot run in a runtime's container; fibtest, requests and duty can (the container holds busybox and this program only)",
                w.name()
            ),
        )),
        None => refuse("workload", "is required"),
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::plan::{CfsLimit, Limiter, Weight};
    use crate::scenario::{parse, resolve, Plan, ScenarioError};

    fn plan(limiter: &str, rest: &str) -> Result<Plan, ScenarioError> {
        let text = format!(
            "name = \"t\"\n[limiter]\nkind = \"runtime\"\n{limiter}\n{rest}\n[workload]\nkind = \"duty\"\non = \"1s\"\nduration = \"1s\"\n"
        );
        let s = parse(&text, "t.toml")?;
        resolve(&s, "t.toml", &"0-1".parse().unwrap())
    }

    fn field(r: Result<Plan, ScenarioError>) -> String {
        r.unwrap_err().field.unwrap_or_default()
    }

    #[test]
    fn quota_and_period_are_the_cfs_limiters() {
        let p = plan(
            "runtime = \"crun\"\nquota = \"40ms\"\nperiod = \"50ms\"",
            "",
        )
        .unwrap();
        let Limiter::Runtime { runtime, limit } = &p.runs[0].limiter else {
            panic!("{:?}", p.runs[0].limiter);
        };
        assert_eq!(runtime, "crun");
        assert_eq!(
            limit.cfs,
            Some(CfsLimit {
                quota_us: Some(40_000),
                period_us: 50_000,
                burst_us: 0
            })
        );
        assert_eq!(p.runs[0].limiter.cap_cpus(), Some(0.8));
    }

    #[test]
    fn a_limit_table_takes_the_units_a_groups_limit_takes() {
        let p = plan("runtime = \"runc\"\nlimit = { cpus = 0.5 }", "").unwrap();
        let Limiter::Runtime { limit, .. } = &p.runs[0].limiter else {
            panic!();
        };
        assert_eq!(limit.cfs.and_then(|c| c.quota_us), Some(50_000));
        assert!(
            limit.from[0].contains("docker run --cpus"),
            "{:?}",
            limit.from
        );
        let p = plan(
            "runtime = \"runc\"\nlimit = { millicores = 250, request = 100 }",
            "",
        )
        .unwrap();
        let Limiter::Runtime { limit, .. } = &p.runs[0].limiter else {
            panic!();
        };
        assert_eq!(limit.cfs.and_then(|c| c.quota_us), Some(25_000));
        assert_eq!(limit.weight, Some(Weight::Shares(102)));
    }

    #[test]
    fn each_mistake_names_its_field() {
        assert_eq!(
            field(plan("runtime = \"docker\"\nquota = \"40ms\"", "")),
            "limiter.runtime"
        );
        assert_eq!(field(plan("quota = \"40ms\"", "")), "limiter.runtime");
        assert_eq!(field(plan("runtime = \"runc\"", "")), "limiter.quota");
        assert_eq!(
            field(plan(
                "runtime = \"runc\"\nquota = \"40ms\"\nlimit = { cpus = 0.4 }",
                ""
            )),
            "limiter.limit"
        );
        assert_eq!(
            field(plan(
                "runtime = \"runc\"\nquota = \"40ms\"\nburst = \"10ms\"",
                ""
            )),
            "limiter.burst"
        );
        assert_eq!(
            field(plan(
                "runtime = \"runc\"\nlimit = { cpus = 0.4, cpuset = \"0\" }",
                ""
            )),
            "limiter.limit.cpuset"
        );
        assert_eq!(
            field(plan(
                "runtime = \"runc\"\nquota = \"40ms\"",
                "[[change]]\nat = \"0.5s\"\nlimit = { quota = \"20ms\" }"
            )),
            "change"
        );
        // runtime and limit belong to kind = "runtime" only.
        let s = parse(
            "name = \"t\"\n[limiter]\nkind = \"cfs\"\nquota = \"40ms\"\nruntime = \"runc\"\n[workload]\nkind = \"duty\"\non = \"1s\"\nduration = \"1s\"\n",
            "t.toml",
        )
        .unwrap();
        let e = resolve(&s, "t.toml", &"0-1".parse().unwrap()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("limiter.runtime"));
    }
}
