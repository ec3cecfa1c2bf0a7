//! Running one planned run, in four named steps:
//!
//! 1. `RunCgroups::make`: the run's cgroup (and one child per group), with the
//!    limiter's kernel settings written before any workload starts;
//! 2. `Live::start`: each group's workload starts inside its cgroup (placed there
//!    before it execs, so none of its work escapes accounting), one thread reads all
//!    their output, the limiter starts beside them, and the sampler takes its first
//!    sample;
//! 3. `Live::sample_until_done`: sample every tick, handing each tick's samples to the
//!    run's sink, until the workloads exit, the harness stops them, the user interrupts,
//!    or the run times out;
//! 4. `Live::finish`: stop the limiter, record what it left stopped or running, end
//!    what still runs (stop all, SIGTERM all, continue all), collect the output.
//!
//! Teardown is done by guards (`RunCgroups`' and `Cgroup`'s Drop, `ChildGuard`'s Drop),
//! so every exit path, including errors and panics, runs it.

mod container;
mod exposed;
mod live;
mod load;
mod output;
mod scope;
mod sink;
mod spawn;

pub use container::{check_runtimes, cpu_resources};
pub use exposed::{limits_of, Exposed};
pub use sink::{Discard, OutputSink, RequestSink, RunSink, Stream};
pub use spawn::WorkloadProgram;

use crate::cgroup::{Cgroup, CgroupError, Hierarchy};
use crate::limiter;
use crate::process::{describe_status, teardown};
use crate::result::{Outcome, RunResult};
use crate::scenario::{Limiter, Placement, PlannedRun};
use crate::signals;
use anyhow::{Context, Result};
use fibtest::cpulist::CpuList;
use fibtest::record::DutyPeriod;
use live::Live;
use output::OutputReader;
use scope::RunProcs;
use sink::DutyKept;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Runner {
    pub hierarchy: Hierarchy,
    pub proc_root: PathBuf,
    pub workload: WorkloadProgram,
    /// CPUs this process may use.
    pub allowed: CpuList,
}

impl Drop for Runner {
    /// The `throttlebench` parent folders go when the last run is done, whatever the
    /// way out (another tool run still using them keeps them).
    fn drop(&mut self) {
        self.hierarchy.remove_parents_if_empty();
    }
}

/// A run's cgroups: the run's own (`top`) and, with several groups or a tree, one per
/// group, each made in its parent's (or the run's). Dropped (or `remove`d), they are
/// removed, children first.
struct RunCgroups {
    top: Option<Cgroup>,
    /// One per group, in the plan's order (parents before children).
    children: Vec<Cgroup>,
}

impl RunCgroups {
    /// Make the cgroups of `run` with their kernel settings: the limiter's (limits that
    /// groups inherit, a cpuset, go on before the groups are made; weights go on the
    /// groups), and each group's own.
    fn make(hierarchy: &Hierarchy, run: &PlannedRun) -> Result<RunCgroups, CgroupError> {
        let top = hierarchy.create_run(&run.extra_controllers())?;
        let mut made = RunCgroups {
            top: Some(top),
            children: Vec::new(),
        };
        let top = made.top.as_ref().expect("just made");
        if !matches!(run.limiter, Limiter::Weight) {
            limiter::apply(run, top, &[])?;
        }
        if run.has_child_cgroups() {
            for g in &run.groups {
                let parent = match g.parent {
                    Some(p) => &made.children[p],
                    None => made.top.as_ref().expect("made"),
                };
                let child = parent.create_child(&g.name)?;
                made.children.push(child);
            }
        }
        if matches!(run.limiter, Limiter::Weight) {
            limiter::apply(run, made.top.as_ref().expect("made"), &made.groups())?;
        }
        for (g, cg) in run.groups.iter().zip(made.groups()) {
            if let Some(l) = &g.limit {
                limiter::apply_group_limit(cg, l)?;
            }
        }
        Ok(made)
    }

    fn top(&self) -> &Cgroup {
        self.top.as_ref().expect("removed only at the end")
    }

    /// The cgroup of each group, in the plan's order.
    fn groups(&self) -> Vec<&Cgroup> {
        if self.children.is_empty() {
            vec![self.top()]
        } else {
            self.children.iter().collect()
        }
    }

    /// Remove every folder; returns those still there afterwards, and the error.
    fn remove(mut self) -> (Vec<String>, Result<(), CgroupError>) {
        while let Some(c) = self.children.pop() {
            let _ = c.destroy(Duration::from_secs(5));
        }
        let top = self.top.take().expect("removed once");
        let dirs = top.dirs().to_vec();
        let removed = top.destroy(Duration::from_secs(5));
        let left = dirs
            .iter()
            .filter(|d| d.exists())
            .map(|d| d.display().to_string())
            .collect();
        (left, removed)
    }
}

impl Drop for RunCgroups {
    fn drop(&mut self) {
        // Children first, the deepest last made.
        while let Some(c) = self.children.pop() {
            let _ = c.destroy(Duration::from_secs(5));
        }
        if let Some(top) = self.top.take() {
            let _ = top.destroy(Duration::from_secs(5));
        }
    }
}

impl Runner {
    /// Run one planned run to its end (or until interrupted), handing its samples and
    /// its workloads' output to `sink` as they come, and return the rest of its data.
    pub fn run(&self, run: &PlannedRun, sink: &mut dyn RunSink) -> Result<RunResult> {
        if let Limiter::Runtime { .. } = run.limiter {
            return container::run_in_container(self, run, sink);
        }
        if let Placement::Processes { reason } = &run.placement {
            let mut r = self.run_groups(None, run, sink)?;
            r.without_cgroup = Some(reason.clone());
            return Ok(r);
        }
        let cgroups = RunCgroups::make(&self.hierarchy, run)?;
        let result = self.run_groups(Some(&cgroups), run, sink);
        let name = cgroups.top().name();
        let (left, removed) = cgroups.remove();
        self.hierarchy.remove_parents_if_empty();
        let mut result = result?;
        result.leaks.cgroups = left;
        removed.with_context(|| format!("removing cgroup {name}"))?;
        Ok(result)
    }

    /// Steps 2 to 4 of a run, in `cgroups` or, without them, as plain children measured
    /// from /proc.
    fn run_groups(
        &self,
        cgroups: Option<&RunCgroups>,
        run: &PlannedRun,
        sink: &mut dyn RunSink,
    ) -> Result<RunResult> {
        let groups = cgroups.map(RunCgroups::groups).unwrap_or_default();
        let mut live = Live::start(self, run, sink, cgroups.map(RunCgroups::top), &groups)?;
        let outcome = live.sample_until_done()?;
        live.finish(outcome)
    }

    /// Run the first group's workload of `run` in an existing cgroup `cg` (no sampling,
    /// no limiter: the caller owns both) until it exits; on a signal to stop, stop it.
    /// Returns how it ended and every duty on-period it reported (a search's probes are
    /// short: tens of on-periods). Used by searches that run many short workloads in one
    /// cgroup.
    pub fn run_workload_in(
        &self,
        cg: &Cgroup,
        run: &PlannedRun,
    ) -> Result<(Outcome, Vec<DutyPeriod>)> {
        let (mut r, pipes) = spawn::spawn(&self.workload, &self.proc_root, Some(cg), run, 0, None)?;
        let periods = Arc::new(Mutex::new(Vec::new()));
        let reader = OutputReader::start(vec![Some(pipes)], Box::new(DutyKept(periods.clone())))?;
        let outcome = loop {
            if let Some(st) = r.guard.child.as_mut().expect("set").try_wait()? {
                break if st.success() {
                    Outcome::Completed
                } else {
                    Outcome::Failed {
                        status: describe_status(Some(st)),
                        stderr_tail: String::new(),
                    }
                };
            }
            if signals::received().is_some() {
                let mut status = None;
                teardown::stop_term_cont(
                    &mut RunProcs {
                        cgroup: Some(cg),
                        proc_root: &self.proc_root,
                        mains: vec![(&mut r.guard, &mut status)],
                    },
                    Duration::from_secs(2),
                );
                break Outcome::Interrupted;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (mut outputs, _) = reader.join();
        let out = outputs.pop().unwrap_or_default();
        let outcome = match outcome {
            Outcome::Failed { status, .. } => Outcome::Failed {
                status,
                stderr_tail: out.stderr_tail.clone(),
            },
            o => o,
        };
        let periods = std::mem::take(&mut *periods.lock().unwrap_or_else(|p| p.into_inner()));
        Ok((outcome, periods))
    }
}
