//! `throttlebench compare`: two result folders, run configurations matched by their swept
//! parameters and group, every metric's change with a confidence interval and a test.
//!
//! Method, per configuration and metric, over the per-run values of each side:
//! - change: median(new) − median(base), and relative to |median(base)|;
//! - significance: two-sided Mann-Whitney U test (exact distribution for up to 20 runs a
//!   side without ties, else the normal approximation with tie and continuity
//!   corrections), significant when p < α;
//! - confidence interval of the shift: Hodges-Lehmann, the order statistics of all
//!   pairwise differences new − base that the same U distribution gives. With few runs no
//!   interval reaches the asked level: the widest one is given with the level it has.
//!
//! With one run on a side there is no test: the output says so rather than guessing. A
//! metric *regresses* (`--fail-on`) when its median moved past the threshold in the
//! direction given and the change is significant; when the runs are too few for any test
//! to reach α, the median change alone decides and the output says so.

use super::read::{group_of, Table};
use crate::units::{human, signed};
use fibtest::stats::{hodges_lehmann, mann_whitney, median, smallest_p};
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// Which way a metric gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    HigherWorse,
    HigherBetter,
    /// Closer to zero is better: compared as absolute values (`share_error`).
    AbsHigherWorse,
    /// Neither: a change is reported, never called worse or better.
    Neutral,
}

impl Direction {
    pub fn name(&self) -> &'static str {
        match self {
            Direction::HigherWorse => "higher",
            Direction::HigherBetter => "lower",
            Direction::AbsHigherWorse => "|higher|",
            Direction::Neutral => "-",
        }
    }
}

/// Which way `metric` gets worse: latencies, throttling, steal, stalls and leaks up;
/// work rates (`*_per_s`), completed units and `duty_end_rate_pct` down; `share_error`
/// away from zero; anything else (usage, periods, bursts) neither.
pub fn direction(metric: &str) -> Direction {
    let worse_up = [
        "latency_",
        "throttled_",
        "nr_throttled",
        "steal_",
        "psi_",
        "leaked_",
        "stall_",
        "gap_",
        "throttle_stall_",
        "other_stall_",
        "fips_failures",
    ];
    if metric == "share_error" {
        Direction::AbsHigherWorse
    } else if worse_up.iter().any(|p| metric.starts_with(p)) {
        Direction::HigherWorse
    } else if metric.ends_with("_per_s")
        || matches!(
            metric,
            "slow_units" | "requests" | "duty_end_rate_pct" | "min_reader_share"
        )
    {
        Direction::HigherBetter
    } else {
        Direction::Neutral
    }
}

/// Counts of bad events (leaks, limiter faults, missed ticks, failed FIPS blocks): one in
/// any run is one too many, so these compare each side's worst run, not its median, and
/// a `--fail-on` rule on them fails when the new side's worst run is worse than the
/// base's worst by more than the threshold, whether or not a test could tell.
pub fn is_event_count(metric: &str) -> bool {
    metric.starts_with("leaked_")
        || matches!(
            metric,
            "limiter_faults" | "missed_ticks" | "late_ticks" | "fips_failures"
        )
}

/// Columns that say what a run was, not what it measured: never compared as metrics.
const IDENTITY: &[&str] = &[
    "scenario",
    "run",
    "group",
    "config",
    "repeat",
    "limiter",
    "quota_s",
    "period_s",
    "burst_s",
    "workload",
    "outcome",
    "target_share",
];

/// Settings that should agree between matched runs; a difference is noted.
const SETTINGS: &[&str] = &[
    "limiter",
    "quota_s",
    "period_s",
    "burst_s",
    "workload",
    "target_share",
];

/// One metric of one matched configuration.
#[derive(Debug, Clone)]
pub struct Change {
    /// The configuration: swept parameters and group, "all runs" without a sweep.
    pub config: String,
    pub metric: String,
    pub direction: Direction,
    pub base: Vec<f64>,
    pub new: Vec<f64>,
    pub base_median: f64,
    pub new_median: f64,
    /// new_median − base_median.
    pub change: f64,
    /// change / |base_median| (None when base_median is 0).
    pub relative: Option<f64>,
    /// For counts of bad events (`is_event_count`) the medians above are each side's
    /// largest value. Hodges-Lehmann shift and its interval (low, high, achieved level).
    pub shift: f64,
    pub ci: Option<(f64, f64, f64)>,
    /// Mann-Whitney two-sided p (None with one run on a side).
    pub p: Option<f64>,
    /// Some(significant) when a test can reach α with these run counts; None otherwise.
    pub significant: Option<bool>,
    /// worse, better, changed, same, or "no test" (too few runs).
    pub verdict: &'static str,
    pub note: String,
}

/// A `--fail-on` rule: `latency_p99_s:+10%`, `throttled_pct:+5`, `fast_iters_per_s:-5%`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailOn {
    pub text: String,
    pub metric: String,
    /// The threshold: a fraction (0.10) when relative, else in the metric's unit.
    pub threshold: f64,
    pub relative: bool,
    /// +1: an increase beyond the threshold fails; −1: a decrease.
    pub sign: f64,
}

/// A `--fail-on` rule that cannot be read or applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--fail-on `{text}`: {message}")]
pub struct FailOnError {
    pub text: String,
    pub message: String,
}

pub fn parse_fail_on(text: &str) -> Result<FailOn, FailOnError> {
    let e = |m: &str| FailOnError {
        text: text.to_string(),
        message: m.to_string(),
    };
    let (metric, rest) = text
        .split_once(':')
        .ok_or_else(|| e("write METRIC:+N, METRIC:+N%, METRIC:-N or METRIC:-N%"))?;
    let metric = metric.trim().to_string();
    let mut rest = rest.trim();
    let sign = if let Some(r) = rest.strip_prefix('+') {
        rest = r;
        Some(1.0)
    } else if let Some(r) = rest.strip_prefix('-') {
        rest = r;
        Some(-1.0)
    } else {
        None
    };
    let (num, relative) = match rest.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (rest, false),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| e("the threshold is not a number"))?;
    if v < 0.0 {
        return Err(e(
            "give the direction with + or -, and a threshold of 0 or more",
        ));
    }
    let sign = match (sign, direction(&metric)) {
        (Some(s), _) => s,
        (None, Direction::HigherWorse | Direction::AbsHigherWorse) => 1.0,
        (None, Direction::HigherBetter) => -1.0,
        (None, Direction::Neutral) => return Err(e(
            "this metric is neither better nor worse when higher: say which change fails, +N or -N",
        )),
    };
    Ok(FailOn {
        text: text.to_string(),
        metric,
        threshold: if relative { v / 100.0 } else { v },
        relative,
        sign,
    })
}

impl FailOn {
    /// Whether this rule is about `c`'s metric.
    pub fn applies(&self, c: &Change) -> bool {
        c.metric == self.metric || c.metric == format!("|{}|", self.metric)
    }

    /// Whether `c` regressed past this rule.
    pub fn regressed(&self, c: &Change) -> bool {
        let moved = if self.relative {
            c.relative.map(|r| r * self.sign > self.threshold)
        } else {
            Some(c.change * self.sign > self.threshold)
        };
        moved.unwrap_or(false) && c.significant != Some(false)
    }
}

/// Both sides compared.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub changes: Vec<Change>,
    /// Configurations found on one side only.
    pub only_base: Vec<String>,
    pub only_new: Vec<String>,
    /// Things a reader should know (different scenarios, runs left out).
    pub notes: Vec<String>,
    pub alpha: f64,
}

/// A configuration: the values of the parameters both sides swept, and the group.
fn config_key(t: &Table, row: usize, params: &[String]) -> String {
    let mut parts: Vec<String> = params
        .iter()
        .map(|c| format!("{}={}", &c["param_".len()..], t.text(row, c)))
        .collect();
    let g = group_of(t, row);
    if g != "main" {
        parts.push(format!("group={g}"));
    }
    if parts.is_empty() {
        "all runs".to_string()
    } else {
        parts.join(", ")
    }
}

fn completed_rows(t: &Table, side: &str, notes: &mut Vec<String>) -> Vec<usize> {
    let mut keep = Vec::new();
    for r in 0..t.len() {
        match t.get(r, "outcome") {
            Some(o) if !o.is_empty() && o != "completed" => notes.push(format!(
                "{side} run {} left out: its outcome is {o}",
                t.text(r, "run")
            )),
            _ => keep.push(r),
        }
    }
    keep
}

/// Compare `base` and `new` summary tables. `metrics`: only these (all when empty).
pub fn compare(base: &Table, new: &Table, alpha: f64, metrics: &[String]) -> Comparison {
    let mut notes = Vec::new();
    let name = |t: &Table| {
        if t.is_empty() {
            String::new()
        } else {
            t.text(0, "scenario").to_string()
        }
    };
    if name(base) != name(new) {
        notes.push(format!(
            "the scenarios differ ({} and {}): runs are matched by their parameters only",
            name(base),
            name(new)
        ));
    }
    let bp = base.param_columns();
    let np = new.param_columns();
    let params: Vec<String> = bp.iter().filter(|c| np.contains(c)).cloned().collect();
    for c in bp.iter().chain(&np).filter(|c| !params.contains(c)) {
        notes.push(format!("{c} is on one side only: not used to match runs"));
    }
    let brows = completed_rows(base, "base", &mut notes);
    let nrows = completed_rows(new, "new", &mut notes);
    // Configurations in the order base has them.
    let mut keys: Vec<String> = Vec::new();
    for &r in &brows {
        let k = config_key(base, r, &params);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let new_keys: Vec<String> = nrows.iter().map(|&r| config_key(new, r, &params)).collect();
    let only_new: Vec<String> = {
        let mut v: Vec<String> = new_keys
            .iter()
            .filter(|k| !keys.contains(k))
            .cloned()
            .collect();
        v.dedup();
        v
    };
    let mut only_base = Vec::new();
    let mut changes = Vec::new();
    let columns: Vec<&String> = base
        .columns
        .iter()
        .filter(|c| new.has(c))
        .filter(|c| !IDENTITY.contains(&c.as_str()) && !c.starts_with("param_"))
        .filter(|c| metrics.is_empty() || metrics.iter().any(|m| m == *c))
        .collect();
    for key in &keys {
        let b: Vec<usize> = brows
            .iter()
            .copied()
            .filter(|&r| &config_key(base, r, &params) == key)
            .collect();
        let n: Vec<usize> = nrows
            .iter()
            .zip(&new_keys)
            .filter(|(_, k)| *k == key)
            .map(|(r, _)| *r)
            .collect();
        if n.is_empty() {
            only_base.push(key.clone());
            continue;
        }
        let mut setting_notes = Vec::new();
        for s in SETTINGS {
            let bv = base.text(b[0], s);
            let nv = new.text(n[0], s);
            if base.has(s) && new.has(s) && bv != nv {
                setting_notes.push(format!("{s} {bv} → {nv}"));
            }
        }
        if !setting_notes.is_empty() {
            notes.push(format!(
                "{key}: settings differ: {}",
                setting_notes.join(", ")
            ));
        }
        for col in &columns {
            let dir = direction(col);
            let take = |t: &Table, rows: &[usize]| -> Vec<f64> {
                rows.iter()
                    .filter_map(|&r| t.num(r, col))
                    .map(|v| {
                        if dir == Direction::AbsHigherWorse {
                            v.abs()
                        } else {
                            v
                        }
                    })
                    .collect()
            };
            let bv = take(base, &b);
            let nv = take(new, &n);
            if bv.is_empty() || nv.is_empty() {
                continue;
            }
            let metric = if dir == Direction::AbsHigherWorse {
                format!("|{col}|")
            } else {
                col.to_string()
            };
            changes.push(change(key, &metric, dir, bv, nv, alpha));
        }
    }
    Comparison {
        changes,
        only_base,
        only_new,
        notes,
        alpha,
    }
}

fn change(
    config: &str,
    metric: &str,
    dir: Direction,
    base: Vec<f64>,
    new: Vec<f64>,
    alpha: f64,
) -> Change {
    let events = is_event_count(metric);
    let worst = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (bm, nm) = if events {
        (worst(&base), worst(&new))
    } else {
        (
            median(&base).expect("non-empty"),
            median(&new).expect("non-empty"),
        )
    };
    let d = nm - bm;
    let (n, m) = (base.len(), new.len());
    let test = mann_whitney(&base, &new);
    let (shift, ci) = hodges_lehmann(&base, &new, alpha);
    let min_p = smallest_p(n, m);
    let (significant, note) = if events {
        (
            Some(d != 0.0),
            "a count of bad events: each side's worst run, no test needed".to_string(),
        )
    } else if n < 2 || m < 2 {
        (
            None,
            format!("no test: {n} run(s) against {m}; set repeats for a significance test"),
        )
    } else if min_p >= alpha {
        (
            None,
            format!("no test reaches p < {alpha} with {n}+{m} runs (smallest p {min_p:.3}): the median change alone decides"),
        )
    } else {
        (Some(test < alpha), String::new())
    };
    let verdict = match significant {
        None => "no test",
        Some(false) => "same",
        Some(true) => {
            let up = d > 0.0 || (d == 0.0 && shift > 0.0);
            match (dir, up) {
                (Direction::Neutral, _) => "changed",
                (Direction::HigherWorse | Direction::AbsHigherWorse, true) => "worse",
                (Direction::HigherWorse | Direction::AbsHigherWorse, false) => "better",
                (Direction::HigherBetter, true) => "better",
                (Direction::HigherBetter, false) => "worse",
            }
        }
    };
    Change {
        config: config.to_string(),
        metric: metric.to_string(),
        direction: dir,
        base_median: bm,
        new_median: nm,
        change: d,
        relative: (bm != 0.0).then(|| d / bm.abs()),
        shift,
        ci,
        p: (n >= 1 && m >= 1 && n + m > 2).then_some(test),
        significant,
        verdict,
        note,
        base,
        new,
    }
}

impl Comparison {
    /// The table for people, one block per configuration.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut last = "";
        let header = format!(
            "  {:<24} {:>6} {:>12} {:>12} {:>22} {:>30} {:>7}  {}",
            "metric",
            "worse",
            "base median",
            "new median",
            "change",
            "CI of the shift",
            "p",
            "verdict"
        );
        for c in &self.changes {
            if c.config != last {
                let _ = writeln!(
                    out,
                    "{}{} ({} vs {} runs)",
                    if last.is_empty() { "" } else { "\n" },
                    c.config,
                    c.base.len(),
                    c.new.len()
                );
                let _ = writeln!(out, "{header}");
                last = &c.config;
            }
            let col = c.metric.trim_matches('|');
            let rel = c
                .relative
                .map(|r| format!(" ({:+.1}%)", r * 100.0))
                .unwrap_or_default();
            let ci =
                c.ci.map(|(lo, hi, level)| {
                    format!(
                        "[{}, {}] {:.0}%",
                        signed(col, lo),
                        signed(col, hi),
                        level * 100.0
                    )
                })
                .unwrap_or_else(|| "-".to_string());
            let p = c.p.map(|p| format!("{p:.3}")).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "  {:<24} {:>6} {:>12} {:>12} {:>22} {:>30} {:>7}  {}",
                c.metric,
                c.direction.name(),
                human(col, c.base_median),
                human(col, c.new_median),
                format!("{}{rel}", signed(col, c.change)),
                ci,
                p,
                c.verdict
            );
        }
        let mut why: Vec<&str> = self
            .changes
            .iter()
            .map(|c| c.note.as_str())
            .filter(|n| !n.is_empty())
            .collect();
        why.dedup();
        for n in why {
            let _ = writeln!(out, "note: {n}");
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        for k in &self.only_base {
            let _ = writeln!(out, "note: {k}: in the base only, not compared");
        }
        for k in &self.only_new {
            let _ = writeln!(out, "note: {k}: in the new result only, not compared");
        }
        out
    }

    /// compare.csv: one row per configuration and metric.
    pub fn write_csv(&self, path: &Path, fail_on: &[FailOn]) -> io::Result<()> {
        let mut w = csv::Writer::from_path(path)?;
        w.write_record([
            "config",
            "metric",
            "worse_when",
            "base_n",
            "new_n",
            "base_median",
            "new_median",
            "change",
            "change_rel",
            "shift",
            "ci_low",
            "ci_high",
            "ci_level",
            "p_value",
            "significant",
            "verdict",
            "fail_on",
            "regressed",
        ])?;
        let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for c in &self.changes {
            let rules: Vec<&FailOn> = fail_on.iter().filter(|f| f.applies(c)).collect();
            w.write_record([
                c.config.clone(),
                c.metric.clone(),
                match c.direction {
                    Direction::HigherWorse => "higher",
                    Direction::HigherBetter => "lower",
                    Direction::AbsHigherWorse => "further_from_zero",
                    Direction::Neutral => "",
                }
                .to_string(),
                c.base.len().to_string(),
                c.new.len().to_string(),
                c.base_median.to_string(),
                c.new_median.to_string(),
                c.change.to_string(),
                opt(c.relative),
                c.shift.to_string(),
                opt(c.ci.map(|x| x.0)),
                opt(c.ci.map(|x| x.1)),
                opt(c.ci.map(|x| x.2)),
                opt(c.p),
                match c.significant {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "no test",
                }
                .to_string(),
                c.verdict.to_string(),
                rules
                    .iter()
                    .map(|f| f.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                if rules.is_empty() {
                    String::new()
                } else {
                    rules.iter().any(|f| f.regressed(c)).to_string()
                },
            ])?;
        }
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions() {
        assert_eq!(direction("latency_p99_s"), Direction::HigherWorse);
        assert_eq!(direction("throttled_pct"), Direction::HigherWorse);
        assert_eq!(direction("stall_share"), Direction::HigherWorse);
        assert_eq!(direction("fast_iters_per_s"), Direction::HigherBetter);
        assert_eq!(direction("share_error"), Direction::AbsHigherWorse);
        assert_eq!(direction("cpu_share"), Direction::Neutral);
    }

    #[test]
    fn one_leak_in_three_runs_fails_a_count_rule_though_the_median_is_unchanged() {
        let c = change(
            "all runs",
            "leaked_escaped",
            direction("leaked_escaped"),
            vec![0.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
            0.05,
        );
        assert_eq!((c.base_median, c.new_median), (0.0, 1.0), "the worst runs");
        assert_eq!(c.verdict, "worse");
        assert!(parse_fail_on("leaked_escaped:+0").unwrap().regressed(&c));
        // No leak on either side: nothing to fail.
        let same = change(
            "all runs",
            "leaked_escaped",
            direction("leaked_escaped"),
            vec![0.0; 3],
            vec![0.0; 3],
            0.05,
        );
        assert!(!parse_fail_on("leaked_escaped:+0").unwrap().regressed(&same));
        // A measured metric is still judged by its median and a test.
        let m = change(
            "all runs",
            "latency_p99_s",
            direction("latency_p99_s"),
            vec![1.0, 1.0, 1.0],
            vec![1.0, 9.0, 1.0],
            0.05,
        );
        assert_eq!(m.new_median, 1.0);
    }

    #[test]
    fn fail_on_rules() {
        let f = parse_fail_on("latency_p99_s:+10%").unwrap();
        assert_eq!((f.relative, f.sign), (true, 1.0));
        assert!((f.threshold - 0.1).abs() < 1e-12);
        let f = parse_fail_on("throttled_pct:+5").unwrap();
        assert_eq!((f.relative, f.threshold), (false, 5.0));
        assert_eq!(parse_fail_on("fast_iters_per_s:5%").unwrap().sign, -1.0);
        assert_eq!(parse_fail_on("latency_p99_s:10%").unwrap().sign, 1.0);
        assert!(parse_fail_on("cpu_share:0.1").is_err());
        assert_eq!(parse_fail_on("cpu_share:-0.1").unwrap().sign, -1.0);
        assert!(parse_fail_on("latency_p99_s").is_err());
        assert!(parse_fail_on("latency_p99_s:+x").is_err());
    }
}
