//! Evaluating an expectation over summary rows, and its one-line report.

use super::{err, Aggregate, Condition, ExpectError, Expectation};
use crate::report::read::{run_label, Table};
use crate::units::{human, signed};
use fibtest::span::Span;
use fibtest::stats::{mean, median, percentile, sorted, std_dev, t_quantile};

/// What testing one expectation gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub held: bool,
    /// The value compared with the limit: the aggregate, or the worst row's value.
    pub value: f64,
    /// How far on the passing side (negative: failed by that much), in the column's unit.
    pub margin: f64,
    /// margin / |limit| (None when the limit is 0).
    pub relative: Option<f64>,
    /// The column actually used (`param_` added when needed).
    pub column: String,
    /// Labels of the selected rows, and their values.
    pub rows: Vec<String>,
    pub values: Vec<f64>,
    /// The row that decided an `every` expectation (its worst).
    pub worst: Option<String>,
}

/// The column `name` refers to: itself, or `param_<name>`.
pub fn resolve_column(t: &Table, name: &str) -> Option<String> {
    if t.has(name) {
        Some(name.to_string())
    } else {
        let p = format!("param_{name}");
        t.has(&p).then_some(p)
    }
}

/// A cell or selection value as a number: plain, or a duration in seconds ("40ms").
fn as_number(s: &str) -> Option<f64> {
    let s = s.trim();
    s.parse::<f64>()
        .ok()
        .or_else(|| s.parse::<Span>().ok().map(|d| d.as_secs_f64()))
}

fn cell_matches(cell: &str, value: &str) -> bool {
    if cell == value {
        return true;
    }
    match (as_number(cell), as_number(value)) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12),
        _ => false,
    }
}

fn available(t: &Table) -> String {
    t.columns.join(", ")
}

/// Edit distance of two short names (insertions, deletions, substitutions).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The column a mistyped `name` most likely meant: the name with its unit suffix
/// (`latency_p99` for `latency_p99_s`), else the one column holding it as whole words
/// (`p99` in `latency_p99_s`, not in `latency_p999_s`), else the nearest by edit
/// distance (at most 3).
pub fn suggest<'c>(name: &str, columns: &'c [String]) -> Option<&'c str> {
    for suffix in ["_s", "_pct", "_per_s"] {
        let with = format!("{name}{suffix}");
        if let Some(c) = columns.iter().find(|c| **c == with) {
            return Some(c);
        }
    }
    let words: Vec<&str> = name.split('_').collect();
    let mut holding = columns.iter().filter(|c| {
        let cw: Vec<&str> = c.split('_').collect();
        cw.windows(words.len()).any(|w| w == words.as_slice())
    });
    if let (Some(only), None) = (holding.next(), holding.next()) {
        return Some(only);
    }
    columns
        .iter()
        .map(|c| (distance(name, c), c))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Check that every column `e` names (its own and its selection's) is one of `columns`
/// (a summary.csv header), so a mistyped name is caught before anything runs, with the
/// name it most likely meant.
pub fn check_columns(e: &Expectation, columns: &[String]) -> Result<(), ExpectError> {
    let t = Table::new(columns.to_vec(), Vec::new());
    let names = std::iter::once(&e.column).chain(e.select.iter().map(|c| &c.column));
    for name in names {
        if resolve_column(&t, name).is_none() {
            let hint = match suggest(name, columns) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the columns are {}", available(&t)),
            };
            return Err(err(&e.text, format!("no column `{name}`; {hint}")));
        }
    }
    Ok(())
}

/// What a reader may not expect of `e`: a bare number against a column in seconds is
/// seconds (`latency_p99_s < 20` is 20 s, not 20 ms).
pub fn notes(e: &Expectation) -> Vec<String> {
    let seconds = e.column.ends_with("_s") && !e.column.ends_with("_per_s");
    if seconds && !e.unit_given && e.limit.abs() >= 1.0 {
        vec![format!(
            "`{}`: {} without a unit is {} s; write it with one (s, ms, us) to say so",
            e.text, e.limit, e.limit
        )]
    } else {
        Vec::new()
    }
}

/// The rows that every condition selects.
pub fn select_rows(t: &Table, conds: &[Condition], text: &str) -> Result<Vec<usize>, ExpectError> {
    let mut cols = Vec::new();
    for c in conds {
        let Some(col) = resolve_column(t, &c.column) else {
            return Err(err(
                text,
                format!(
                    "no column `{}` to select on; the columns are {}",
                    c.column,
                    available(t)
                ),
            ));
        };
        cols.push(col);
    }
    Ok((0..t.len())
        .filter(|&r| {
            conds
                .iter()
                .zip(&cols)
                .all(|(c, col)| cell_matches(t.text(r, col), &c.value) == c.equal)
        })
        .collect())
}

/// Test `e` on summary table `t`, over the rows `e` and `also` (a `--where`) select.
pub fn evaluate(e: &Expectation, t: &Table, also: &[Condition]) -> Result<Verdict, ExpectError> {
    let all: Vec<Condition> = e.select.iter().chain(also).cloned().collect();
    let rows = select_rows(t, &all, &e.text)?;
    let Some(column) = resolve_column(t, &e.column) else {
        let hint = match suggest(&e.column, &t.columns) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("the columns are {}", available(t)),
        };
        return Err(err(&e.text, format!("no column `{}`; {hint}", e.column)));
    };
    if rows.is_empty() {
        let what: Vec<String> = all
            .iter()
            .filter_map(|c| {
                let col = resolve_column(t, &c.column)?;
                let mut vals: Vec<&str> = (0..t.len()).map(|r| t.text(r, &col)).collect();
                vals.sort();
                vals.dedup();
                Some(format!("{col} has {}", vals.join(", ")))
            })
            .collect();
        return Err(err(
            &e.text,
            format!("selects no row ({})", what.join("; ")),
        ));
    }
    let mut values = Vec::new();
    let mut labels = Vec::new();
    let mut empty = Vec::new();
    for &r in &rows {
        match t.num(r, &column) {
            Some(v) => {
                values.push(v);
                labels.push(run_label(t, r));
            }
            None => empty.push(run_label(t, r)),
        }
    }
    if !empty.is_empty() {
        return Err(err(
            &e.text,
            format!(
                "`{column}` is empty (does not apply) in {}: select rows where it applies",
                empty.join(", ")
            ),
        ));
    }
    let n = values.len();
    let (value, worst, held) = match e.aggregate {
        Aggregate::Every => {
            let (i, _) = values
                .iter()
                .enumerate()
                .map(|(i, v)| (i, e.op.margin(*v, e.limit)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("at least one row");
            let held = values.iter().all(|v| e.op.holds(*v, e.limit));
            (values[i], Some(labels[i].clone()), held)
        }
        agg => {
            let s = sorted(values.iter().copied());
            let v = match agg {
                Aggregate::Median => median(&values),
                Aggregate::Mean => mean(&values),
                Aggregate::Min => s.first().copied(),
                Aggregate::Max => s.last().copied(),
                Aggregate::Percentile(p) => percentile(&s, p),
                Aggregate::Upper(c) | Aggregate::Lower(c) => {
                    if n < 2 {
                        return Err(err(
                            &e.text,
                            format!("{agg}() needs at least 2 runs and this selection has {n}: set `repeats` in the scenario"),
                        ));
                    }
                    let half = t_quantile(c, (n - 1) as f64) * std_dev(&values) / (n as f64).sqrt();
                    let m = mean(&values).expect("n >= 2");
                    Some(if matches!(agg, Aggregate::Upper(_)) {
                        m + half
                    } else {
                        m - half
                    })
                }
                Aggregate::Every => unreachable!(),
            }
            .expect("at least one value");
            (v, None, e.op.holds(v, e.limit))
        }
    };
    let margin = e.op.margin(value, e.limit);
    Ok(Verdict {
        held,
        value,
        margin,
        relative: (e.limit != 0.0).then(|| margin / e.limit.abs()),
        column,
        rows: labels,
        values,
        worst,
    })
}

/// One line for a verdict: "PASS  median(latency_p99_s) < 500ms  value ... margin ...".
pub fn report_line(e: &Expectation, v: &Verdict) -> String {
    let name = e
        .name
        .as_ref()
        .map(|n| format!("{n}: "))
        .unwrap_or_default();
    let what = match (&v.worst, e.aggregate) {
        (Some(w), _) if v.values.len() > 1 => format!("worst of {} rows: {}", v.values.len(), w),
        (Some(w), _) => w.clone(),
        (None, a) => format!("{a} of {} rows", v.values.len()),
    };
    let rel = v
        .relative
        .map(|r| format!(" ({:+.1}% of the limit)", r * 100.0))
        .unwrap_or_default();
    let mut line = format!(
        "{}  {name}{}\n      {} = {} [{what}], limit {}, margin {}{}",
        if v.held { "PASS" } else { "FAIL" },
        e.text,
        if e.aggregate == Aggregate::Every {
            v.column.clone()
        } else {
            format!("{}({})", e.aggregate, v.column)
        },
        human(&v.column, v.value),
        human(&v.column, e.limit),
        signed(&v.column, v.margin),
        rel
    );
    if v.values.len() > 1 {
        let s = sorted(v.values.iter().copied());
        line.push_str(&format!(
            "; rows min {} median {} max {}",
            human(&v.column, s[0]),
            human(&v.column, median(&s).expect("non-empty")),
            human(&v.column, s[s.len() - 1])
        ));
    }
    line
}
