//! A command limiter that wraps the workload (`{workload}` in `limiter.command`, as
//! `ulimit -t {cpu}; exec sh -c {workload}` or `timeout {cpu} sh -c {workload}`): the
//! wrapper becomes each group's command line, so it starts as the workload, in its
//! cgroup, and nothing runs beside it.

use crate::scenario::plan::{Limiter, PlannedGroup, Workload};
use crate::scenario::template;
use crate::scenario::ScenarioError;

pub(super) fn wrap_workloads(
    groups: Vec<PlannedGroup>,
    limiter: &Limiter,
    source: &str,
) -> Result<Vec<PlannedGroup>, ScenarioError> {
    let Limiter::Command {
        template: t,
        share,
        cpu,
        wraps: true,
    } = limiter
    else {
        return Ok(groups);
    };
    groups
        .into_iter()
        .map(|mut g| {
            let Workload::Command { command, .. } = &mut g.workload else {
                return Err(ScenarioError::field(
                    source,
                    "limiter.command",
                    format!(
                        "{{workload}} wraps a command line: the workload of group {} is kind = \"{}\", not \"command\"",
                        g.name,
                        g.workload.name()
                    ),
                ));
            };
            *command = template::wrap(t, command, *share, *cpu);
            Ok(g)
        })
        .collect()
}
