//! A run's summary rows, computed from its stored data (each group's counters over its
//! window, read back from timeseries.csv) and its workload records: usage, throttling,
//! latency percentiles, the probes' figures, each group's share of the CPU while all
//! groups ran, and how the sampler kept its schedule.

use super::row::SummaryRow;
use super::window::{GroupSpec, GroupWindow};
use crate::load::record::Percentiles;
use crate::probe::ProbeOutput;
use crate::report::join::Split;
use crate::result::{GroupResult, LoadResult, RunResult};
use crate::sample::Delta;
use crate::scenario::{Limiter, Workload};
use fibtest::record::Role;

/// What the scan of timeseries.csv needs to know of each group of `r`: its name, and
/// its workload's time zero and end relative to the run's first sample.
pub fn group_specs(r: &RunResult) -> Vec<GroupSpec> {
    r.groups
        .iter()
        .map(|g| {
            let zero_ns = g
                .workload
                .header
                .as_ref()
                .map(|h| h.start_monotonic_ns as i128 - r.t0_monotonic_ns as i128);
            let zero_s = zero_ns.map(|z| z as f64 / 1e9);
            GroupSpec {
                name: g.name.clone(),
                holds_only: r
                    .planned
                    .groups
                    .iter()
                    .any(|p| p.name == g.name && p.workload == Workload::None),
                zero_s,
                end_s: zero_s
                    .zip(g.workload.end.as_ref())
                    .map(|(z, e)| z + e.wall_s),
            }
        })
        .collect()
}

/// Compute a run's summary rows, one per group, from its workload records and each
/// group's totals over its window (`window::scan` of its timeseries rows).
pub fn summarize(
    scenario: &str,
    r: &RunResult,
    windows: &[GroupWindow],
    shares: Option<Vec<f64>>,
    splits: &[Option<Split>],
) -> Vec<SummaryRow> {
    r.groups
        .iter()
        .zip(&r.planned.groups)
        .zip(windows)
        .enumerate()
        .map(|(i, ((g, plan), w))| {
            let mut row = summarize_group(scenario, r, g, &plan.workload, &w.totals);
            if r.groups.len() > 1 && plan.workload != Workload::None {
                row.group_share_pct = shares.as_ref().map(|s| s[i]);
            }
            if let Some(s) = splits.get(i).copied().flatten() {
                let p = |x: &Percentiles, f: fn(&Percentiles) -> f64| (x.count > 0).then(|| f(x));
                row.touched_requests = Some(s.touched.count);
                row.touched_p50_s = p(&s.touched, |x| x.p50_s);
                row.touched_p99_s = p(&s.touched, |x| x.p99_s);
                row.clear_p50_s = p(&s.clear, |x| x.p50_s);
                row.clear_p99_s = p(&s.clear, |x| x.p99_s);
            }
            if let Some(l) = r.load.as_ref().filter(|l| l.group == g.name) {
                loaded(&mut row, l);
            }
            row
        })
        .collect()
}

/// A loaded group's figures come from its load: its requests, their latency from due
/// time, the errors, and how well the generator kept its schedule.
fn loaded(row: &mut SummaryRow, l: &LoadResult) {
    let Some(rep) = &l.report else {
        return;
    };
    let lat = &rep.latency;
    let some = |x: f64| (lat.count > 0).then_some(x);
    row.requests = Some(rep.responses);
    row.latency_p50_s = some(lat.p50_s);
    row.latency_p90_s = some(lat.p90_s);
    row.latency_p99_s = some(lat.p99_s);
    row.latency_p999_s = some(lat.p999_s);
    row.latency_max_s = some(lat.max_s);
    row.achieved_rate = Some(rep.achieved_rate);
    row.errors = Some(rep.errors.total());
    row.timeouts = Some(rep.errors.timeout);
    row.non_2xx = Some(rep.non_2xx);
    let sends = (rep.scheduled + rep.warmup_requests).max(1);
    row.generator_late_pct = Some(100.0 * rep.late_sends as f64 / sends as f64);
    row.generator_busy_pct = Some(100.0 * rep.generator_busy);
    row.generator_wait_pct = rep.generator_wait.map(|w| 100.0 * w);
    row.generator_saturated = Some(rep.generator_saturated().is_some());
    let per_request = |x: Option<f64>| {
        x.zip(row.requests)
            .filter(|(_, n)| *n > 0)
            .map(|(x, n)| x / n as f64)
    };
    row.throttled_per_request = per_request(row.nr_throttled.map(|n| n as f64));
    row.throttled_s_per_request = per_request(row.throttled_s);
}

fn summarize_group(
    scenario: &str,
    r: &RunResult,
    g: &GroupResult,
    workload: &Workload,
    total: &Delta,
) -> SummaryRow {
    let p = &r.planned;
    let wall_s = total.dt_s;
    // A group's own limit, where it has one; else the run's limiter.
    let own = p
        .groups
        .iter()
        .find(|pg| pg.name == g.name)
        .and_then(|pg| pg.limit.as_ref())
        .and_then(|l| l.cfs);
    let (quota_s, period_s, burst_s) = match (&own, &p.limiter) {
        (Some(c), _) => (
            c.quota_us.map(|q| q as f64 / 1e6),
            Some(c.period_us as f64 / 1e6),
            Some(c.burst_us as f64 / 1e6),
        ),
        (None, Limiter::Cfs(c)) => (
            c.quota_us.map(|q| q as f64 / 1e6),
            Some(c.period_us as f64 / 1e6),
            Some(c.burst_us as f64 / 1e6),
        ),
        _ => (None, None, None),
    };
    let w = &g.workload;
    // A command of the user's own counts its requests when it reports them as records.
    let own_requests = matches!(workload, Workload::Command { .. }) && w.units.requests > 0;
    let requests =
        (matches!(workload, Workload::Requests { .. }) || own_requests).then_some(w.units.requests);
    let slow_units = matches!(workload, Workload::Fibtest { .. }).then_some(w.units.slow);
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
    let duty_end_rate_pct = match w.duty_first_last() {
        Some((a, b)) if a.steps_per_s > 0.0 => Some(100.0 * b.steps_per_s / a.steps_per_s),
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
        psi_some_s: r.system.psi.then_some(total.psi_some_s),
        latency_p50_s: w.units.percentile_s(50.0),
        latency_p90_s: w.units.percentile_s(90.0),
        latency_p99_s: w.units.percentile_s(99.0),
        latency_p999_s: w.units.percentile_s(99.9),
        latency_max_s: w.units.max_s,
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
        late_ticks: r.ticks.late,
        missed_ticks: r.ticks.missed,
        // Set by `summarize` from the latency join and the load.
        touched_requests: None,
        touched_p50_s: None,
        touched_p99_s: None,
        clear_p50_s: None,
        clear_p99_s: None,
        achieved_rate: None,
        errors: None,
        timeouts: None,
        non_2xx: None,
        generator_late_pct: None,
        generator_busy_pct: None,
        generator_wait_pct: None,
        generator_saturated: None,
    }
}
