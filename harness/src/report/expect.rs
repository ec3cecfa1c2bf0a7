//! Expectations that `throttlebench check` tests over summary.csv: parsing and evaluation.
//!
//! ```text
//! expectation := [ "[" condition { "," condition } "]" ] term op number [unit]
//! term        := column | aggregate "(" column ")"
//! aggregate   := every | median | mean | min | max | pNN | upperNN | lowerNN
//! condition   := column ("=" | "!=") value        (value may be "quoted")
//! op          := "<" | "<=" | ">" | ">=" | "==" | "!="
//! unit        := s | ms | us | µs | ns   (columns ending in _s; converted to seconds)
//!              | %                      (columns ending in _pct; no conversion)
//! ```
//!
//! Examples: `throttled_pct < 20`, `median(latency_p99_s) <= 50ms`,
//! `[param_limiter.quota=40ms] upper95(throttled_s) < 3`, `leaked_stopped == 0`.
//!
//! - A column is a summary.csv column; `param_` may be left out of swept fields
//!   (`limiter.quota` for `param_limiter.quota`) when no fixed column has that name.
//! - The rows tested are the summary rows (one per run, or per run and group) that every
//!   condition selects; a condition compares text, or numbers (durations such as `40ms`
//!   against `_s` columns in seconds) when both sides are numbers.
//! - Without an aggregate (or with `every`) **every selected row must satisfy the
//!   expectation**; the value reported is the worst row's. With `repeats = 1` this is just
//!   the run's value.
//! - `median`, `mean`, `min`, `max`, `pNN` (nearest-rank percentile, `p90`) are over the
//!   selected rows. `upperNN` / `lowerNN` are one-sided NN% confidence bounds of the mean
//!   over the selected rows (Student's t: mean ± t(NN%, n−1)·s/√n; at least 2 rows); they
//!   assume independent runs and a roughly normal mean, so with few, skewed runs they
//!   are approximate.
//! - The margin is how far the value is on the passing side of the limit (negative:
//!   failed by that much), absolutely and relative to the limit.

use super::read::{run_label, Table};
use crate::units::{human, signed};
use fibtest::span::Span;
use fibtest::stats::{mean, median, percentile, sorted, std_dev, t_quantile};
use std::fmt;

/// A parsed expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// The name given in the scenario's `[expect]` table, if it came from there.
    pub name: Option<String>,
    /// The expression as written.
    pub text: String,
    pub select: Vec<Condition>,
    pub aggregate: Aggregate,
    /// The column as written (resolved against the table when evaluated).
    pub column: String,
    pub op: Op,
    /// The limit in the column's unit (seconds for `_s` columns).
    pub limit: f64,
}

/// `column=value` or `column!=value`, selecting summary rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: String,
    pub equal: bool,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregate {
    /// Every selected row must hold (the default).
    Every,
    Median,
    Mean,
    Min,
    Max,
    /// Nearest-rank percentile over rows, 0 < p <= 100.
    Percentile(f64),
    /// One-sided upper confidence bound of the mean, at this confidence (0.95).
    Upper(f64),
    Lower(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn symbol(&self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// Whether `v op limit` holds.
    pub fn holds(&self, v: f64, limit: f64) -> bool {
        match self {
            Op::Lt => v < limit,
            Op::Le => v <= limit,
            Op::Gt => v > limit,
            Op::Ge => v >= limit,
            Op::Eq => v == limit,
            Op::Ne => v != limit,
        }
    }

    /// How far `v` is on the passing side of `limit` (negative: on the failing side).
    pub fn margin(&self, v: f64, limit: f64) -> f64 {
        match self {
            Op::Lt | Op::Le => limit - v,
            Op::Gt | Op::Ge => v - limit,
            Op::Eq => -(v - limit).abs(),
            Op::Ne => (v - limit).abs(),
        }
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |x: f64| format!("{}", (x * 1000.0).round() / 10.0);
        match self {
            Aggregate::Every => write!(f, "every"),
            Aggregate::Median => write!(f, "median"),
            Aggregate::Mean => write!(f, "mean"),
            Aggregate::Min => write!(f, "min"),
            Aggregate::Max => write!(f, "max"),
            Aggregate::Percentile(p) => write!(f, "p{p}"),
            Aggregate::Upper(c) => write!(f, "upper{}", pct(*c)),
            Aggregate::Lower(c) => write!(f, "lower{}", pct(*c)),
        }
    }
}

/// An expectation that cannot be parsed, or cannot be tested on a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expectation `{text}`: {message}")]
pub struct ExpectError {
    pub text: String,
    pub message: String,
}

fn err(text: &str, message: impl Into<String>) -> ExpectError {
    ExpectError {
        text: text.to_string(),
        message: message.into(),
    }
}

/// A tiny cursor over the expression text.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
    }
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }
    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.text[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }
    /// A column name: letters, digits, `_`, `.`, `-`.
    fn name(&mut self) -> &'a str {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        &self.text[start..self.pos]
    }
}

fn parse_conditions(
    cur: &mut Cursor,
    whole: &str,
    end: Option<char>,
) -> Result<Vec<Condition>, ExpectError> {
    let mut conds = Vec::new();
    loop {
        let column = cur.name().to_string();
        if column.is_empty() {
            return Err(err(
                whole,
                "expected a column name in the selection, like [param_limiter.quota=40ms]",
            ));
        }
        let equal = if cur.eat("!=") {
            false
        } else if cur.eat("==") || cur.eat("=") {
            true
        } else {
            return Err(err(
                whole,
                format!("expected `=` or `!=` after `{column}` in the selection"),
            ));
        };
        cur.skip_ws();
        let value = if cur.eat("\"") {
            let rest = cur.rest();
            let Some(close) = rest.find('"') else {
                return Err(err(whole, "unclosed quote in the selection"));
            };
            cur.pos += close + 1;
            rest[..close].to_string()
        } else {
            let rest = cur.rest();
            let stop = rest
                .find(|c: char| c == ',' || Some(c) == end)
                .unwrap_or(rest.len());
            cur.pos += stop;
            rest[..stop].trim().to_string()
        };
        conds.push(Condition {
            column,
            equal,
            value,
        });
        if !cur.eat(",") {
            return Ok(conds);
        }
    }
}

/// Parse a selection for `--where`: `param_limiter.quota=40ms,group=site1` (brackets optional).
pub fn parse_selection(text: &str) -> Result<Vec<Condition>, ExpectError> {
    let mut cur = Cursor { text, pos: 0 };
    let bracket = cur.eat("[");
    let conds = parse_conditions(&mut cur, text, bracket.then_some(']'))?;
    if bracket && !cur.eat("]") {
        return Err(err(text, "expected `]` after the selection"));
    }
    cur.skip_ws();
    if !cur.rest().is_empty() {
        return Err(err(
            text,
            format!("unexpected `{}` after the selection", cur.rest()),
        ));
    }
    Ok(conds)
}

fn parse_aggregate(word: &str) -> Option<Aggregate> {
    let level = |digits: &str| -> Option<f64> {
        let v: f64 = digits.parse().ok()?;
        (v > 0.0 && v < 100.0).then_some(v / 100.0)
    };
    Some(match word {
        "every" | "all" => Aggregate::Every,
        "median" => Aggregate::Median,
        "mean" => Aggregate::Mean,
        "min" => Aggregate::Min,
        "max" => Aggregate::Max,
        _ => {
            if let Some(d) = word.strip_prefix("upper") {
                Aggregate::Upper(level(d)?)
            } else if let Some(d) = word.strip_prefix("lower") {
                Aggregate::Lower(level(d)?)
            } else if let Some(d) = word.strip_prefix('p') {
                let p: f64 = d.parse().ok()?;
                if !(p > 0.0 && p <= 100.0) {
                    return None;
                }
                Aggregate::Percentile(p)
            } else {
                return None;
            }
        }
    })
}

/// Parse one expectation (see the module doc for the syntax).
pub fn parse(text: &str) -> Result<Expectation, ExpectError> {
    let mut cur = Cursor { text, pos: 0 };
    let select = if cur.eat("[") {
        let c = parse_conditions(&mut cur, text, Some(']'))?;
        if !cur.eat("]") {
            return Err(err(text, "expected `]` after the selection"));
        }
        c
    } else {
        Vec::new()
    };
    let first = cur.name().to_string();
    if first.is_empty() {
        return Err(err(
            text,
            "expected a column name, like `throttled_pct < 20`",
        ));
    }
    let (aggregate, column) = if cur.eat("(") {
        let Some(a) = parse_aggregate(&first) else {
            return Err(err(
                text,
                format!("unknown aggregate `{first}`: use every, median, mean, min, max, pNN (p90), upperNN or lowerNN (upper95)"),
            ));
        };
        let column = cur.name().to_string();
        if column.is_empty() || !cur.eat(")") {
            return Err(err(text, format!("expected `{first}(column)`")));
        }
        (a, column)
    } else {
        (Aggregate::Every, first)
    };
    let op = if cur.eat("<=") {
        Op::Le
    } else if cur.eat(">=") {
        Op::Ge
    } else if cur.eat("==") {
        Op::Eq
    } else if cur.eat("!=") {
        Op::Ne
    } else if cur.eat("<") {
        Op::Lt
    } else if cur.eat(">") {
        Op::Gt
    } else if cur.eat("=") {
        return Err(err(text, "use `==` to compare for equality"));
    } else {
        return Err(err(
            text,
            format!("expected <, <=, >, >=, == or != after `{column}`"),
        ));
    };
    cur.skip_ws();
    let number_text = cur.rest().trim();
    if number_text.is_empty() {
        return Err(err(text, "expected a number after the comparison"));
    }
    let limit = parse_limit(number_text, &column).map_err(|m| err(text, m))?;
    Ok(Expectation {
        name: None,
        text: text.trim().to_string(),
        select,
        aggregate,
        column,
        op,
        limit,
    })
}

/// A limit with an optional unit, in the column's unit.
fn parse_limit(s: &str, column: &str) -> Result<f64, String> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(s.len());
    // `1e3ms` reads as 1e3 ms; but a lone trailing `e` belongs to no number.
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a number (with an optional unit: 50ms, 20%)"))?;
    let unit = unit.trim();
    let scale = match unit {
        "" => 1.0,
        "%" if column.ends_with("_pct") => 1.0,
        "%" => {
            return Err(format!(
                "`%` only goes with a column ending in _pct, not `{column}`"
            ))
        }
        "s" | "ms" | "us" | "µs" | "ns"
            if !column.ends_with("_s") || column.ends_with("_per_s") =>
        {
            return Err(format!(
                "a time unit only goes with a column in seconds (ending in _s), not `{column}`"
            ))
        }
        "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        other => return Err(format!("unknown unit `{other}` (s, ms, us, ns, %)")),
    };
    Ok(v * scale)
}

/// Parse the expectations of a scenario's `[expect]` table (name → expression).
pub fn parse_named(table: &[(String, String)]) -> Result<Vec<Expectation>, (String, ExpectError)> {
    table
        .iter()
        .map(|(name, text)| {
            parse(text)
                .map(|mut e| {
                    e.name = Some(name.clone());
                    e
                })
                .map_err(|e| (name.clone(), e))
        })
        .collect()
}

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
        return Err(err(
            &e.text,
            format!("no column `{}`; the columns are {}", e.column, available(t)),
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let cols = [
            "scenario",
            "run",
            "param_limiter.quota",
            "repeat",
            "quota_s",
            "throttled_pct",
            "latency_p99_s",
            "fast_iters_per_s",
        ];
        let rows = [
            ["s", "0", "40ms", "0", "0.04", "80", "0.44", ""],
            ["s", "1", "40ms", "1", "0.04", "82", "0.45", ""],
            ["s", "2", "40ms", "2", "0.04", "78", "0.43", ""],
            ["s", "3", "80ms", "0", "0.08", "10", "0.2", ""],
            ["s", "4", "80ms", "1", "0.08", "12", "0.21", ""],
            ["s", "5", "80ms", "2", "0.08", "11", "0.22", ""],
        ];
        Table::new(
            cols.iter().map(|s| s.to_string()).collect(),
            rows.iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect(),
        )
    }

    #[test]
    fn parses_the_documented_forms() {
        let e = parse("throttled_pct < 20").unwrap();
        assert_eq!(
            (e.aggregate, e.column.as_str(), e.op, e.limit),
            (Aggregate::Every, "throttled_pct", Op::Lt, 20.0)
        );
        let e = parse("median(latency_p99_s) <= 50ms").unwrap();
        assert_eq!(e.aggregate, Aggregate::Median);
        assert!((e.limit - 0.05).abs() < 1e-15);
        let e =
            parse("[param_limiter.quota=40ms, group != b] upper95(throttled_s)>=1.5e-1").unwrap();
        assert_eq!(e.select.len(), 2);
        assert_eq!(
            e.select[0],
            Condition {
                column: "param_limiter.quota".into(),
                equal: true,
                value: "40ms".into()
            }
        );
        assert!(!e.select[1].equal);
        assert_eq!(e.aggregate, Aggregate::Upper(0.95));
        assert_eq!(e.op, Op::Ge);
        assert!((e.limit - 0.15).abs() < 1e-15);
        assert_eq!(
            parse("p90(x) == 3").unwrap().aggregate,
            Aggregate::Percentile(90.0)
        );
        assert_eq!(
            parse("lower99(x) != 3").unwrap().aggregate,
            Aggregate::Lower(0.99)
        );
        assert_eq!(parse("throttled_pct < 20%").unwrap().limit, 20.0);
        let e =
            parse(r#"[param_limiter="kind=cfs period=100ms quota=10ms"] cpu_share < 0.2"#).unwrap();
        assert_eq!(e.select[0].value, "kind=cfs period=100ms quota=10ms");
    }

    #[test]
    fn rejects_with_a_reason() {
        for (text, says) in [
            ("", "expected a column"),
            ("throttled_pct = 3", "=="),
            ("throttled_pct 3", "expected <"),
            ("throttled_pct <", "expected a number"),
            ("throttled_pct < abc", "not a number"),
            ("throttled_pct < 3ms", "time unit"),
            ("latency_p99_s < 3%", "_pct"),
            ("latency_p99_s < 3 parsecs", "unknown unit"),
            ("average(x) < 3", "unknown aggregate"),
            ("upper100(x) < 3", "unknown aggregate"),
            ("median(x < 3", "expected `median(column)`"),
            ("[a=1 x < 3", "expected `]`"),
            ("[=1] x < 3", "column name"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn every_row_by_default_reports_the_worst() {
        let t = table();
        let v = evaluate(&parse("throttled_pct < 81").unwrap(), &t, &[]).unwrap();
        assert!(!v.held);
        assert_eq!(v.value, 82.0);
        assert_eq!(v.margin, -1.0);
        assert_eq!(v.worst.as_deref(), Some("run 1 (limiter.quota=40ms)"));
        let v = evaluate(&parse("throttled_pct > 5").unwrap(), &t, &[]).unwrap();
        assert!(v.held);
        assert_eq!(v.value, 10.0);
        assert!((v.relative.unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn selections_by_text_number_and_duration() {
        let t = table();
        let e = parse("[limiter.quota=40ms] median(latency_p99_s) <= 440ms").unwrap();
        let v = evaluate(&e, &t, &[]).unwrap();
        assert!(v.held);
        assert_eq!(v.values.len(), 3);
        assert!((v.value - 0.44).abs() < 1e-12);
        assert!(v.margin.abs() < 1e-12);
        let v = evaluate(
            &parse("[quota_s=80ms] max(throttled_pct) < 12.5").unwrap(),
            &t,
            &[],
        )
        .unwrap();
        assert_eq!((v.held, v.value), (true, 12.0));
        let w = parse_selection("param_limiter.quota=80ms").unwrap();
        let v = evaluate(&parse("throttled_pct < 20").unwrap(), &t, &w).unwrap();
        assert!(v.held);
        let v = evaluate(
            &parse("[repeat!=0] min(throttled_pct) == 11").unwrap(),
            &t,
            &w,
        )
        .unwrap();
        assert!(v.held);
    }

    #[test]
    fn aggregates_and_bounds() {
        let t = table();
        let w = parse_selection("[param_limiter.quota=40ms]").unwrap();
        let ev = |s: &str| evaluate(&parse(s).unwrap(), &t, &w).unwrap();
        assert_eq!(ev("mean(throttled_pct) < 100").value, 80.0);
        assert_eq!(ev("p90(throttled_pct) < 100").value, 82.0);
        assert_eq!(ev("min(throttled_pct) < 100").value, 78.0);
        // mean 80, s = 2, n = 3: t(0.95, 2) = 2.919986
        let up = ev("upper95(throttled_pct) < 100").value;
        assert!(
            (up - (80.0 + 2.919986 * 2.0 / 3f64.sqrt())).abs() < 1e-4,
            "{up}"
        );
        let lo = ev("lower95(throttled_pct) > 0").value;
        assert!(
            (lo - (80.0 - 2.919986 * 2.0 / 3f64.sqrt())).abs() < 1e-4,
            "{lo}"
        );
    }

    #[test]
    fn what_cannot_be_tested_says_why() {
        let t = table();
        let e = evaluate(&parse("nope < 3").unwrap(), &t, &[]).unwrap_err();
        assert!(e.message.contains("no column `nope`"), "{e}");
        let e = evaluate(&parse("fast_iters_per_s > 3").unwrap(), &t, &[]).unwrap_err();
        assert!(e.message.contains("is empty"), "{e}");
        let e = evaluate(
            &parse("[limiter.quota=10ms] throttled_pct < 3").unwrap(),
            &t,
            &[],
        )
        .unwrap_err();
        assert!(
            e.message.contains("selects no row") && e.message.contains("40ms, 80ms"),
            "{e}"
        );
        let e = evaluate(
            &parse("[run=0] upper95(throttled_pct) < 3").unwrap(),
            &t,
            &[],
        )
        .unwrap_err();
        assert!(e.message.contains("at least 2 runs"), "{e}");
    }
}
