//! `throttlebench run`: load a scenario, run every planned run, write the result folder.

use super::RunArgs;
use crate::cgroup::{self, Hierarchy};
use crate::cli::exit::RunStop;
use crate::report::console::run_line;
use crate::report::expect;
use crate::report::{ResultFolder, ResultWriter, ResultsError};
use crate::runner::{Runner, WorkloadProgram};
use crate::sample::Host;
use crate::scenario::{self, Plan};
use crate::signals;
use crate::units::{fmt_seconds, utc_now};
use anyhow::{Context, Result};
use fibtest::cpulist::CpuList;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Result<CpuList> {
    fibtest::cpulist::allowed_cpus().context("reading this process's CPU affinity")
}

/// Load a scenario file (or the built-in default) and resolve it into a plan.
pub fn load_plan(path: Option<&Path>) -> Result<Plan> {
    let (sc, text, source) = match path {
        Some(p) => {
            let (sc, text) = scenario::load(p)?;
            (sc, text, p.display().to_string())
        }
        None => (
            scenario::parse(scenario::BUILTIN_DEFAULT, "built-in")?,
            scenario::BUILTIN_DEFAULT.to_string(),
            "built-in".to_string(),
        ),
    };
    let allowed = allowed_cpus()?;
    let plan = scenario::resolve(&sc, &source, &allowed).map_err(|e| scenario::locate(e, &text))?;
    Ok(plan)
}

fn describe_run(plan: &Plan, i: usize) -> String {
    let r = &plan.runs[i];
    let mut s = format!("run {}/{}", i + 1, plan.runs.len());
    for (k, v) in &r.params {
        s.push_str(&format!(" {k}={v}"));
    }
    if plan.scenario.repeats > 1 {
        s.push_str(&format!(" repeat {}", r.repeat + 1));
    }
    s
}

/// What to say when the sampler missed ticks: its own reads were too slow for the
/// interval (then an interval it can keep), or the machine did not run it in time.
fn missed_ticks_line(t: &crate::result::TickStats, groups: usize) -> String {
    let missed = format!(
        "the sampler missed {} of {} ticks of {}",
        t.missed,
        t.ticks + t.missed,
        fmt_seconds(t.interval_s)
    );
    let keep = t.interval_it_can_keep_s();
    if keep > t.interval_s {
        format!(
            "{missed}: a tick's reads took {} on average with {groups} group(s), too long for the interval; sample_interval = \"{}\" keeps up",
            fmt_seconds(t.busy_mean_s),
            fmt_seconds(keep).replace(' ', "")
        )
    } else {
        format!(
            "{missed}, though a tick's reads took only {} on average: the machine did not run the sampler in time (other load, stalls); the next sample covers the gap",
            fmt_seconds(t.busy_mean_s)
        )
    }
}

/// The scenario's `[expect]` table, checked as `check` will: it parses and names only
/// columns the result folder will have (an error names the field, exit 3).
fn check_expect_table(plan: &Plan) -> Result<()> {
    let table: Vec<(String, String)> = plan
        .scenario
        .expect
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let source = plan.source.clone();
    let field = |name: &str, e: String| {
        let err = scenario::ScenarioError::field(&source, &format!("expect.{name}"), e);
        match std::fs::read_to_string(&source) {
            Ok(text) => scenario::locate(err, &text),
            Err(_) => err,
        }
    };
    let exps = expect::parse_named(&table).map_err(|(name, e)| field(&name, e.to_string()))?;
    let header = crate::report::SummaryRow::header(&plan.swept);
    for e in &exps {
        if let Err(err) = expect::check_columns(e, &header) {
            return Err(field(e.name.as_deref().unwrap_or(""), err.to_string()).into());
        }
    }
    Ok(())
}

/// `throttlebench run`.
pub fn run_scenario(cgroup_root: &Path, proc_root: &Path, args: &RunArgs) -> Result<PathBuf> {
    let plan = load_plan(args.scenario.as_deref())?;
    check_expect_table(&plan)?;
    for n in &plan.notes {
        eprintln!("note: {n}");
    }
    if args.dry_run {
        // The tree of each configuration in words (stderr), the plan as JSON (stdout).
        let trees = plan
            .runs
            .iter()
            .any(|r| r.has_child_cgroups() || !r.changes.is_empty());
        if trees {
            for r in plan.runs.iter().filter(|r| r.repeat == 0) {
                eprintln!("{}:", describe_run(&plan, r.index));
                for line in scenario::show::tree(r) {
                    eprintln!("  {line}");
                }
            }
        }
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(PathBuf::new());
    }
    let hierarchy = Hierarchy::detect(cgroup_root)?;
    for s in cgroup::remove_stale(&hierarchy)? {
        match &s.error {
            None => eprintln!(
                "throttlebench: removed {} left by dead run {} ({} processes killed)",
                s.path.display(),
                s.owner_pid,
                s.killed
            ),
            Some(e) => eprintln!(
                "throttlebench: could not remove stale {}: {e}",
                s.path.display()
            ),
        }
    }
    // What would fail anyway fails before the result folder is made, so a run that
    // cannot start leaves no empty folder: the controllers each run needs, the right to
    // make cgroups (without it, runs whose limiter needs none go on without one), the
    // workload program.
    let mut plan = plan;
    if let Some(why) = scenario::resolve::place(&mut plan, &hierarchy)? {
        eprintln!(
            "throttlebench: no cgroup ({why}); measuring the workload's processes \
             from /proc instead: CPU time in clock ticks, no throttling counters"
        );
    }
    let workload = WorkloadProgram::locate()?;
    signals::install();
    signals::become_subreaper();
    let runner = Runner {
        hierarchy: hierarchy.clone(),
        proc_root: proc_root.to_path_buf(),
        workload,
        allowed: allowed_cpus()?,
    };
    let (stamp, created) = utc_now();
    // Made (or, for --out, locked) before any cgroup is made or workload started, so an
    // unwritable folder ends the run before it measures anything.
    let folder = match &args.out {
        Some(out) => ResultFolder::named(out)?,
        None => ResultFolder::fresh(
            &PathBuf::from("results")
                .join(&plan.scenario.name)
                .join(stamp),
        )?,
    };
    let dir = folder.path.clone();
    let host = Host::read(
        proc_root,
        hierarchy.version.name(),
        Path::new("/proc/pressure/cpu").exists(),
    );
    let host_cpus = host.cpus;
    let mut writer = ResultWriter::create(folder, &plan, host, created)?;
    let stopped = |error: ResultsError, kept: usize| RunStop::Results {
        error,
        kept,
        planned: plan.runs.len(),
        dir: dir.display().to_string(),
    };
    eprintln!(
        "throttlebench: scenario {} ({}), {} run(s), cgroup {} under {}, results in {}",
        plan.scenario.name,
        plan.source,
        plan.runs.len(),
        hierarchy.version.name(),
        hierarchy.root.display(),
        dir.display()
    );
    // The bar advances by each run's expected duration, so the time left is estimated from
    // the planned work, not the count of runs (the runs of a sweep differ in length). The
    // message says which run of how many.
    let expected_ms = |r: &crate::scenario::PlannedRun| r.expected_duration().as_millis() as u64;
    let bar = ProgressBar::with_draw_target(
        Some(plan.runs.iter().map(expected_ms).sum::<u64>().max(1)),
        ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {elapsed} elapsed, ~{eta} left: {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(plan.scenario.name.clone());
    for i in 0..plan.runs.len() {
        let what = describe_run(&plan, i);
        bar.set_message(what.clone());
        let run = &plan.runs[i];
        let measured = match writer.begin_run(run) {
            Ok(mut sink) => runner.run(run, &mut sink),
            Err(e) => {
                bar.abandon();
                return Err(stopped(e, writer.runs_written()).into());
            }
        };
        let result = match measured {
            Ok(r) => r,
            Err(e) => {
                bar.abandon();
                // A write that failed (a full disk) is why the run stopped: say so.
                return Err(match writer.abort_run(run) {
                    Some(written) => stopped(written, writer.runs_written()).into(),
                    None => e,
                });
            }
        };
        let outcome = result.outcome.clone();
        let limiter_faults = result.limiter.faults();
        let failed_changes: Vec<String> = result
            .changes
            .iter()
            .filter_map(|c| {
                let whom = if c.group.is_empty() {
                    "the run cgroup"
                } else {
                    &c.group
                };
                c.error.as_ref().map(|e| {
                    format!(
                        "at {}: {whom}: {e} (the settings before it stayed)",
                        fmt_seconds(c.at_s)
                    )
                })
            })
            .collect();
        let ticks = result.ticks;
        let rows = match writer.end_run(&plan, result) {
            Ok(rows) => rows,
            Err(e) => {
                bar.abandon();
                return Err(stopped(e, writer.runs_written()).into());
            }
        };
        bar.inc(expected_ms(&plan.runs[i]));
        bar.suspend(|| {
            for row in &rows {
                if rows.len() > 1 {
                    eprintln!(
                        "{what} group {}: {}",
                        row.group,
                        run_line(row, &plan.runs[i])
                    );
                } else {
                    eprintln!("{what}: {}", run_line(row, &plan.runs[i]));
                }
            }
            for row in &rows {
                for w in crate::report::console::warnings(row, run, host_cpus) {
                    eprintln!("{what}: {w}");
                }
            }
            for f in &limiter_faults {
                eprintln!("{what}: LIMITER FAULT: {f}");
            }
            for c in &failed_changes {
                eprintln!("{what}: CHANGE FAILED {c}");
            }
            if ticks.missed > 0 {
                eprintln!("{what}: {}", missed_ticks_line(&ticks, run.groups.len()));
            }
        });
        match outcome {
            crate::result::Outcome::Completed => {}
            crate::result::Outcome::Interrupted => {
                bar.abandon();
                return Err(RunStop::Interrupted {
                    signal: signals::received().unwrap_or(0),
                    dir: dir.display().to_string(),
                }
                .into());
            }
            crate::result::Outcome::Failed {
                status,
                stderr_tail,
            } => {
                bar.abandon();
                return Err(RunStop::WorkloadFailed {
                    run: i,
                    what: format!("{status}:\n{stderr_tail}"),
                    dir: dir.display().to_string(),
                }
                .into());
            }
            crate::result::Outcome::LimiterFailed {
                status,
                stderr_tail,
            } => {
                bar.abandon();
                return Err(RunStop::LimiterFailed {
                    run: i,
                    what: if stderr_tail.is_empty() {
                        status
                    } else {
                        format!("{status}:\n{stderr_tail}")
                    },
                    dir: dir.display().to_string(),
                }
                .into());
            }
            crate::result::Outcome::TimedOut { limit_s } => {
                bar.abandon();
                return Err(RunStop::WorkloadFailed {
                    run: i,
                    what: format!("did not finish within {limit_s:.0}s and was stopped"),
                    dir: dir.display().to_string(),
                }
                .into());
            }
        }
        if signals::received().is_some() {
            bar.abandon();
            return Err(RunStop::Interrupted {
                signal: signals::received().unwrap_or(0),
                dir: dir.display().to_string(),
            }
            .into());
        }
    }
    bar.finish_and_clear();
    writer
        .write_json(&plan, true)
        .map_err(|e| stopped(e, writer.runs_written()))?;
    if !args.no_plot {
        super::plot::after_run(&dir);
    }
    println!("{}", dir.display());
    Ok(dir)
}
