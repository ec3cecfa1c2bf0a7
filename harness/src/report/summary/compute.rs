//! A run's summary rows, computed from its raw data (samples and workload records):
//! the measured window, usage, throttling, latency percentiles, the probes' figures,
//! and each group's share of the CPU while all groups ran.

use super::row::SummaryRow;
use crate::probe::ProbeOutput;
use crate::result::{GroupResult, RunResult};
use crate::sample::{Delta, Sample};
use crate::scenario::{Limiter, Workload};
use fibtest::record::{Role, UnitKind};
use fibtest::stats::{percentile, sorted};

/// Compute a run's summary rows from its raw data: one per group.
pub fn summarize(
    scenario: &str,
    r: &RunResult,
    ticks_per_s: u64,
    has_psi: bool,
) -> Vec<SummaryRow> {
    let totals: Vec<Delta> = r
        .groups
        .iter()
        .map(|g| {
            let first = g.window_start(r.t0_monotonic_ns);
            match (g.samples.get(first), g.samples.last()) {
                (Some(a), Some(b)) => Delta::between(a, b, ticks_per_s),
                _ => Delta::default(),
            }
        })
        .collect();
    let starts: Vec<usize> = r
        .groups
        .iter()
        .map(|g| g.window_start(r.t0_monotonic_ns))
        .collect();
    // Each workload's own end (its time zero plus its wall time), relative to the run's
    // time zero: the samplers keep ticking until the last group ends.
    let ends: Vec<Option<u64>> = r
        .groups
        .iter()
        .map(|g| {
            let h = g.workload.header.as_ref()?;
            let e = g.workload.end.as_ref()?;
            Some(h.start_monotonic_ns.saturating_sub(r.t0_monotonic_ns) + (e.wall_s * 1e9) as u64)
        })
        .collect();
    let shares = common_window_shares(
        &r.groups
            .iter()
            .map(|g| g.samples.as_slice())
            .collect::<Vec<_>>(),
        &starts,
        &ends,
    );
    r.groups
        .iter()
        .zip(&r.planned.groups)
        .zip(&totals)
        .enumerate()
        .map(|(i, ((g, plan), total))| {
            let mut row = summarize_group(scenario, r, g, &plan.workload, total, has_psi);
            if r.groups.len() > 1 {
                row.group_share_pct = shares.as_ref().map(|s| s[i]);
            }
            row
        })
        .collect()
}

/// Each group's CPU usage as a % of all groups' usage, over the window in which every
/// group's workload was running (from the latest window start to the earliest end: the
/// workload's own end when known, else its last sample), so that a group that started
/// late or ended early is not credited with time it had the CPUs to itself. None when
/// there is no such window or no usage in it.
pub fn common_window_shares(
    samples: &[&[Sample]],
    starts: &[usize],
    ends: &[Option<u64>],
) -> Option<Vec<f64>> {
    let from = samples
        .iter()
        .zip(starts)
        .map(|(s, &i)| s.get(i).map(|x| x.t_ns))
        .collect::<Option<Vec<u64>>>()?
        .into_iter()
        .max()?;
    let to = samples
        .iter()
        .zip(ends)
        .map(|(s, e)| e.or(s.last().map(|x| x.t_ns)))
        .collect::<Option<Vec<u64>>>()?
        .into_iter()
        .min()?;
    if to <= from {
        return None;
    }
    let usage: Vec<f64> = samples
        .iter()
        .map(|s| {
            // The first sample at or after `from`, the last at or before `to`.
            let a = s.iter().find(|x| x.t_ns >= from)?;
            let b = s.iter().rev().find(|x| x.t_ns <= to)?;
            Some(b.usage_ns.saturating_sub(a.usage_ns) as f64)
        })
        .collect::<Option<Vec<f64>>>()?;
    let all: f64 = usage.iter().sum();
    (all > 0.0).then(|| usage.iter().map(|u| 100.0 * u / all).collect())
}

fn summarize_group(
    scenario: &str,
    r: &RunResult,
    g: &GroupResult,
    workload: &Workload,
    total: &Delta,
    has_psi: bool,
) -> SummaryRow {
    let p = &r.planned;
    let wall_s = total.dt_s;
    let (quota_s, period_s, burst_s) = match &p.limiter {
        Limiter::Cfs(c) => (
            c.quota_us.map(|q| q as f64 / 1e6),
            Some(c.period_us as f64 / 1e6),
            Some(c.burst_us as f64 / 1e6),
        ),
        _ => (None, None, None),
    };
    let w = &g.workload;
    let lat = sorted(w.units.iter().map(|u| u.latency_s));
    let count_units = |k: UnitKind| w.units.iter().filter(|u| u.kind == k).count() as u64;
    let requests =
        matches!(workload, Workload::Requests { .. }).then(|| count_units(UnitKind::Request));
    let slow_units =
        matches!(workload, Workload::Fibtest { .. }).then(|| count_units(UnitKind::Slow));
    let fast_iters_per_s = match (workload, &w.end) {
        (Workload::Fibtest { fast, .. }, Some(end)) if *fast > 0 && end.wall_s > 0.0 => {
            let steps: u64 = w
                .threads
                .iter()
                .filter(|t| t.role == Role::Fast)
                .map(|t| t.steps)
                .sum();
            Some(steps as f64 / end.wall_s)
        }
        _ => None,
    };
    let per_request = |x: f64| requests.filter(|n| *n > 0).map(|n| x / n as f64);
    let bw = g.counters.bandwidth;
    let burst = g.counters.burst;
    let thread0: Vec<_> = w.duty.iter().filter(|d| d.thread == 0).collect();
    let duty_end_rate_pct = match (thread0.first(), thread0.last()) {
        (Some(a), Some(b)) if thread0.len() > 1 && a.steps_per_s > 0.0 => {
            Some(100.0 * b.steps_per_s / a.steps_per_s)
        }
        _ => None,
    };
    let cpu_share = if wall_s > 0.0 {
        total.usage_s / wall_s
    } else {
        0.0
    };
    let target_share = p.limiter.target_share();
    let steal = match &w.probe {
        Some(ProbeOutput::StealProbe(r)) => Some(&r.summary),
        _ => None,
    };
    let entropy = match &w.probe {
        Some(ProbeOutput::EntropyProbe(r)) => Some(&r.summary),
        _ => None,
    };
    SummaryRow {
        scenario: scenario.to_string(),
        run: p.index,
        params: p.params.clone(),
        group: g.name.clone(),
        config: p.config,
        repeat: p.repeat,
        limiter: p.limiter.name().to_string(),
        quota_s,
        period_s,
        burst_s,
        workload: workload.name().to_string(),
        outcome: r.outcome.name().to_string(),
        wall_s,
        cpu_usage_s: total.usage_s,
        cpu_share,
        demand_cpus: workload.demand_cpus(),
        target_share,
        share_error: target_share.map(|t| cpu_share - t),
        group_share_pct: None,
        nr_periods: bw.then_some(total.nr_periods),
        nr_throttled: bw.then_some(total.nr_throttled),
        throttled_pct: (bw && total.nr_periods > 0)
            .then(|| 100.0 * total.nr_throttled as f64 / total.nr_periods as f64),
        throttled_s: bw.then_some(total.throttled_s),
        nr_bursts: burst.then_some(total.nr_bursts),
        burst_time_s: burst.then_some(total.burst_time_s),
        steal_s: total.steal_s,
        psi_some_s: has_psi.then_some(total.psi_some_s),
        latency_p50_s: percentile(&lat, 50.0),
        latency_p90_s: percentile(&lat, 90.0),
        latency_p99_s: percentile(&lat, 99.0),
        latency_p999_s: percentile(&lat, 99.9),
        latency_max_s: lat.last().copied(),
        fast_iters_per_s,
        slow_units,
        requests,
        duty_end_rate_pct,
        throttled_per_request: per_request(total.nr_throttled as f64).filter(|_| bw),
        throttled_s_per_request: per_request(total.throttled_s).filter(|_| bw),
        stall_s: steal.map(|s| s.stall_s),
        stall_share: steal.map(|s| s.stall_share),
        gap_p99_s: steal.and_then(|s| s.gap_p99_s),
        gap_max_s: steal.and_then(|s| s.gap_max_s),
        throttle_stall_s: steal.and_then(|s| s.throttle_stall_s),
        other_stall_s: steal.and_then(|s| s.other_stall_s),
        probe_loop_ns: steal.map(|s| s.loop_ns),
        crng_ready: entropy.map(|e| e.crng_ready),
        getrandom_bytes_per_s: entropy.and_then(|e| e.getrandom_bytes_per_s),
        urandom_bytes_per_s: entropy.and_then(|e| e.urandom_bytes_per_s),
        random_bytes_per_s: entropy.and_then(|e| e.random_bytes_per_s),
        hwrng_bytes_per_s: entropy.and_then(|e| e.hwrng_bytes_per_s),
        min_reader_share: entropy.and_then(|e| e.min_reader_share),
        fips_blocks: entropy.map(|e| e.fips_blocks),
        fips_failures: entropy.map(|e| e.fips_failures),
        leaked_stopped: r.leaks.stopped.len(),
        leaked_escaped: r.leaks.escaped.len(),
        leaked_cgroups: r.leaks.cgroups.len(),
        limiter_faults: r.limiter.faults().len(),
    }
}
