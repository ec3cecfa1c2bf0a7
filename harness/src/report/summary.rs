//! The summary row of a run: what `summary.csv` holds, one row per run.

use crate::probe::ProbeOutput;
use crate::result::{GroupResult, RunResult};
use crate::sample::Sample;
use crate::scenario::{Limiter, Workload};
use fibtest::record::{Role, UnitKind};
use fibtest::stats::{percentile, sorted};
use serde::Serialize;

/// One run in numbers. Times in s, shares in CPUs (1.0 = one CPU fully busy).
/// `docs/metrics.md` says how each is computed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SummaryRow {
    pub scenario: String,
    /// Run number within the result folder, from 0.
    pub run: usize,
    /// Swept fields and their values, written as `param_<field>` columns.
    pub params: Vec<(String, String)>,
    /// The group this row is about ("main" when the scenario has no groups).
    pub group: String,
    /// Configuration number (one per sweep combination) and repeat within it.
    pub config: usize,
    pub repeat: u32,
    /// Limiter kind: "none", "cfs", ...
    pub limiter: String,
    /// CFS quota per period, in s (empty when no quota).
    pub quota_s: Option<f64>,
    pub period_s: Option<f64>,
    /// CFS burst allowance configured, in s.
    pub burst_s: Option<f64>,
    pub workload: String,
    /// How the run ended: completed, failed, interrupted, timed_out.
    pub outcome: String,
    /// The measured window: from the sample at the workload's time zero (after its
    /// start-up) to the sample after its exit, in s. Every count below is over it.
    pub wall_s: f64,
    /// CPU time the cgroup used, in s.
    pub cpu_usage_s: f64,
    /// cpu_usage_s / wall_s, in CPUs.
    pub cpu_share: f64,
    /// CFS periods and throttled periods (empty when the cgroup's cpu.stat has no
    /// bandwidth counters: a v2 cgroup without the cpu controller, a kernel without
    /// CONFIG_CFS_BANDWIDTH).
    pub nr_periods: Option<u64>,
    pub nr_throttled: Option<u64>,
    /// The share the limiter aims at, in CPUs (empty when it has none).
    pub target_share: Option<f64>,
    /// cpu_share - target_share, in CPUs.
    pub share_error: Option<f64>,
    /// With several groups: 100 * this group's usage / all groups' usage, in %.
    pub group_share_pct: Option<f64>,
    /// 100 * nr_throttled / nr_periods (empty when no period elapsed).
    pub throttled_pct: Option<f64>,
    /// Total time the cgroup's threads spent throttled, in s (summed over threads; empty
    /// like nr_periods).
    pub throttled_s: Option<f64>,
    /// Periods that used burst (empty on kernels before 5.13 for v1, 5.14 for v2).
    pub nr_bursts: Option<u64>,
    /// Run time taken from the burst allowance, in s (kernel: burst_time / burst_usec;
    /// empty like nr_bursts).
    pub burst_time_s: Option<f64>,
    /// /proc/stat steal of all CPUs during the run, in s.
    pub steal_s: f64,
    /// PSI cpu `some` time during the run, in s (empty without PSI).
    pub psi_some_s: Option<f64>,
    pub latency_p50_s: Option<f64>,
    pub latency_p90_s: Option<f64>,
    pub latency_p99_s: Option<f64>,
    pub latency_p999_s: Option<f64>,
    pub latency_max_s: Option<f64>,
    /// Fibonacci steps per s of all fast threads together.
    pub fast_iters_per_s: Option<f64>,
    /// Slow-thread units completed.
    pub slow_units: Option<u64>,
    /// Requests completed.
    pub requests: Option<u64>,
    /// Duty workloads: 100 × the last on-period's work rate / the first's (about 100
    /// when the duty cycle is sustainable, lower when the job got throttled on the way).
    pub duty_end_rate_pct: Option<f64>,
    /// nr_throttled / requests.
    pub throttled_per_request: Option<f64>,
    /// throttled_s / requests.
    pub throttled_s_per_request: Option<f64>,
    /// Steal probe: time its pinned spinning threads did not run, summed over its CPUs,
    /// in s; the share of each CPU that was (mean); the p99 and largest gap, in s; the
    /// stalls attributed to the cgroup's throttling and the rest; the loop's time per
    /// clock read, in ns (see docs/probes.md).
    pub stall_s: Option<f64>,
    pub stall_share: Option<f64>,
    pub gap_p99_s: Option<f64>,
    pub gap_max_s: Option<f64>,
    pub throttle_stall_s: Option<f64>,
    pub other_stall_s: Option<f64>,
    pub probe_loop_ns: Option<f64>,
    /// Entropy probe: the pool was ready (getrandom with GRND_NONBLOCK worked); each
    /// source's best single-reader supply, in bytes/s; the lowest share a reader got of
    /// its fair part with several readers; FIPS 140-2 blocks tested and failed.
    pub crng_ready: Option<bool>,
    pub getrandom_bytes_per_s: Option<f64>,
    pub urandom_bytes_per_s: Option<f64>,
    pub random_bytes_per_s: Option<f64>,
    pub hwrng_bytes_per_s: Option<f64>,
    pub min_reader_share: Option<f64>,
    pub fips_blocks: Option<u64>,
    pub fips_failures: Option<u64>,
    /// Processes of the run left stopped after the limiter was gone (same on every row of a run).
    pub leaked_stopped: usize,
    /// Processes still alive in the run's cgroups after the workload ended.
    pub leaked_escaped: usize,
    /// Cgroup folders of the run left after teardown.
    pub leaked_cgroups: usize,
    /// What went wrong with the limiter (an external command that exited early or
    /// ignored SIGTERM, a failed control loop): run.json says what.
    pub limiter_faults: usize,
}

/// The fixed columns of summary.csv, in order; `param_<field>` columns follow `run`.
pub const COLUMNS: &[&str] = &[
    "scenario",
    "run",
    "group",
    "config",
    "repeat",
    "limiter",
    "quota_s",
    "period_s",
    "burst_s",
    "workload",
    "outcome",
    "wall_s",
    "cpu_usage_s",
    "cpu_share",
    "target_share",
    "share_error",
    "group_share_pct",
    "nr_periods",
    "nr_throttled",
    "throttled_pct",
    "throttled_s",
    "nr_bursts",
    "burst_time_s",
    "steal_s",
    "psi_some_s",
    "latency_p50_s",
    "latency_p90_s",
    "latency_p99_s",
    "latency_p999_s",
    "latency_max_s",
    "fast_iters_per_s",
    "slow_units",
    "requests",
    "duty_end_rate_pct",
    "throttled_per_request",
    "throttled_s_per_request",
    "stall_s",
    "stall_share",
    "gap_p99_s",
    "gap_max_s",
    "throttle_stall_s",
    "other_stall_s",
    "probe_loop_ns",
    "crng_ready",
    "getrandom_bytes_per_s",
    "urandom_bytes_per_s",
    "random_bytes_per_s",
    "hwrng_bytes_per_s",
    "min_reader_share",
    "fips_blocks",
    "fips_failures",
    "leaked_stopped",
    "leaked_escaped",
    "leaked_cgroups",
    "limiter_faults",
];

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(|x| x.to_string()).unwrap_or_default()
}

impl SummaryRow {
    /// Column names for a result whose swept fields are `swept`.
    pub fn header(swept: &[String]) -> Vec<String> {
        let mut h: Vec<String> = Vec::new();
        for c in COLUMNS {
            h.push(c.to_string());
            if *c == "run" {
                h.extend(swept.iter().map(|s| format!("param_{s}")));
            }
        }
        h
    }

    /// Values in `header` order (empty text for values that do not apply).
    pub fn values(&self) -> Vec<String> {
        let mut v = vec![self.scenario.clone(), self.run.to_string()];
        v.extend(self.params.iter().map(|(_, val)| val.clone()));
        v.extend([
            self.group.clone(),
            self.config.to_string(),
            self.repeat.to_string(),
            self.limiter.clone(),
            opt(&self.quota_s),
            opt(&self.period_s),
            opt(&self.burst_s),
            self.workload.clone(),
            self.outcome.clone(),
            self.wall_s.to_string(),
            self.cpu_usage_s.to_string(),
            self.cpu_share.to_string(),
            opt(&self.target_share),
            opt(&self.share_error),
            opt(&self.group_share_pct),
            opt(&self.nr_periods),
            opt(&self.nr_throttled),
            opt(&self.throttled_pct),
            opt(&self.throttled_s),
            opt(&self.nr_bursts),
            opt(&self.burst_time_s),
            self.steal_s.to_string(),
            opt(&self.psi_some_s),
            opt(&self.latency_p50_s),
            opt(&self.latency_p90_s),
            opt(&self.latency_p99_s),
            opt(&self.latency_p999_s),
            opt(&self.latency_max_s),
            opt(&self.fast_iters_per_s),
            opt(&self.slow_units),
            opt(&self.requests),
            opt(&self.duty_end_rate_pct),
            opt(&self.throttled_per_request),
            opt(&self.throttled_s_per_request),
            opt(&self.stall_s),
            opt(&self.stall_share),
            opt(&self.gap_p99_s),
            opt(&self.gap_max_s),
            opt(&self.throttle_stall_s),
            opt(&self.other_stall_s),
            opt(&self.probe_loop_ns),
            opt(&self.crng_ready),
            opt(&self.getrandom_bytes_per_s),
            opt(&self.urandom_bytes_per_s),
            opt(&self.random_bytes_per_s),
            opt(&self.hwrng_bytes_per_s),
            opt(&self.min_reader_share),
            opt(&self.fips_blocks),
            opt(&self.fips_failures),
            self.leaked_stopped.to_string(),
            self.leaked_escaped.to_string(),
            self.leaked_cgroups.to_string(),
            self.limiter_faults.to_string(),
        ]);
        v
    }
}

/// Counter changes between two samples, in base units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Delta {
    pub dt_s: f64,
    pub usage_s: f64,
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_s: f64,
    pub nr_bursts: u64,
    pub burst_time_s: f64,
    pub steal_s: f64,
    pub busy_s: f64,
    pub psi_some_s: f64,
    pub psi_full_s: f64,
}

impl Delta {
    pub fn between(a: &Sample, b: &Sample, ticks_per_s: u64) -> Delta {
        let ns = |x: u64, y: u64| y.saturating_sub(x) as f64 / 1e9;
        let ticks = |x: u64, y: u64| y.saturating_sub(x) as f64 / ticks_per_s as f64;
        Delta {
            dt_s: ns(a.t_ns, b.t_ns),
            usage_s: ns(a.usage_ns, b.usage_ns),
            nr_periods: b.nr_periods.saturating_sub(a.nr_periods),
            nr_throttled: b.nr_throttled.saturating_sub(a.nr_throttled),
            throttled_s: ns(a.throttled_ns, b.throttled_ns),
            nr_bursts: b.nr_bursts.saturating_sub(a.nr_bursts),
            burst_time_s: ns(a.burst_ns, b.burst_ns),
            steal_s: ticks(a.steal_ticks, b.steal_ticks),
            busy_s: ticks(a.busy_ticks, b.busy_ticks),
            psi_some_s: b.psi_some_us.saturating_sub(a.psi_some_us) as f64 / 1e6,
            psi_full_s: b.psi_full_us.saturating_sub(a.psi_full_us) as f64 / 1e6,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::leaks::{LeakReport, LeakedProcess};
    use crate::result::{GroupResult, Outcome, RunResult, WorkloadOutput};
    use crate::sample::cpustat::Has;
    use crate::scenario;
    use fibtest::record::{Header, Mode, UnitLatency};

    fn sample(t_ms: u64, usage_ms: u64, periods: u64, throttled: u64, thr_ms: u64) -> Sample {
        Sample {
            t_ns: t_ms * 1_000_000,
            usage_ns: usage_ms * 1_000_000,
            nr_periods: periods,
            nr_throttled: throttled,
            throttled_ns: thr_ms * 1_000_000,
            steal_ticks: t_ms / 100,
            ..Sample::default()
        }
    }

    fn result() -> RunResult {
        let plan = scenario::resolve(
            &scenario::parse(scenario::BUILTIN_DEFAULT, "built-in").unwrap(),
            "built-in",
            &"0-1".parse().unwrap(),
        )
        .unwrap();
        let unit = |due: f64, lat: f64| UnitLatency {
            kind: UnitKind::Request,
            thread: 0,
            index: 0,
            due_s: due,
            start_s: due,
            end_s: due + lat,
            latency_s: lat,
        };
        RunResult {
            planned: plan.runs[0].clone(),
            cgroup: "run-1-1-0".into(),
            without_cgroup: None,
            outcome: Outcome::Completed,
            wall_s: 2.3,
            t0_monotonic_ns: 1_000_000_000,
            limiter: Default::default(),
            leaks: Default::default(),
            teardown: None,
            groups: vec![GroupResult {
                name: "main".into(),
                exit_status: "exited with code 0".into(),
                counters: Has::ALL,
                // Start-up (sync: one throttled period) before the workload's time zero at
                // 300 ms, then two requests.
                samples: vec![
                    sample(0, 0, 0, 0, 0),
                    sample(200, 40, 2, 1, 60),
                    sample(290, 42, 3, 1, 60),
                    sample(1300, 242, 13, 5, 300),
                    sample(2300, 442, 23, 9, 540),
                ],
                workload: WorkloadOutput {
                    header: Some(Header {
                        version: 1,
                        mode: Mode::Requests,
                        pid: 1,
                        start_monotonic_ns: 1_300_000_000,
                        args: vec![],
                    }),
                    units: vec![unit(0.0, 0.44), unit(1.0, 0.38)],
                    ..WorkloadOutput::default()
                },
            }],
        }
    }

    #[test]
    fn counts_from_the_workloads_time_zero() {
        let r = result();
        assert_eq!(r.groups[0].window_start(r.t0_monotonic_ns), 2);
        let rows = summarize("default", &r, 100, false);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.group, "main");
        assert_eq!(row.target_share, Some(0.4));
        assert!((row.share_error.unwrap() - (0.4 / 2.01 - 0.4)).abs() < 1e-9);
        assert_eq!(row.group_share_pct, None);
        assert_eq!(row.leaked_stopped, 0);
        assert_eq!(row.nr_periods, Some(20));
        assert_eq!(row.nr_throttled, Some(8));
        assert!((row.throttled_s.unwrap() - 0.48).abs() < 1e-9);
        assert_eq!(row.nr_bursts, Some(0));
        assert!((row.wall_s - 2.01).abs() < 1e-9);
        assert!((row.cpu_usage_s - 0.4).abs() < 1e-9);
        assert!((row.cpu_share - 0.4 / 2.01).abs() < 1e-9);
        assert_eq!(row.throttled_pct, Some(40.0));
        assert_eq!(row.requests, Some(2));
        assert_eq!(row.throttled_per_request, Some(4.0));
        assert!((row.throttled_s_per_request.unwrap() - 0.24).abs() < 1e-9);
        assert_eq!(row.latency_p50_s, Some(0.38));
        assert_eq!(row.latency_max_s, Some(0.44));
        assert_eq!(row.slow_units, None);
        assert_eq!(row.quota_s, Some(0.04));
        assert_eq!(row.psi_some_s, None);
        assert!((row.steal_s - 0.21).abs() < 1e-9);
    }

    #[test]
    fn without_a_header_counts_from_the_first_sample() {
        let mut r = result();
        r.groups[0].workload.header = None;
        assert_eq!(r.groups[0].window_start(r.t0_monotonic_ns), 0);
        let row = &summarize("default", &r, 100, true)[0];
        assert_eq!(row.nr_throttled, Some(9));
        assert_eq!(row.psi_some_s, Some(0.0));
    }

    #[test]
    fn counters_the_kernel_did_not_report_are_empty_not_zero() {
        // A v2 cgroup without the cpu controller (or a kernel without
        // CONFIG_CFS_BANDWIDTH): cpu.stat has no nr_periods, so the samples hold zeros
        // that mean "not reported", not "never throttled".
        let mut r = result();
        for s in r.groups[0].samples.iter_mut() {
            s.nr_periods = 0;
            s.nr_throttled = 0;
            s.throttled_ns = 0;
        }
        r.groups[0].counters = Has {
            bandwidth: false,
            burst: false,
        };
        let row = summarize("default", &r, 100, false).remove(0);
        assert_eq!(row.nr_periods, None);
        assert_eq!(row.nr_throttled, None);
        assert_eq!(row.throttled_s, None);
        assert_eq!(row.throttled_pct, None);
        assert_eq!(row.throttled_per_request, None);
        assert_eq!(row.throttled_s_per_request, None);
        assert_eq!(row.nr_bursts, None);
        assert_eq!(row.burst_time_s, None);
        // Usage is still there, and the CSV cells are empty.
        assert!((row.cpu_usage_s - 0.4).abs() < 1e-9);
        let h = SummaryRow::header(&[]);
        let v = row.values();
        let cell = |name: &str| v[h.iter().position(|c| c == name).unwrap()].clone();
        assert_eq!(cell("nr_periods"), "");
        assert_eq!(cell("throttled_s"), "");
        assert_eq!(cell("nr_bursts"), "");

        // A kernel before burst (4.x): bandwidth counters yes, burst counters no.
        r.groups[0].counters = Has {
            bandwidth: true,
            burst: false,
        };
        let row = summarize("default", &r, 100, false).remove(0);
        assert_eq!(row.nr_periods, Some(0));
        assert_eq!(row.nr_bursts, None);
    }

    #[test]
    fn header_and_values_line_up() {
        let row = summarize("default", &result(), 100, false).remove(0);
        let swept = vec!["limiter.quota".to_string()];
        let mut row2 = row.clone();
        row2.params = vec![("limiter.quota".into(), "40ms".into())];
        assert_eq!(SummaryRow::header(&swept).len(), row2.values().len());
        assert_eq!(SummaryRow::header(&[]).len(), row.values().len());
        assert_eq!(SummaryRow::header(&swept)[2], "param_limiter.quota");
        assert_eq!(SummaryRow::header(&swept)[3], "group");
    }

    #[test]
    fn groups_get_a_row_each_with_their_share_of_the_total() {
        let mut r = result();
        let mut other = r.groups[0].clone();
        other.name = "b".into();
        // Three times the first group's usage.
        for s in other.samples.iter_mut() {
            s.usage_ns *= 3;
        }
        r.groups.push(other);
        let mut g2 = r.planned.groups[0].clone();
        g2.name = "b".into();
        r.planned.groups.push(g2);
        r.leaks = LeakReport {
            stopped: vec![LeakedProcess {
                pid: 1,
                state: "T".into(),
                name: "sed".into(),
                cmdline: "sed".into(),
            }],
            ..LeakReport::default()
        };
        let rows = summarize("w", &r, 100, false);
        assert_eq!(rows.len(), 2);
        assert!((rows[0].group_share_pct.unwrap() - 25.0).abs() < 1e-9);
        assert!((rows[1].group_share_pct.unwrap() - 75.0).abs() < 1e-9);
        assert!(rows.iter().all(|x| x.leaked_stopped == 1));
    }

    #[test]
    fn group_shares_count_only_while_every_group_ran() {
        // Group b starts 1 s late: before that a had both CPUs (2 CPU-s per s). From 1 s
        // to 3 s they split 2:1 (a 4/3 per s, b 2/3 per s).
        let a: Vec<Sample> = (0..=3)
            .map(|k| {
                let t = k * 1000;
                let u = if k <= 1 {
                    2 * t
                } else {
                    2000 + (t - 1000) * 4 / 3
                };
                sample(t, u, 0, 0, 0)
            })
            .collect();
        let b: Vec<Sample> = (1..=3)
            .map(|k| sample(k * 1000, (k - 1) * 1000 * 2 / 3, 0, 0, 0))
            .collect();
        let s = common_window_shares(&[&a, &b], &[0, 0], &[None, None]).unwrap();
        assert!(
            (s[0] - 66.67).abs() < 0.1 && (s[1] - 33.33).abs() < 0.1,
            "{s:?}"
        );
        // Over each group's own window a would have had 4.67 of 6 CPU-s: 77.8%.
        // No common window: nothing to say.
        let late: Vec<Sample> = vec![sample(5000, 0, 0, 0, 0), sample(6000, 100, 0, 0, 0)];
        assert_eq!(
            common_window_shares(&[&a, &late], &[0, 0], &[None, None]),
            None
        );
        // b's workload ended at 2 s (its sampler kept going): only 1-2 s counts.
        let s = common_window_shares(&[&a, &b], &[0, 0], &[None, Some(2_000_000_000)]).unwrap();
        assert!((s[0] - 66.67).abs() < 0.1, "{s:?}");
    }
}
