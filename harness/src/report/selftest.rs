//! The kernel cgroup selftests' own verdicts (tools/testing/selftests/cgroup/test_cpu.c,
//! Linux 6.12) over a result folder's groups, for `throttlebench check` when a scenario
//! names one with `selftest = "..."`. The selftests compare groups with each other, which
//! the expectation language (one column against a number) cannot say, so their checks are
//! written out here, with their own tolerance function:
//!
//! ```c
//! static inline int values_close(long a, long b, int err)
//! {
//!     return labs(a - b) <= (a + b) / 100 * err;
//! }
//! ```
//!
//! - `test_cpucg_weight_overprovisioned`: three groups with cpu.weight 50, 100, 150, each
//!   hogging every CPU for 10 s. For consecutive groups, the later one used more, and the
//!   difference is `values_close` to the first group's usage within 35%.
//! - `test_cpucg_weight_underprovisioned`: the same groups hogging one CPU each, on a
//!   machine with at least 4 CPUs (the selftest skips below that: a scenario says
//!   `[requires] cpus = 4`). Each group's usage is `values_close` to the first's within 15%.
//!
//! The groups are taken in the scenario's order, which must be the selftest's (weights
//! 50, 100, 150). Usage is each group's `group_share_pct`, its share of all groups' CPU
//! time over the window in which all of them ran: proportional to the usages the selftest
//! reads from cpu.stat when the groups start together, and not skewed where they do not
//! (an emulated guest starts them far apart). `values_close` is scale-free, so shares
//! give the selftest's answer. Each run is judged on its own; any run failing fails.

use super::read::Table;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selftest {
    WeightOverprovisioned,
    WeightUnderprovisioned,
}

impl Selftest {
    pub const ALL: [Selftest; 2] = [
        Selftest::WeightOverprovisioned,
        Selftest::WeightUnderprovisioned,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Selftest::WeightOverprovisioned => "test_cpucg_weight_overprovisioned",
            Selftest::WeightUnderprovisioned => "test_cpucg_weight_underprovisioned",
        }
    }
}

impl fmt::Display for Selftest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Selftest {
    type Err = String;
    fn from_str(s: &str) -> Result<Selftest, String> {
        Selftest::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Selftest::ALL.iter().map(Selftest::name).collect();
                format!("unknown selftest `{s}`: one of {}", names.join(", "))
            })
    }
}

/// The selftest's tolerance: `labs(a - b) <= (a + b) / 100 * err`, on real numbers (the
/// selftest's integer division of microseconds changes the bound by under 1 µs per 100).
pub fn values_close(a: f64, b: f64, err: f64) -> bool {
    (a - b).abs() <= (a + b) / 100.0 * err
}

/// One of the selftest's comparisons, in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub held: bool,
    pub text: String,
}

/// `a` against `b` under `values_close(a, b, err)`: the verdict and the numbers.
fn close_line(run: &str, what_a: &str, a: f64, what_b: &str, b: f64, err: f64) -> Line {
    let allowed = (a + b) / 100.0 * err;
    let diff = (a - b).abs();
    Line {
        held: values_close(a, b, err),
        text: format!(
            "run {run}: {what_a} = {a:.2} vs {what_b} = {b:.2} (points of the groups' CPU): \
             values_close within {err}% allows a difference of {allowed:.2}, it is \
             {diff:.2}, margin {:+.2}",
            allowed - diff
        ),
    }
}

/// The selftest's verdicts over `summary`'s runs.
pub fn evaluate(test: Selftest, summary: &Table) -> Result<Vec<Line>, String> {
    let col = "group_share_pct";
    if !summary.has(col) {
        return Err(format!(
            "{test} compares groups: the summary has no {col} column (a scenario without [[group]] tables?)"
        ));
    }
    // Rows of each run, in the order written (the scenario's group order).
    let mut runs: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    for r in 0..summary.len() {
        let run = summary.text(r, "run").to_string();
        let group = summary.text(r, "group").to_string();
        let v = summary
            .num(r, col)
            .ok_or_else(|| format!("{test}: run {run} group {group} has no {col}"))?;
        match runs.iter_mut().find(|(k, _)| *k == run) {
            Some((_, rows)) => rows.push((group, v)),
            None => runs.push((run, vec![(group, v)])),
        }
    }
    let mut lines = Vec::new();
    for (run, g) in &runs {
        if g.len() < 2 {
            return Err(format!(
                "{test}: run {run} has {} group(s); the selftest compares 3 (weights 50, 100, 150)",
                g.len()
            ));
        }
        let (first, u0) = (&g[0].0, g[0].1);
        for w in g.windows(2) {
            let ((lo, a), (hi, b)) = (&w[0], &w[1]);
            match test {
                Selftest::WeightOverprovisioned => {
                    if *b <= *a {
                        lines.push(Line {
                            held: false,
                            text: format!(
                                "run {run}: {hi} = {b:.2} is not above {lo} = {a:.2}: the \
                                 larger weight did not get more CPU"
                            ),
                        });
                        continue;
                    }
                    lines.push(close_line(
                        run,
                        &format!("{hi} − {lo}"),
                        b - a,
                        first,
                        u0,
                        35.0,
                    ));
                }
                Selftest::WeightUnderprovisioned => {
                    lines.push(close_line(run, hi, *b, first, u0, 15.0));
                }
            }
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[(&str, &str, f64)]) -> Table {
        Table::new(
            vec!["run".into(), "group".into(), "group_share_pct".into()],
            rows.iter()
                .map(|(r, g, v)| vec![r.to_string(), g.to_string(), v.to_string()])
                .collect(),
        )
    }

    #[test]
    fn values_close_is_the_selftests() {
        // labs(a - b) <= (a + b) / 100 * err
        assert!(values_close(100.0, 120.0, 10.0)); // 20 <= 22
        assert!(!values_close(100.0, 125.0, 10.0)); // 25 > 22.5
        assert!(values_close(50.0, 50.0, 0.0));
        // Symmetric.
        assert_eq!(values_close(8.0, 12.0, 20.0), values_close(12.0, 8.0, 20.0));
    }

    #[test]
    fn overprovisioned_wants_each_step_close_to_the_first_group() {
        // The ideal: 1/6, 2/6, 3/6 of the CPU.
        let ok = table(&[("0", "w50", 16.7), ("0", "w100", 33.3), ("0", "w150", 50.0)]);
        let v = evaluate(Selftest::WeightOverprovisioned, &ok).unwrap();
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|l| l.held), "{v:?}");
        assert!(
            v[0].text.contains("w100 − w50 = 16.60 vs w50 = 16.70"),
            "{}",
            v[0].text
        );
        // Weights ignored: equal shares, no step.
        let flat = table(&[("0", "w50", 33.3), ("0", "w100", 33.3), ("0", "w150", 33.4)]);
        let v = evaluate(Selftest::WeightOverprovisioned, &flat).unwrap();
        assert!(!v[0].held && v[0].text.contains("not above"), "{v:?}");
        // A step too small: 25 − 20 = 5 against 20 (allowed 0.35 × 25 = 8.75, off by 15).
        let small = table(&[("0", "a", 20.0), ("0", "b", 25.0), ("0", "c", 55.0)]);
        let v = evaluate(Selftest::WeightOverprovisioned, &small).unwrap();
        assert!(!v[0].held && v[0].text.contains("margin -6.25"), "{v:?}");
        // Each run on its own.
        let two = table(&[
            ("0", "a", 16.7),
            ("0", "b", 33.3),
            ("0", "c", 50.0),
            ("1", "a", 33.3),
            ("1", "b", 33.3),
            ("1", "c", 33.4),
        ]);
        let v = evaluate(Selftest::WeightOverprovisioned, &two).unwrap();
        assert_eq!(v.iter().filter(|l| l.held).count(), 2);
        assert!(v[2].text.starts_with("run 1:"));
    }

    #[test]
    fn underprovisioned_wants_equal_usage_whatever_the_weights() {
        let ok = table(&[("0", "a", 32.0), ("0", "b", 33.0), ("0", "c", 35.0)]);
        assert!(evaluate(Selftest::WeightUnderprovisioned, &ok)
            .unwrap()
            .iter()
            .all(|l| l.held));
        // 16.7 against 50: not within 15%.
        let weighted = table(&[("0", "a", 16.7), ("0", "b", 33.3), ("0", "c", 50.0)]);
        let v = evaluate(Selftest::WeightUnderprovisioned, &weighted).unwrap();
        assert!(v.iter().all(|l| !l.held), "{v:?}");
    }

    #[test]
    fn names_and_unusable_summaries() {
        assert_eq!(
            "test_cpucg_weight_overprovisioned".parse::<Selftest>(),
            Ok(Selftest::WeightOverprovisioned)
        );
        let e = "test_cpucg_max".parse::<Selftest>().unwrap_err();
        assert!(
            e.contains("one of test_cpucg_weight_overprovisioned"),
            "{e}"
        );
        let no_groups = Table::new(vec!["run".into()], vec![vec!["0".into()]]);
        assert!(evaluate(Selftest::WeightOverprovisioned, &no_groups).is_err());
        let one = table(&[("0", "a", 100.0)]);
        assert!(evaluate(Selftest::WeightUnderprovisioned, &one).is_err());
    }
}
