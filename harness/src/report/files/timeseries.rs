//! timeseries.csv: one row per run, group and sample, each counter's change since the
//! previous sample (times in s), plus two shares over the interval.

use crate::result::RunResult;
use crate::sample::cpustat::Has;
use crate::sample::Delta;

/// Columns of timeseries.csv: one row per run and sample, each counter's change since
/// the previous sample (times in s), plus two shares over the interval.
pub const COLUMNS: &[&str] = &[
    "run",
    "group",
    "t_s",
    "dt_s",
    "usage_s",
    "cpu_share",
    "nr_periods",
    "nr_throttled",
    "throttled_s",
    "throttled_share",
    "nr_bursts",
    "burst_time_s",
    "steal_s",
    "busy_s",
    "psi_some_s",
    "psi_full_s",
];

/// One row of timeseries.csv; counters the cgroup's cpu.stat does not have (`has`) are
/// left empty rather than written as 0.
fn row(run: usize, group: &str, t_s: f64, d: &Delta, has: Has) -> [String; 16] {
    let share = |x: f64| if d.dt_s > 0.0 { x / d.dt_s } else { 0.0 };
    let only = |ok: bool, v: String| if ok { v } else { String::new() };
    let (bw, burst) = (has.bandwidth, has.burst);
    [
        run.to_string(),
        group.to_string(),
        t_s.to_string(),
        d.dt_s.to_string(),
        d.usage_s.to_string(),
        share(d.usage_s).to_string(),
        only(bw, d.nr_periods.to_string()),
        only(bw, d.nr_throttled.to_string()),
        only(bw, d.throttled_s.to_string()),
        only(bw, share(d.throttled_s).to_string()),
        only(burst, d.nr_bursts.to_string()),
        only(burst, d.burst_time_s.to_string()),
        d.steal_s.to_string(),
        d.busy_s.to_string(),
        d.psi_some_s.to_string(),
        d.psi_full_s.to_string(),
    ]
}

/// Write every group's rows of one run; `ticks_per_s` is /proc/stat's unit.
pub fn write_run<W: std::io::Write>(
    w: &mut csv::Writer<W>,
    result: &RunResult,
    ticks_per_s: u64,
) -> csv::Result<()> {
    let run = result.planned.index;
    for g in &result.groups {
        let t0 = g.samples.first().map(|s| s.t_ns).unwrap_or(0);
        for pair in g.samples.windows(2) {
            let delta = Delta::between(&pair[0], &pair[1], ticks_per_s);
            let t_s = pair[1].t_ns.saturating_sub(t0) as f64 / 1e9;
            w.write_record(row(run, &g.name, t_s, &delta, g.counters))?;
        }
    }
    Ok(())
}
