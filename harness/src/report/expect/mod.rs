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

mod evaluate;
mod parse;

pub use evaluate::{
    check_columns, evaluate, notes, report_line, resolve_column, select_rows, suggest, Verdict,
};
pub use parse::{parse, parse_named, parse_selection};

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
    /// Whether the limit was written with a unit (`50ms`, `20%`).
    pub unit_given: bool,
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

pub(crate) fn err(text: &str, message: impl Into<String>) -> ExpectError {
    ExpectError {
        text: text.to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests;
