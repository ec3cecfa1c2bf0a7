//! A run with `[[change]]`s, phase by phase: every group's counters between one change
//! and the next (phases.csv), read back from the run's rows of timeseries.csv in one
//! pass, in memory that grows with the changes, not the run's length.
//!
//! A change is made right after a tick (the tick's row has `t_s` at or before the
//! change's `applied_s`), so a row belongs to the phase its end falls in. Phase 0 starts
//! at the group's workload's time zero, like the summary's window; the others at the
//! change. How soon a change takes effect is read from when the group is first
//! throttled in the phase, in time and in the group's own CFS periods.

use crate::report::files::timeseries::Columns;
use serde::Serialize;
use std::io::Read;

/// One group over one phase: a row of phases.csv.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PhaseRow {
    pub run: usize,
    pub group: String,
    /// 0 before the first change, k after the k-th.
    pub phase: usize,
    /// What started the phase: `<group>: <limit>` of the change ("" for phase 0).
    pub change: String,
    /// When the phase starts and ends, in s since the run's first sample.
    pub from_s: f64,
    pub to_s: f64,
    /// The group's own CFS quota in the phase, in CPUs (empty: none).
    pub limit_cpus: Option<f64>,
    pub usage_s: f64,
    /// usage_s over the phase's length.
    pub cpu_share: Option<f64>,
    pub nr_periods: Option<u64>,
    pub nr_throttled: Option<u64>,
    pub throttled_pct: Option<f64>,
    pub throttled_s: Option<f64>,
    /// The end of the first sample interval in the phase in which the group was
    /// throttled, in s after the phase's start (empty: never throttled in it).
    pub first_throttled_after_s: Option<f64>,
    /// The group's CFS periods that had ended in the phase by then (empty as above).
    pub first_throttled_period: Option<u64>,
}

/// What the scan needs: each group's name and time zero (s since the first sample; None:
/// the first sample), and each change's time and text.
pub struct PhaseSpec<'a> {
    pub groups: Vec<(&'a str, Option<f64>)>,
    pub changes: Vec<(f64, String)>,
}

#[derive(Default, Clone)]
struct Acc {
    started: bool,
    from_s: f64,
    to_s: f64,
    usage_s: f64,
    periods: Option<u64>,
    throttled: Option<u64>,
    throttled_s: Option<f64>,
    first: Option<(f64, u64)>,
    limit: Option<f64>,
}

fn add<T: std::ops::Add<Output = T>>(sum: Option<T>, v: Option<T>) -> Option<T> {
    match (sum, v) {
        (Some(s), Some(v)) => Some(s + v),
        (None, v) => v,
        (s, None) => s,
    }
}

/// The phases of run `run`, from its rows of timeseries.csv (`header` is the file's).
pub fn scan(
    header: &csv::ByteRecord,
    rows: impl Read,
    run: usize,
    spec: &PhaseSpec,
) -> csv::Result<Vec<PhaseRow>> {
    let cols = Columns::of(header);
    let n = spec.groups.len();
    let phases = spec.changes.len() + 1;
    let mut acc = vec![Acc::default(); n * phases];
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(rows);
    let mut rec = csv::ByteRecord::new();
    while r.read_byte_record(&mut rec)? {
        let Some(row) = cols.row(&rec) else {
            continue;
        };
        if row.run != run {
            continue;
        }
        let name = cols.group(&rec);
        let Some(g) = spec.groups.iter().position(|(n, _)| n.as_bytes() == name) else {
            continue;
        };
        let phase = spec.changes.iter().filter(|(at, _)| row.t_s > *at).count();
        let from_s = match phase {
            0 => match spec.groups[g].1 {
                Some(zero) if row.t_s <= zero => continue,
                Some(zero) => zero,
                None => row.t_s - row.dt_s,
            },
            k => spec.changes[k - 1].0,
        };
        let a = &mut acc[phase * n + g];
        if !a.started {
            a.started = true;
            a.from_s = from_s.max(0.0);
        }
        a.to_s = row.t_s;
        a.usage_s += row.usage_s;
        a.periods = add(a.periods, row.nr_periods);
        a.throttled = add(a.throttled, row.nr_throttled);
        a.throttled_s = add(a.throttled_s, row.throttled_s);
        a.limit = row.limit_cpus;
        if a.first.is_none() && row.nr_throttled.is_some_and(|t| t > 0) {
            a.first = Some((row.t_s - a.from_s, a.periods.unwrap_or(0)));
        }
    }
    let mut out = Vec::new();
    for phase in 0..phases {
        for (g, (name, _)) in spec.groups.iter().enumerate() {
            let a = &acc[phase * n + g];
            if !a.started {
                continue;
            }
            let len = a.to_s - a.from_s;
            out.push(PhaseRow {
                run,
                group: name.to_string(),
                phase,
                change: match phase {
                    0 => String::new(),
                    k => spec.changes[k - 1].1.clone(),
                },
                from_s: a.from_s,
                to_s: a.to_s,
                limit_cpus: a.limit,
                usage_s: a.usage_s,
                cpu_share: (len > 0.0).then(|| a.usage_s / len),
                nr_periods: a.periods,
                nr_throttled: a.throttled,
                throttled_pct: match (a.periods, a.throttled) {
                    (Some(p), Some(t)) if p > 0 => Some(100.0 * t as f64 / p as f64),
                    _ => None,
                },
                throttled_s: a.throttled_s,
                first_throttled_after_s: a.first.map(|f| f.0),
                first_throttled_period: a.first.map(|f| f.1),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::files::timeseries::header;

    fn rows(text: &str) -> (csv::ByteRecord, String) {
        let h = header();
        let mut r = csv::Reader::from_reader(h.as_bytes());
        (r.byte_headers().unwrap().clone(), text.to_string())
    }

    #[test]
    fn rows_fall_in_the_phase_their_end_is_in_and_the_first_throttle_is_counted_in_periods() {
        // Group a: 0.8 CPUs until a change at 0.2 s, then throttled from its second
        // period after it. Rows every 0.1 s; one period per row.
        let text = "\
0,a,0.1,0.1,0.08,0.8,1,0,0.0,0,,,0,0,,,0.8
0,a,0.2,0.1,0.08,0.8,1,0,0.0,0,,,0,0,,,0.8
0,a,0.3,0.1,0.05,0.5,1,0,0.0,0,,,0,0,,,0.2
0,a,0.4,0.1,0.02,0.2,1,1,0.05,0.5,,,0,0,,,0.2
0,a,0.5,0.1,0.02,0.2,1,1,0.05,0.5,,,0,0,,,0.2
1,a,0.5,0.1,0.09,0.9,1,1,0.05,0.5,,,0,0,,,0.2
";
        let (h, t) = rows(text);
        let spec = PhaseSpec {
            groups: vec![("a", Some(0.05))],
            changes: vec![(0.2001, "a: 0.2 CPUs".into())],
        };
        let p = scan(&h, t.as_bytes(), 0, &spec).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].phase, p[0].from_s, p[0].to_s), (0, 0.05, 0.2));
        assert_eq!(p[0].nr_throttled, Some(0));
        assert_eq!(p[0].first_throttled_period, None);
        assert!((p[0].cpu_share.unwrap() - 0.16 / 0.15).abs() < 1e-9);
        assert_eq!(p[0].limit_cpus, Some(0.8));
        assert_eq!(p[1].change, "a: 0.2 CPUs");
        assert_eq!((p[1].from_s, p[1].to_s), (0.2001, 0.5));
        assert_eq!(p[1].nr_periods, Some(3));
        assert_eq!(p[1].nr_throttled, Some(2));
        assert_eq!(p[1].first_throttled_period, Some(2));
        assert!((p[1].first_throttled_after_s.unwrap() - 0.1999).abs() < 1e-9);
        assert_eq!(p[1].limit_cpus, Some(0.2));
        assert!(
            (p[1].usage_s - 0.09).abs() < 1e-12,
            "run 1's row is not run 0's"
        );
    }

    #[test]
    fn counters_a_kernel_does_not_report_stay_empty() {
        let text = "0,a,0.1,0.1,0.08,0.8,,,,,,,0,0,,,\n0,a,0.3,0.2,0.08,0.4,,,,,,,0,0,,,\n";
        let (h, t) = rows(text);
        let spec = PhaseSpec {
            groups: vec![("a", None)],
            changes: vec![(0.15, "a: weight 10".into())],
        };
        let p = scan(&h, t.as_bytes(), 0, &spec).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].from_s, 0.0);
        assert_eq!(p[1].nr_periods, None);
        assert_eq!(p[1].throttled_pct, None);
        assert_eq!(p[1].limit_cpus, None);
        assert_eq!(p[1].cpu_share, Some(0.08 / 0.15));
    }
}
