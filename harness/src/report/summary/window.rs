//! A run's counters over its measured window, read back from its rows of
//! timeseries.csv in one pass and in memory that does not depend on the run's length.
//!
//! Every group is sampled at the same instants (one sampler for all), sample 0 being the
//! run's first. A group's window runs from the last sample at or before its workload's
//! own time zero (after its start-up) to the last sample; the groups' common window, over
//! which their shares of the CPU are compared, runs from the last sample at or before the
//! latest time zero to the last sample at or before the earliest workload end.

use crate::report::files::timeseries::{Columns, Row};
use crate::sample::Delta;
use std::io::Read;

/// What the scan needs to know of a group.
#[derive(Debug, Clone, Default)]
pub struct GroupSpec {
    pub name: String,
    /// The workload's time zero, in s since the run's first sample (None: it reported
    /// none, so its window starts at the first sample).
    pub zero_s: Option<f64>,
    /// When its workload ended, in s since the first sample (None: unknown).
    pub end_s: Option<f64>,
    /// Whether it holds others only (a tree's upper group): its usage is theirs, so it
    /// has no share of the groups' CPU and is not counted in theirs.
    pub holds_only: bool,
}

/// A group's totals over its window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupWindow {
    pub totals: Delta,
    /// Samples in the window (rows after its start).
    pub samples: u64,
}

/// Cumulative counters of one group, summed from its rows.
#[derive(Debug, Clone, Copy, Default)]
struct Cumulative {
    t_s: f64,
    usage_s: f64,
    nr_periods: u64,
    nr_throttled: u64,
    throttled_s: f64,
    nr_bursts: u64,
    burst_time_s: f64,
    steal_s: f64,
    psi_some_s: f64,
    psi_full_s: f64,
    rows: u64,
}

impl Cumulative {
    fn add(&mut self, r: &Row) {
        self.t_s = r.t_s;
        self.usage_s += r.usage_s;
        self.nr_periods += r.nr_periods.unwrap_or(0);
        self.nr_throttled += r.nr_throttled.unwrap_or(0);
        self.throttled_s += r.throttled_s.unwrap_or(0.0);
        self.nr_bursts += r.nr_bursts.unwrap_or(0);
        self.burst_time_s += r.burst_time_s.unwrap_or(0.0);
        self.steal_s += r.steal_s;
        self.psi_some_s += r.psi_some_s.unwrap_or(0.0);
        self.psi_full_s += r.psi_full_s.unwrap_or(0.0);
        self.rows += 1;
    }

    fn since(&self, a: &Cumulative) -> Delta {
        Delta {
            dt_s: self.t_s - a.t_s,
            usage_s: self.usage_s - a.usage_s,
            nr_periods: self.nr_periods - a.nr_periods,
            nr_throttled: self.nr_throttled - a.nr_throttled,
            throttled_s: self.throttled_s - a.throttled_s,
            nr_bursts: self.nr_bursts - a.nr_bursts,
            burst_time_s: self.burst_time_s - a.burst_time_s,
            steal_s: self.steal_s - a.steal_s,
            busy_s: 0.0,
            psi_some_s: self.psi_some_s - a.psi_some_s,
            psi_full_s: self.psi_full_s - a.psi_full_s,
        }
    }
}

#[derive(Default)]
struct Scan {
    now: Cumulative,
    /// At the last sample at or before the group's zero.
    at_start: Cumulative,
    /// Usage at the last sample at or before the common window's start and end.
    usage_at_from: f64,
    usage_at_to: f64,
}

/// Read run `run`'s rows of a timeseries.csv whose rows start at `from` (the header
/// given separately, as read from the file's start) and total each group's counters
/// over its window; with several groups, also each group's share (%) of all groups'
/// usage over their common window (None without a common window or usage in it).
pub fn scan(
    header: &csv::ByteRecord,
    rows: impl Read,
    run: usize,
    groups: &[GroupSpec],
) -> csv::Result<(Vec<GroupWindow>, Option<Vec<f64>>)> {
    let cols = Columns::of(header);
    let from_s = groups
        .iter()
        .filter_map(|g| g.zero_s)
        .fold(f64::NEG_INFINITY, f64::max);
    let to_s = groups
        .iter()
        .filter_map(|g| g.end_s)
        .fold(f64::INFINITY, f64::min);
    let mut scans: Vec<Scan> = groups.iter().map(|_| Scan::default()).collect();
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
        let Some(g) = groups.iter().position(|g| g.name.as_bytes() == name) else {
            continue;
        };
        let s = &mut scans[g];
        s.now.add(&row);
        if groups[g].zero_s.is_some_and(|z| row.t_s <= z) {
            s.at_start = s.now;
        }
        if row.t_s <= from_s {
            s.usage_at_from = s.now.usage_s;
        }
        if row.t_s <= to_s {
            s.usage_at_to = s.now.usage_s;
        }
    }
    let windows = scans
        .iter()
        .map(|s| GroupWindow {
            totals: s.now.since(&s.at_start),
            samples: s.now.rows - s.at_start.rows,
        })
        .collect();
    let shares = (groups.len() > 1)
        .then(|| {
            let last = scans.iter().map(|s| s.now.t_s).fold(0.0, f64::max);
            let from = from_s.max(0.0);
            let to = to_s.min(last);
            if to <= from {
                return None;
            }
            let usage: Vec<f64> = scans
                .iter()
                .zip(groups)
                .map(|(s, g)| {
                    if g.holds_only {
                        0.0
                    } else {
                        s.usage_at_to - s.usage_at_from
                    }
                })
                .collect();
            let all: f64 = usage.iter().sum();
            (all > 0.0).then(|| usage.iter().map(|u| 100.0 * u / all).collect())
        })
        .flatten();
    Ok((windows, shares))
}
