//! What the steal probe reports: per-CPU rows (steal.csv), gap buckets (gaps.csv), the
//! time series, the summary, and the text for people; computed from the spinning
//! threads' records and the counters read every interval.

use super::spin::{GapRecorder, BUCKETS, HIST_MAX_NS};
use super::{Reads, StealConfig};
use anyhow::Result;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One CPU's figures (and an "all" row), as written to steal.csv.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuRow {
    /// Run number and group, in a scenario's result folder (absent when the probe ran alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// CPU number, or "all".
    pub cpu: String,
    pub duration_s: f64,
    /// /proc/stat steal over the probe, in clock ticks and in s.
    pub steal_ticks: u64,
    pub steal_s: f64,
    /// mpstat's `%steal` ÷ 100 over the probe: steal ticks ÷ the CPU's ticks in all states
    /// but guest and guest_nice (see `mpstat.rs`); the "all" row over the probed CPUs'
    /// summed ticks, as mpstat's `all` row.
    pub steal_share: f64,
    /// Time the spinning thread did not run, in s, and as a share of its loop's time.
    pub stall_s: f64,
    pub stall_share: f64,
    /// stall_s - steal_s: what the accounting does not show.
    pub unaccounted_s: f64,
    pub gaps: u64,
    pub gap_p50_s: Option<f64>,
    pub gap_p99_s: Option<f64>,
    pub gap_p999_s: Option<f64>,
    pub gap_max_s: Option<f64>,
    pub iterations: u64,
    /// Mean time of one loop iteration outside gaps, in ns.
    pub loop_ns: f64,
}

/// One bucket of gaps of one CPU, as written to gaps.csv.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapBucket {
    /// Run number and group, in a scenario's result folder (absent when the probe ran alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub cpu: u32,
    /// Gaps of at least lower_s and less than upper_s (empty: no upper bound).
    pub lower_s: f64,
    pub upper_s: Option<f64>,
    pub count: u64,
    pub total_s: f64,
}

/// One interval of one CPU (and an "all" row), as written to the time series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesRow {
    /// Run number and group, in a scenario's result folder (absent when the probe ran alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// End of the interval, in s since the loops started.
    pub t_s: f64,
    pub cpu: String,
    /// Length of the interval, in s.
    pub dt_s: f64,
    pub steal_s: f64,
    pub stall_s: f64,
    /// stall_s / dt_s (the "all" row: per CPU on average).
    pub stall_share: f64,
    /// "all" row under a cgroup: throttled time added in the interval (summed over CPUs)
    /// and the stalls attributed to it.
    pub throttled_s: Option<f64>,
    pub throttle_stall_s: Option<f64>,
}

/// The figures of the whole probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StealSummary {
    /// CLOCK_MONOTONIC when the loops started, in ns: timeseries.csv's `t_s` counts from
    /// it, so its intervals can be matched with another process's clock readings. None
    /// in reports written before it was recorded.
    #[serde(default)]
    pub start_monotonic_ns: Option<u64>,
    pub duration_s: f64,
    pub cpus: usize,
    pub threshold_s: f64,
    /// /proc/stat steal of the probed CPUs, in s (summed over them).
    pub steal_s: f64,
    /// Observed stalls, summed over the probed CPUs, in s.
    pub stall_s: f64,
    /// stall_s / (loop time × CPUs): share of each CPU lost, on average.
    pub stall_share: f64,
    /// The "all" row's steal_share (mpstat's `%steal` ÷ 100 over the probed CPUs).
    pub steal_share: f64,
    /// stall_s - steal_s.
    pub unaccounted_s: f64,
    pub gaps: u64,
    pub gap_p50_s: Option<f64>,
    pub gap_p99_s: Option<f64>,
    pub gap_p999_s: Option<f64>,
    pub gap_max_s: Option<f64>,
    /// Mean loop iteration outside gaps, in ns (the loop's resolution).
    pub loop_ns: f64,
    /// Under a cgroup: its throttled time over the probe (summed over CPUs), the stalls
    /// attributed to throttling, and the rest.
    pub throttled_s: Option<f64>,
    pub nr_throttled: Option<u64>,
    pub throttle_stall_s: Option<f64>,
    pub other_stall_s: Option<f64>,
    /// Steal while the probe's CPUs were idle (before spinning, `--idle`), summed over
    /// them, in s, and as mpstat's `%steal` ÷ 100 over them.
    pub idle_s: Option<f64>,
    pub idle_steal_s: Option<f64>,
    pub idle_steal_share: Option<f64>,
    /// Whether the probe ran its whole duration (false: stopped by a signal).
    pub complete: bool,
}

/// Everything the probe measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StealReport {
    pub summary: StealSummary,
    pub cpus: Vec<CpuRow>,
    pub gaps: Vec<GapBucket>,
    pub series: Vec<SeriesRow>,
}

fn pct(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1e9)
}

/// Turn what the loops and the reads saw into the report.
pub(super) fn build(
    recs: &[(u32, GapRecorder)],
    reads: &Reads,
    t0: u64,
    cfg: &StealConfig,
    hz: f64,
    complete: bool,
) -> StealReport {
    let n = recs.len();
    let last = reads.t_ns.len() - 1;
    let times_at = |i: usize, c: usize| &reads.times[i * n + c];
    let steal_at = |i: usize, c: usize| times_at(i, c).steal;
    let duration_s = (reads.t_ns[last] - reads.t_ns[0]) as f64 / 1e9;
    let mut rows = Vec::new();
    let mut gaps = Vec::new();
    let mut all_hist: Histogram<u64> = Histogram::new_with_bounds(1, HIST_MAX_NS, 3).unwrap();
    let (mut steal_ticks, mut stall_ns, mut span_ns, mut n_gaps, mut iters, mut max_ns) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut loop_sum = 0.0;
    for (c, (cpu, r)) in recs.iter().enumerate() {
        let ticks = steal_at(last, c).saturating_sub(steal_at(0, c));
        let steal_s = ticks as f64 / hz;
        let span = r.span_ns().max(1);
        let stall_s = r.lost_ns as f64 / 1e9;
        rows.push(CpuRow {
            run: None,
            group: None,
            cpu: cpu.to_string(),
            duration_s,
            steal_ticks: ticks,
            steal_s,
            steal_share: super::steal_share(times_at(0, c), times_at(last, c)),
            stall_s,
            stall_share: r.lost_ns as f64 / span as f64,
            unaccounted_s: stall_s - steal_s,
            gaps: r.gaps,
            gap_p50_s: pct(&r.hist, 0.5),
            gap_p99_s: pct(&r.hist, 0.99),
            gap_p999_s: pct(&r.hist, 0.999),
            gap_max_s: (r.gaps > 0).then(|| r.max_ns as f64 / 1e9),
            iterations: r.iterations,
            loop_ns: r.loop_ns(),
        });
        for (i, (count, total)) in r.buckets.iter().enumerate() {
            let lower = r.threshold_ns << i;
            gaps.push(GapBucket {
                run: None,
                group: None,
                cpu: *cpu,
                lower_s: lower as f64 / 1e9,
                upper_s: (i + 1 < BUCKETS).then(|| (lower * 2) as f64 / 1e9),
                count: *count,
                total_s: *total as f64 / 1e9,
            });
        }
        let _ = all_hist.add(&r.hist);
        steal_ticks += ticks;
        stall_ns += r.lost_ns;
        span_ns += span;
        n_gaps += r.gaps;
        iters += r.iterations;
        max_ns = max_ns.max(r.max_ns);
        loop_sum += r.loop_ns();
    }
    // Keep only the buckets up to the largest one used on any CPU (the rest are empty).
    let used = gaps
        .iter()
        .enumerate()
        .filter(|(_, g)| g.count > 0)
        .map(|(i, _)| i % BUCKETS)
        .max()
        .unwrap_or(0);
    gaps.retain({
        let mut i = 0usize;
        move |_| {
            let keep = i % BUCKETS <= used;
            i += 1;
            keep
        }
    });
    let steal_s = steal_ticks as f64 / hz;
    let stall_s = stall_ns as f64 / 1e9;
    rows.push(CpuRow {
        run: None,
        group: None,
        cpu: "all".into(),
        duration_s,
        steal_ticks,
        steal_s,
        steal_share: super::steal_share_of((0..n).map(|c| (times_at(0, c), times_at(last, c)))),
        stall_s,
        stall_share: stall_ns as f64 / span_ns.max(1) as f64,
        unaccounted_s: stall_s - steal_s,
        gaps: n_gaps,
        gap_p50_s: pct(&all_hist, 0.5),
        gap_p99_s: pct(&all_hist, 0.99),
        gap_p999_s: pct(&all_hist, 0.999),
        gap_max_s: (n_gaps > 0).then(|| max_ns as f64 / 1e9),
        iterations: iters,
        loop_ns: loop_sum / n.max(1) as f64,
    });

    // The time series, interval by interval, with throttling attributed.
    let cgroup = !reads.throttled_ns.is_empty();
    let mut series = Vec::new();
    let mut throttle_stall_ns = 0u64;
    for i in 1..reads.t_ns.len() {
        let (a, b) = (reads.t_ns[i - 1], reads.t_ns[i]);
        let dt = (b - a) as f64 / 1e9;
        let t_s = b.saturating_sub(t0) as f64 / 1e9;
        let mut all_stall = 0u64;
        let mut all_steal = 0u64;
        for (c, (cpu, r)) in recs.iter().enumerate() {
            let lost = r.lost_between(a, b);
            let st = steal_at(i, c).saturating_sub(steal_at(i - 1, c));
            all_stall += lost;
            all_steal += st;
            series.push(SeriesRow {
                run: None,
                group: None,
                t_s,
                cpu: cpu.to_string(),
                dt_s: dt,
                steal_s: st as f64 / hz,
                stall_s: lost as f64 / 1e9,
                stall_share: lost as f64 / 1e9 / dt.max(1e-9),
                throttled_s: None,
                throttle_stall_s: None,
            });
        }
        let (throttled, attributed) = if cgroup {
            let th = reads.throttled_ns[i].saturating_sub(reads.throttled_ns[i - 1]);
            let at = th.min(all_stall);
            throttle_stall_ns += at;
            (Some(th as f64 / 1e9), Some(at as f64 / 1e9))
        } else {
            (None, None)
        };
        series.push(SeriesRow {
            run: None,
            group: None,
            t_s,
            cpu: "all".into(),
            dt_s: dt,
            steal_s: all_steal as f64 / hz,
            stall_s: all_stall as f64 / 1e9,
            stall_share: all_stall as f64 / 1e9 / (dt * n as f64).max(1e-9),
            throttled_s: throttled,
            throttle_stall_s: attributed,
        });
    }
    let all = rows.last().expect("the all row").clone();
    let summary = StealSummary {
        start_monotonic_ns: Some(t0),
        duration_s,
        cpus: n,
        threshold_s: cfg.threshold_ns as f64 / 1e9,
        steal_s,
        stall_s,
        stall_share: all.stall_share,
        steal_share: all.steal_share,
        unaccounted_s: stall_s - steal_s,
        gaps: n_gaps,
        gap_p50_s: all.gap_p50_s,
        gap_p99_s: all.gap_p99_s,
        gap_p999_s: all.gap_p999_s,
        gap_max_s: all.gap_max_s,
        loop_ns: all.loop_ns,
        throttled_s: cgroup
            .then(|| reads.throttled_ns[last].saturating_sub(reads.throttled_ns[0]) as f64 / 1e9),
        nr_throttled: cgroup
            .then(|| reads.nr_throttled[last].saturating_sub(reads.nr_throttled[0])),
        throttle_stall_s: cgroup.then(|| throttle_stall_ns as f64 / 1e9),
        other_stall_s: cgroup.then(|| (stall_ns - throttle_stall_ns) as f64 / 1e9),
        idle_s: None,
        idle_steal_s: None,
        idle_steal_share: None,
        complete,
    };
    StealReport {
        summary,
        cpus: rows,
        gaps,
        series,
    }
}

impl StealReport {
    /// Write steal.csv, gaps.csv, `series_name` (timeseries.csv when alone) into `dir`.
    pub fn write_csv(&self, dir: &Path, series_name: &str) -> Result<()> {
        crate::probe::write_rows(&dir.join("steal.csv"), &self.cpus)?;
        crate::probe::write_rows(&dir.join("gaps.csv"), &self.gaps)?;
        crate::probe::write_rows(&dir.join(series_name), &self.series)?;
        Ok(())
    }

    /// A short table for people.
    pub fn human(&self) -> String {
        let s = &self.summary;
        let ms = |v: Option<f64>| v.map(|x| format!("{:.3}", x * 1e3)).unwrap_or("-".into());
        let mut out = format!(
            "steal probe: {} CPU(s) for {:.2}s, gaps above {:.1}µs, loop {:.1} ns per clock read{}\n",
            s.cpus,
            s.duration_s,
            s.threshold_s * 1e6,
            s.loop_ns,
            if s.complete { "" } else { " (stopped early)" }
        );
        out += &format!(
            "{:>4} {:>10} {:>8} {:>10} {:>8} {:>11} {:>8} {:>9} {:>9} {:>9}\n",
            "cpu",
            "steal_s",
            "steal%",
            "stall_s",
            "stall%",
            "unacct_s",
            "gaps",
            "p50_ms",
            "p99_ms",
            "max_ms"
        );
        for r in &self.cpus {
            out += &format!(
                "{:>4} {:>10.4} {:>7.3}% {:>10.4} {:>7.3}% {:>11.4} {:>8} {:>9} {:>9} {:>9}\n",
                r.cpu,
                r.steal_s,
                r.steal_share * 100.0,
                r.stall_s,
                r.stall_share * 100.0,
                r.unaccounted_s,
                r.gaps,
                ms(r.gap_p50_s),
                ms(r.gap_p99_s),
                ms(r.gap_max_s)
            );
        }
        if let (Some(i), Some(st), Some(sh)) = (s.idle_s, s.idle_steal_s, s.idle_steal_share) {
            out += &format!(
                "idle for {i:.2}s first: steal {st:.4}s ({:.3}% of each idle CPU) vs {:.3}% while spinning\n",
                sh * 100.0,
                s.steal_share * 100.0
            );
        }
        if let (Some(th), Some(ts), Some(os)) = (s.throttled_s, s.throttle_stall_s, s.other_stall_s)
        {
            out += &format!(
                "under the cgroup: throttled {:.4}s ({} periods); stalls from throttling {:.4}s, other stalls {:.4}s\n",
                th,
                s.nr_throttled.unwrap_or(0),
                ts,
                os
            );
        }
        out
    }
}
