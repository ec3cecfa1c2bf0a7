//! `throttlebench compare BASE_DIR NEW_DIR`: every metric of matched run configurations,
//! its change, interval and test (method in `report::compare`), as a table on stdout and
//! `compare.csv`. Exit codes: 0 nothing regressed past `--fail-on`, 1 something did,
//! 128 the tool's own error (unreadable folder, bad rule).

use crate::cli::exit::{exit_with, EXIT_BAD, EXIT_TOOL};
use crate::report::compare::{compare, parse_fail_on, FailOn};
use crate::report::expect::{parse_selection, resolve_column, select_rows};
use crate::report::read::{ResultDir, Table};
use crate::units::human;
use anyhow::{anyhow, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The result folder to compare against (the reference).
    pub base: PathBuf,
    /// The result folder under test.
    pub new: PathBuf,
    /// Fail (exit 1) when METRIC's median moved past the threshold, significantly where a
    /// test is possible: 'latency_p99_s:+10%', 'throttled_pct:+5', 'fast_iters_per_s:-5%'
    /// (repeatable; without a sign, the metric's worse direction).
    #[arg(long = "fail-on", value_name = "METRIC:[+|-]N[%]")]
    pub fail_on: Vec<String>,
    /// Significance level of the tests; the intervals are at 1 − alpha.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Compare only these summary columns (comma-separated; default: every metric).
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub metrics: Vec<String>,
    /// Where compare.csv goes: a folder, or a file name (default: NEW/compare.csv).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Compare only BASE's rows this selection picks (`limiter.burst=0ms`), leaving its
    /// columns out of the matching: with --new-where, two configurations of one sweep
    /// (BASE and NEW the same folder) are compared.
    #[arg(long, value_name = "SELECTION")]
    pub base_where: Option<String>,
    /// The same for NEW's rows (`limiter.burst=100ms`).
    #[arg(long, value_name = "SELECTION")]
    pub new_where: Option<String>,
}

/// The rows of `t` that `selection` picks, without the columns it names (they differ
/// between the sides by design, so runs are matched on the other parameters).
fn pick(t: &Table, selection: Option<&str>) -> Result<Table> {
    let Some(text) = selection else {
        return Ok(t.clone());
    };
    let conds = parse_selection(text)?;
    let rows = select_rows(t, &conds, text)?;
    if rows.is_empty() {
        return Err(anyhow!("`{text}` selects no row"));
    }
    let drop: Vec<String> = conds
        .iter()
        .filter_map(|c| resolve_column(t, &c.column))
        .collect();
    let keep: Vec<usize> = (0..t.columns.len())
        .filter(|&i| !drop.contains(&t.columns[i]))
        .collect();
    Ok(Table::new(
        keep.iter().map(|&i| t.columns[i].clone()).collect(),
        rows.iter()
            .map(|&r| {
                keep.iter()
                    .map(|&i| t.rows[r].get(i).cloned().unwrap_or_default())
                    .collect()
            })
            .collect(),
    ))
}

pub fn run(args: &CompareArgs) -> Result<i32> {
    inner(args).map_err(|e| exit_with(EXIT_TOOL, e))
}

fn inner(args: &CompareArgs) -> Result<i32> {
    if !(args.alpha > 0.0 && args.alpha < 0.5) {
        return Err(anyhow!("--alpha must be between 0 and 0.5"));
    }
    let rules: Vec<FailOn> = args
        .fail_on
        .iter()
        .map(|t| parse_fail_on(t))
        .collect::<Result<_, _>>()?;
    let base = ResultDir::open(&args.base)?;
    let new = ResultDir::open(&args.new)?;
    let mut metrics = args.metrics.clone();
    if !metrics.is_empty() {
        metrics.extend(rules.iter().map(|r| r.metric.clone()));
    }
    let base_rows = pick(base.summary()?, args.base_where.as_deref())?;
    let new_rows = pick(new.summary()?, args.new_where.as_deref())?;
    let c = compare(&base_rows, &new_rows, args.alpha, &metrics);
    for r in &rules {
        if !c.changes.iter().any(|ch| r.applies(ch)) {
            let mut known: Vec<&str> = c.changes.iter().map(|ch| ch.metric.as_str()).collect();
            known.sort();
            known.dedup();
            return Err(anyhow!(
                "--fail-on `{}`: no metric `{}` with values on both sides (metrics: {})",
                r.text,
                r.metric,
                known.join(", ")
            ));
        }
    }
    if c.changes.is_empty() {
        return Err(anyhow!(
            "no run of {} matches one of {} (runs are matched by their param_* values and group)",
            args.base.display(),
            args.new.display()
        ));
    }
    let side = |dir: &PathBuf, sel: &Option<String>| match sel {
        Some(s) => format!("{} [{s}]", dir.display()),
        None => dir.display().to_string(),
    };
    println!(
        "compare {} ({}) → {} ({}): median change; Mann-Whitney U, alpha {}; Hodges-Lehmann interval of the shift",
        side(&args.base, &args.base_where),
        base.scenario_name(),
        side(&args.new, &args.new_where),
        new.scenario_name(),
        args.alpha
    );
    for note in host_notes(&base, &new) {
        println!("note: {note}");
    }
    print!("{}", c.table());
    let path = match &args.out {
        Some(p) if p.is_dir() => p.join("compare.csv"),
        Some(p) => p.clone(),
        None => args.new.join("compare.csv"),
    };
    c.write_csv(&path, &rules)
        .with_context(|| format!("writing {}", path.display()))?;
    let mut regressed = 0;
    for r in &rules {
        for ch in c.changes.iter().filter(|ch| r.applies(ch)) {
            if r.regressed(ch) {
                regressed += 1;
                let rel = ch
                    .relative
                    .map(|x| format!(" ({:+.1}%)", x * 100.0))
                    .unwrap_or_default();
                let col = ch.metric.trim_matches('|');
                println!(
                    "REGRESSED {}: {}: median {} → {}, change {}{rel}{}",
                    r.text,
                    ch.config,
                    human(col, ch.base_median),
                    human(col, ch.new_median),
                    if ch.change > 0.0 {
                        format!("+{}", human(col, ch.change))
                    } else {
                        human(col, ch.change)
                    },
                    match (ch.significant, ch.p) {
                        (Some(true), Some(p)) => format!(", significant (p = {p:.3})"),
                        _ => ", no test possible: the median change decided".to_string(),
                    }
                );
            }
        }
    }
    println!("wrote {}", path.display());
    if regressed > 0 {
        println!("{regressed} regression(s) past --fail-on");
        Ok(EXIT_BAD)
    } else {
        if !rules.is_empty() {
            println!("no regression past --fail-on");
        }
        Ok(0)
    }
}

/// What differs between the machines of two result folders that matters for reading the
/// comparison: a kernel change is usually the point (bisecting), an emulated guest makes
/// timings incomparable.
pub fn host_notes(base: &ResultDir, new: &ResultDir) -> Vec<String> {
    let field = |d: &ResultDir, k: &str| -> String {
        d.run_json
            .as_ref()
            .and_then(|j| j.pointer(&format!("/host/{k}")))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let mut notes = Vec::new();
    let (kb, kn) = (field(base, "kernel_release"), field(new, "kernel_release"));
    if kb != kn {
        notes.push(format!("the kernels differ: {kb} → {kn}"));
    }
    let (vb, vn) = (field(base, "vm"), field(new, "vm"));
    let side = |v: &str| {
        if v.is_empty() {
            "the host".to_string()
        } else {
            format!("a VM ({v})")
        }
    };
    if vb != vn {
        notes.push(format!(
            "{} ran on {} and {} on {}: latencies and rates are not comparable, cgroup accounting (shares, throttled periods) is",
            base.dir.display(),
            side(&vb),
            new.dir.display(),
            side(&vn)
        ));
    } else if vb.contains("emulated") {
        notes.push(format!(
            "both ran in an emulated VM ({vb}): compare cgroup accounting, not latencies"
        ));
    }
    notes
}
