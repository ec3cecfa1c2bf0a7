//! A `[workload]` table (or a group's `workload`): which fields apply to each kind, and
//! their defaults.

use super::fields::{cpus_field, positive, reject_unused};
use crate::scenario::duration::Span;
use crate::scenario::plan::{ServeProtocol, Workload};
use crate::scenario::schema::{WorkloadKind, WorkloadSpec};
use crate::scenario::ScenarioError;
use fibtest::cpulist::CpuList;

pub(super) fn resolve_workload(
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
        ("protocol", w.protocol.is_some()),
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
        WorkloadKind::Serve => &["threads", "work", "cpus", "protocol"],
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
        WorkloadKind::Serve => Ok(Workload::Serve {
            threads: threads(w.threads)?,
            work: w.work.unwrap_or(Span::from_millis(5)),
            cpus: opt_cpus("workload.cpus", &w.cpus)?,
            protocol: match w.protocol.as_deref() {
                None | Some("http") => ServeProtocol::Http,
                Some("line") => ServeProtocol::Line,
                Some(other) => {
                    return Err(ScenarioError::field(
                        source,
                        "workload.protocol",
                        format!("`{other}` is not a protocol of serve (\"http\" or \"line\")"),
                    ))
                }
            },
        }),
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
