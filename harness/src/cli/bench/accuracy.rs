//! `throttlebench bench accuracy`: the accuracy figures that README and docs/limiters.md
//! state, measured again with their spread. Each claim is a shipped scenario, run
//! `--repeat` times by this binary (children, each a whole sweep, so the repeats of one
//! configuration are spread over the bench's length rather than back to back); the
//! table gives every configuration's and group's median, range and largest distance
//! from its target over the repeats. One shown run does not back a precision; the
//! range over repeated runs does.
//!
//! - `limiters` (`scenarios/limiters.toml`): cfs, freezer, signal and cpulimit at 10, 40
//!   and 80% of a CPU: `cpu_share` in percent of one CPU against `target_share`.
//! - `weights` (`scenarios/weights.toml`): four busy groups with weights 150/100/100/50:
//!   `group_share_pct` against each weight's share of the sum.
//! - `fibtest` (`scenarios/fibtest.toml`): the share of throttled periods, and the CPU
//!   used, at quotas below, at and above Fibtest's demand (no target: the figure itself
//!   is the claim).

use crate::report::read::{group_of, Table};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct AccuracyArgs {
    /// Which claims to measure.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "limiters,weights,fibtest"
    )]
    only: Vec<String>,
    /// Runs of each claim's whole scenario (the table gives the median and range).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Keep the result folders here (default: a temporary folder, removed at the end).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Also write the table as CSV here.
    #[arg(long)]
    csv: Option<PathBuf>,
}

/// A claim: a shipped scenario and what to read from its summary.
struct Claim {
    name: &'static str,
    file: &'static str,
    text: &'static str,
    /// Summary columns to report, each multiplied by its factor (fractions to percent).
    measures: &'static [(&'static str, f64)],
    target: Target,
}

enum Target {
    /// `target_share` of the row, in percent.
    Share,
    /// Each group's weight over the sum of the scenario's weights, in percent.
    Weights,
    None,
}

const CLAIMS: &[Claim] = &[
    Claim {
        name: "limiters",
        file: "scenarios/limiters.toml",
        text: include_str!("../../../../scenarios/limiters.toml"),
        measures: &[("cpu_share", 100.0)],
        target: Target::Share,
    },
    Claim {
        name: "weights",
        file: "scenarios/weights.toml",
        text: include_str!("../../../../scenarios/weights.toml"),
        measures: &[("group_share_pct", 1.0)],
        target: Target::Weights,
    },
    Claim {
        name: "fibtest",
        file: "scenarios/fibtest.toml",
        text: include_str!("../../../../scenarios/fibtest.toml"),
        measures: &[("throttled_pct", 1.0), ("cpu_share", 100.0)],
        target: Target::None,
    },
];

/// One line of the table: a configuration's and group's measure over the repeats.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccuracyRow {
    pub claim: String,
    pub scenario: String,
    pub config: String,
    pub group: String,
    pub measure: String,
    pub target: Option<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// The largest distance of a repeat from the target, in the measure's unit.
    pub max_abs_error: Option<f64>,
    pub runs: usize,
}

/// Each group's weight over the sum, in percent.
fn weight_targets(text: &str, file: &str) -> Result<Vec<(String, f64)>> {
    let sc = crate::scenario::parse(text, file)?;
    let total: f64 = sc
        .groups
        .iter()
        .filter_map(|g| g.weight)
        .map(f64::from)
        .sum();
    if total <= 0.0 {
        bail!("{file}: no group has a weight");
    }
    Ok(sc
        .groups
        .iter()
        .map(|g| {
            (
                g.name.clone(),
                100.0 * g.weight.map(f64::from).unwrap_or(0.0) / total,
            )
        })
        .collect())
}

/// The rows of one claim from the summaries of its repeats.
pub fn rows(
    claim: &str,
    file: &str,
    measures: &[(&str, f64)],
    targets: &dyn Fn(&Table, usize) -> Option<f64>,
    summaries: &[Table],
) -> Vec<AccuracyRow> {
    // (config, group, measure) in the first summary's order; values from every repeat.
    let mut keys: Vec<(String, String, String, String, f64)> = Vec::new();
    let mut values: Vec<Vec<f64>> = Vec::new();
    let mut errors: Vec<Vec<f64>> = Vec::new();
    let mut target_of: Vec<Option<f64>> = Vec::new();
    for t in summaries {
        let params = t.param_columns();
        for r in 0..t.len() {
            let label = if params.is_empty() {
                "-".to_string()
            } else {
                params
                    .iter()
                    .map(|c| t.text(r, c).to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            for &(column, factor) in measures {
                let Some(v) = t.num(r, column) else { continue };
                let v = v * factor;
                let key = (
                    t.text(r, "config").to_string(),
                    label.clone(),
                    group_of(t, r),
                    column.to_string(),
                    factor,
                );
                let i = match keys.iter().position(|k| *k == key) {
                    Some(i) => i,
                    None => {
                        keys.push(key);
                        values.push(Vec::new());
                        errors.push(Vec::new());
                        target_of.push(targets(t, r));
                        keys.len() - 1
                    }
                };
                values[i].push(v);
                if let Some(target) = target_of[i] {
                    errors[i].push((v - target).abs());
                }
            }
        }
    }
    keys.into_iter()
        .zip(values)
        .zip(errors)
        .zip(target_of)
        .map(|((((_, config, group, column, factor), v), e), target)| {
            let (median, min, max) = super::sampler::spread(&v);
            let measure = if factor == 100.0 {
                format!("{column} (%)")
            } else {
                column
            };
            AccuracyRow {
                claim: claim.to_string(),
                scenario: file.to_string(),
                config,
                group,
                measure,
                target,
                median,
                min,
                max,
                max_abs_error: target.map(|_| e.iter().copied().fold(0.0, f64::max)),
                runs: v.len(),
            }
        })
        .collect()
}

fn print_row(r: &AccuracyRow, width: usize) {
    let opt = |x: Option<f64>| x.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
    println!(
        "{:<9} {:<width$} {:<6} {:<17} {:>7} {:>24} {:>8} {:>5}",
        r.claim,
        r.config,
        r.group,
        r.measure,
        opt(r.target),
        format!("{:.2} ({:.2}-{:.2})", r.median, r.min, r.max),
        opt(r.max_abs_error),
        r.runs
    );
}

pub fn run(cgroup_root: &Path, a: &AccuracyArgs) -> Result<()> {
    for name in &a.only {
        if !CLAIMS.iter().any(|c| c.name == name) {
            bail!(
                "--only: no claim named {name:?} (claims: {})",
                CLAIMS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let base = match &a.keep {
        Some(k) => k.clone(),
        None => std::env::temp_dir().join(format!("throttlebench-accuracy-{}", std::process::id())),
    };
    let claims: Vec<&Claim> = CLAIMS
        .iter()
        .filter(|c| a.only.iter().any(|n| n == c.name))
        .collect();
    let result = (|| -> Result<Vec<AccuracyRow>> {
        // Every claim's scenario once per round, so slow drifts of the machine's load
        // reach every claim and configuration alike.
        let mut summaries: Vec<Vec<Table>> = claims.iter().map(|_| Vec::new()).collect();
        for round in 0..a.repeat {
            for (c, got) in claims.iter().zip(summaries.iter_mut()) {
                let dir = base.join(c.name);
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let file = dir.join(Path::new(c.file).file_name().unwrap_or_default());
                std::fs::write(&file, c.text)
                    .with_context(|| format!("writing {}", file.display()))?;
                let out = dir.join(format!("round{round}"));
                eprintln!(
                    "bench accuracy: {} round {}/{}",
                    c.name,
                    round + 1,
                    a.repeat
                );
                super::scale::run_child(&file, &out, cgroup_root)?;
                got.push(Table::read(&out.join("summary.csv"))?);
            }
        }
        let mut all = Vec::new();
        for (c, got) in claims.iter().zip(&summaries) {
            let weights = match c.target {
                Target::Weights => weight_targets(c.text, c.file)?,
                _ => Vec::new(),
            };
            let targets = |t: &Table, r: usize| match c.target {
                Target::Share => t.num(r, "target_share").map(|s| 100.0 * s),
                Target::Weights => {
                    let g = group_of(t, r);
                    weights.iter().find(|(n, _)| *n == g).map(|(_, w)| *w)
                }
                Target::None => None,
            };
            all.extend(rows(c.name, c.file, c.measures, &targets, got));
        }
        Ok(all)
    })();
    if a.keep.is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
    let all = result?;
    let width = all.iter().map(|r| r.config.len()).max().unwrap_or(6).max(6);
    println!(
        "{:<9} {:<width$} {:<6} {:<17} {:>7} {:>24} {:>8} {:>5}",
        "claim", "config", "group", "measure", "target", "median (min-max)", "max|err|", "runs"
    );
    for r in &all {
        print_row(r, width);
    }
    println!(
        "Each claim's scenario run {} times in turn ({}); max|err|: the largest distance of one run from the target, in the measure's unit (points for percentages).",
        a.repeat,
        claims.iter().map(|c| c.file).collect::<Vec<_>>().join(", ")
    );
    if let Some(path) = &a.csv {
        super::write_csv(path, &all)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[[&str; 5]]) -> Table {
        Table::new(
            [
                "config",
                "param_limiter",
                "group",
                "cpu_share",
                "target_share",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            rows.iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect(),
        )
    }

    #[test]
    fn rows_give_median_range_and_the_largest_error_over_repeats() {
        let a = table(&[
            ["0", "share=0.1", "main", "0.101", "0.1"],
            ["1", "share=0.4", "main", "0.398", "0.4"],
        ]);
        let b = table(&[
            ["0", "share=0.1", "main", "0.097", "0.1"],
            ["1", "share=0.4", "main", "0.400", "0.4"],
        ]);
        let c = table(&[
            ["0", "share=0.1", "main", "0.100", "0.1"],
            ["1", "share=0.4", "main", "0.405", "0.4"],
        ]);
        let target = |t: &Table, r: usize| t.num(r, "target_share").map(|s| 100.0 * s);
        let got = rows(
            "limiters",
            "x.toml",
            &[("cpu_share", 100.0)],
            &target,
            &[a, b, c],
        );
        assert_eq!(got.len(), 2);
        let first = &got[0];
        assert_eq!(first.config, "share=0.1");
        assert_eq!(first.measure, "cpu_share (%)");
        assert_eq!(first.runs, 3);
        assert!((first.median - 10.0).abs() < 1e-9);
        assert!((first.min - 9.7).abs() < 1e-9 && (first.max - 10.1).abs() < 1e-9);
        assert!((first.max_abs_error.unwrap() - 0.3).abs() < 1e-9);
        assert!((got[1].max_abs_error.unwrap() - 0.5).abs() < 1e-9);
        assert!((got[1].median - 40.0).abs() < 1e-9);
    }

    #[test]
    fn weight_targets_are_each_weight_over_the_sum() {
        let claim = CLAIMS.iter().find(|c| c.name == "weights").unwrap();
        let w = weight_targets(claim.text, claim.file).unwrap();
        let got: Vec<f64> = w.iter().map(|(_, p)| *p).collect();
        assert_eq!(got, vec![37.5, 25.0, 25.0, 12.5]);
    }

    #[test]
    fn every_claim_is_a_scenario_that_resolves() {
        for c in CLAIMS {
            let sc = crate::scenario::parse(c.text, c.file).unwrap();
            let two = fibtest::cpulist::CpuList::from_cpus([0, 1]);
            let plan = crate::scenario::resolve(&sc, c.file, &two).unwrap();
            assert!(!plan.runs.is_empty(), "{}", c.file);
        }
    }
}
