//! A watch's summary rows, one per group it saw, from each group's totals over its own
//! rows (read back from timeseries.csv) and what the watch knows of it: its limits, when
//! it came and went.
//!
//! A group's window runs from its first read to its last: for a cgroup that was there
//! when the watch started, from the watch's first sample; for one that came later, from
//! when the watch first read it (its counters before that are not counted, though the
//! kernel's are cumulative: run.json's `start` has them). A group whose cgroup was removed
//! while watched ends at its last successful read: what it did between that read and its
//! removal, at most one interval, is lost with the cgroup. Its outcome is `removed`.

use super::files::{GroupRecord, WatchEnd};
use crate::report::summary::window::GroupWindow;
use crate::report::SummaryRow;
use crate::result::TickStats;

/// The summary row of each group (in the order they were first read).
pub fn rows(
    groups: &[GroupRecord],
    windows: &[GroupWindow],
    end: WatchEnd,
    ticks: &TickStats,
    psi: bool,
) -> Vec<SummaryRow> {
    groups
        .iter()
        .zip(windows)
        .map(|(g, w)| {
            let t = &w.totals;
            let wall_s = (t.dt_s - g.first_s).max(0.0);
            let cpu_share = if wall_s > 0.0 {
                t.usage_s / wall_s
            } else {
                0.0
            };
            let bw = g.counters.bandwidth;
            let burst = g.counters.burst;
            let l = g.limits;
            SummaryRow {
                scenario: "watch".into(),
                run: 0,
                params: Vec::new(),
                group: g.name.clone(),
                config: 0,
                repeat: 0,
                limiter: if l.quota_s.is_some() { "cfs" } else { "none" }.into(),
                quota_s: l.quota_s,
                period_s: l.period_s,
                burst_s: l.burst_s,
                workload: "watched".into(),
                outcome: if g.ended.is_some() {
                    "removed"
                } else {
                    end.outcome()
                }
                .into(),
                wall_s,
                cpu_usage_s: t.usage_s,
                cpu_share,
                nr_periods: bw.then_some(t.nr_periods),
                nr_throttled: bw.then_some(t.nr_throttled),
                throttled_pct: (bw && t.nr_periods > 0)
                    .then(|| 100.0 * t.nr_throttled as f64 / t.nr_periods as f64),
                throttled_s: bw.then_some(t.throttled_s),
                nr_bursts: burst.then_some(t.nr_bursts),
                burst_time_s: burst.then_some(t.burst_time_s),
                steal_s: t.steal_s,
                psi_some_s: psi.then_some(t.psi_some_s),
                late_ticks: ticks.late,
                missed_ticks: ticks.missed,
                ..SummaryRow::default()
            }
        })
        .collect()
}
