//! `throttlebench check`: run a scenario (or read `--from DIR`) and test expectations over
//! its summary, with exit codes for `git bisect run` and CI (see `crate::error`):
//! 0 every expectation holds, 1 one fails, 125 this build could not be tested (skip),
//! 128 the tool's own error, 129 the workload failed, 130 interrupted.
//!
//! The result is always judged from the folder on disk, after the run wrote it, by the
//! same code `--from` uses: `check --from DIR` gives the answer the run that made DIR gave.

use super::RunArgs;
use crate::cli::exit::{
    bisect_code, exit_with, EXIT_BAD, EXIT_CHECK_WORKLOAD, EXIT_INTERRUPTED, EXIT_SKIP, EXIT_TOOL,
};
use crate::report::expect::{self, Condition, Expectation};
use crate::report::read::ResultDir;
use crate::report::selftest::{self, Selftest};
use crate::report::SummaryRow;
use crate::scenario::requires::{self, Requires};
use crate::scenario::{self, ScenarioError};
use anyhow::{anyhow, Result};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub root: super::CgroupRoot,
    /// Scenario to run; with --from, only its [expect] table is used.
    pub scenario: Option<PathBuf>,
    /// Test an existing result folder instead of running.
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// An expectation, like 'median(latency_p99_s) < 50ms' (repeatable). Given any, the
    /// scenario's [expect] table is not used.
    #[arg(long = "expect", value_name = "EXPR")]
    pub expect: Vec<String>,
    /// Test only the summary rows this selects, like 'param_limiter.quota=40ms'
    /// (repeatable; every one must match).
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    pub select: Vec<String>,
    /// Result folder of the run (default: results/<scenario>/<UTC time>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do not draw plots after the run.
    #[arg(long)]
    pub no_plot: bool,
}

/// The expectations to test and where they came from.
fn expectations(args: &CheckArgs) -> Result<(Vec<Expectation>, String)> {
    if !args.expect.is_empty() {
        let v = args
            .expect
            .iter()
            .map(|t| expect::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((v, "--expect".into()));
    }
    let (table, source, text) = match (&args.scenario, &args.from) {
        (Some(p), _) => {
            let (sc, text) = scenario::load(p)?;
            let table: Vec<(String, String)> = sc.expect.into_iter().collect();
            (table, p.display().to_string(), Some(text))
        }
        (None, Some(d)) => {
            let dir = ResultDir::open(d)?;
            (
                dir.expectations(),
                format!("{}/run.json", d.display()),
                None,
            )
        }
        (None, None) => return Err(anyhow!("give a scenario to run, or --from DIR")),
    };
    if table.is_empty() {
        return Err(anyhow!(
            "nothing to check: {source} has no [expect] table and no --expect was given"
        ));
    }
    let v = expect::parse_named(&table).map_err(|(name, e)| {
        let err = ScenarioError::field(&source, &format!("expect.{name}"), e.to_string());
        anyhow::Error::from(match &text {
            Some(t) => scenario::locate(err, t),
            None => err,
        })
    })?;
    Ok((v, format!("the [expect] table of {source}")))
}

/// What the machine of a check was: the CPUs it had and the VM it ran in (`--from`: as
/// run.json recorded them; otherwise this process's).
type Machine = (Option<usize>, Option<String>);

/// The scenario's `[requires]` and `selftest` (from the file, else from the folder's
/// run.json), and the machine to hold the requirements against.
fn extras(args: &CheckArgs) -> Result<(Requires, Option<Selftest>, Machine)> {
    let here = || (Some(requires::usable_cpus()), Requires::this_vm());
    let (requires, test, machine) = match (&args.scenario, &args.from) {
        (Some(p), from) => {
            let (sc, _) = scenario::load(p)?;
            let machine = from.as_deref().map(recorded_machine).unwrap_or_else(here);
            (sc.requires, sc.selftest, machine)
        }
        (None, Some(d)) => {
            let plan = ResultDir::open(d)?
                .run_json
                .and_then(|j| j.pointer("/plan/scenario").cloned());
            let get = |k: &str| plan.as_ref().and_then(|p| p.get(k)).cloned();
            let requires = get("requires")
                .map(serde_json::from_value)
                .transpose()?
                .unwrap_or_default();
            let test = get("selftest").and_then(|v| v.as_str().map(String::from));
            (requires, test, recorded_machine(d))
        }
        (None, None) => return Err(anyhow!("give a scenario to run, or --from DIR")),
    };
    let test = test
        .map(|t| {
            t.parse::<Selftest>()
                .map_err(|e| anyhow!("field `selftest`: {e}"))
        })
        .transpose()?;
    Ok((requires, test, machine))
}

/// The CPUs and VM run.json says the run that made `dir` had.
fn recorded_machine(dir: &Path) -> Machine {
    let j = ResultDir::open(dir).ok().and_then(|d| d.run_json);
    let host = j.as_ref().and_then(|j| j.get("host"));
    (
        host.and_then(|h| h.get("cpus")?.as_u64())
            .map(|n| n as usize),
        host.and_then(|h| h.get("vm")?.as_str()).map(String::from),
    )
}

/// `throttlebench check`; returns the exit code (errors carry theirs).
pub fn run(cgroup_root: &Path, proc_root: &Path, args: &CheckArgs) -> Result<i32> {
    let tool = |e: anyhow::Error| exit_with(EXIT_TOOL, e);
    let (exps, source) = expectations(args).map_err(tool)?;
    // The columns are known before anything runs: a mistyped one fails now, with the
    // name it most likely meant.
    if let (Some(path), None) = (&args.scenario, &args.from) {
        let plan = super::load_plan(Some(path)).map_err(tool)?;
        let header = SummaryRow::header(&plan.swept);
        for e in &exps {
            expect::check_columns(e, &header).map_err(|e| tool(e.into()))?;
        }
    }
    for e in &exps {
        for n in expect::notes(e) {
            eprintln!("throttlebench: note: {n}");
        }
    }
    let select: Vec<Condition> = args
        .select
        .iter()
        .map(|s| expect::parse_selection(s))
        .collect::<Result<Vec<Vec<_>>, _>>()
        .map_err(|e| tool(e.into()))?
        .concat();
    let (needs, test, (cpus, vm)) = extras(args).map_err(tool)?;
    // A machine with less than the check needs cannot tell: skip, before running anything.
    if let Some(why) = needs.unmet(cpus.unwrap_or(usize::MAX), vm.as_deref()) {
        return Err(exit_with(EXIT_SKIP, anyhow!("cannot tell: {why}")));
    }
    let dir = match &args.from {
        Some(d) => d.clone(),
        None => {
            let run = RunArgs {
                scenario: args.scenario.clone(),
                out: args.out.clone(),
                no_plot: args.no_plot,
                ..RunArgs::default()
            };
            super::run_scenario(cgroup_root, proc_root, &run).map_err(|e| {
                let code = bisect_code(&e);
                exit_with(code, e)
            })?
        }
    };
    let result = ResultDir::open(&dir).map_err(|e| tool(e.into()))?;
    let summary = result.summary().map_err(|e| tool(e.into()))?;
    // A folder whose run did not complete answers as that run did.
    for r in 0..summary.len() {
        let what = |code: i32, how: &str| {
            exit_with(
                code,
                anyhow!(
                    "{}: run {} {how}: there is nothing complete to check",
                    dir.display(),
                    summary.text(r, "run")
                ),
            )
        };
        match summary.text(r, "outcome") {
            "failed" => return Err(what(EXIT_CHECK_WORKLOAD, "failed")),
            "limiter_failed" => {
                return Err(what(
                    EXIT_CHECK_WORKLOAD,
                    "had a limiter command that failed as it started",
                ))
            }
            "timed_out" => return Err(what(EXIT_CHECK_WORKLOAD, "timed out")),
            "interrupted" => return Err(what(EXIT_INTERRUPTED, "was interrupted")),
            _ => {}
        }
    }
    if result.complete() == Some(false) {
        return Err(tool(anyhow!(
            "{}: run.json says the result is incomplete (the run was stopped)",
            dir.display()
        )));
    }
    println!(
        "check {} ({}, {} summary rows), expectations from {source}{}:",
        dir.display(),
        result.scenario_name(),
        summary.len(),
        if select.is_empty() {
            String::new()
        } else {
            format!(", rows where {}", args.select.join(" and "))
        }
    );
    let mut failed = 0;
    for e in &exps {
        let v = expect::evaluate(e, summary, &select).map_err(|err| tool(err.into()))?;
        if !v.held {
            failed += 1;
        }
        println!("{}", expect::report_line(e, &v));
    }
    let mut total = exps.len();
    if let Some(t) = test {
        let lines = selftest::evaluate(t, summary).map_err(|e| tool(anyhow!(e)))?;
        println!("the selftest's own checks ({t}, tools/testing/selftests/cgroup/test_cpu.c):");
        for l in &lines {
            println!("{}  {t}: {}", if l.held { "PASS" } else { "FAIL" }, l.text);
        }
        total += lines.len();
        failed += lines.iter().filter(|l| !l.held).count();
    }
    if failed == 0 {
        println!("all {total} expectation(s) hold");
        Ok(0)
    } else {
        println!("{failed} of {total} expectation(s) failed");
        Ok(EXIT_BAD)
    }
}
