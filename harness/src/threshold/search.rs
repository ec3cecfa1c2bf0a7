//! The threshold search, independent of how a probe is run (a real workload in a cgroup,
//! or a simulated burstable CPU in tests).
//!
//! Throttling is detected from the job's own work rate (Fibonacci steps per wall second
//! in 100 ms slices), calibrated at the start, so it works where the guest sees no
//! counter (a hypervisor's credits). A slice counts as throttled when its rate is below
//! half the calibrated rate: the machine's ordinary stalls (a few % of each CPU here) do
//! not come near that.
//!
//! 1. Calibrate: one second at full speed gives the unthrottled rate.
//! 2. Burst: run at full speed until the rate collapses (median of three slices below
//!    half): the time until then, plus the calibration second, is the burst budget; the
//!    rate after it, over the calibrated rate, is the throttled share.
//! 3. Sustainable duty share at cycle C: bracket around the throttled share, then bisect.
//!    Each probe first drains any balance earned since (full speed until the rate
//!    collapses), then runs `on = d × C`, `off = (1 − d) × C` for a few cycles; it is
//!    sustainable if the ends of its later on-periods kept `SearchParams::sustainable`
//!    (by default half) of the calibrated rate. Starting each probe empty keeps probes
//!    short: a duty share above the threshold shows within one cycle instead of after
//!    draining a full budget. The bracket ends are probed once more to confirm; a
//!    confirmation that disagrees with the probe before it is settled by a third probe
//!    at the same share, and the output says so.
//!
//! A bracket needs evidence on both sides: a share found sustainable and one found
//! throttled. Without a throttled probe (the rate never collapsed) there is no upper end,
//! and the findings say that instead of a bracket of [100%, 100%]. A probe cut short by
//! an interrupt measured nothing: it is discarded, not recorded.

use fibtest::record::DutyPeriod;
use fibtest::stats;
use serde::Serialize;
use std::time::Duration;

/// A probe's workload: duty cycle `on`/`off` for `duration`, work counted per `slice`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeSpec {
    pub on: Duration,
    pub off: Duration,
    pub duration: Duration,
    pub slice: Duration,
}

/// What a probe measured.
#[derive(Debug, Clone, Default)]
pub struct ProbeResult {
    pub periods: Vec<DutyPeriod>,
    /// Change of the cgroup's nr_throttled and throttled time, when there is a cgroup.
    pub nr_throttled: u64,
    pub throttled_s: f64,
    /// Whether the probe ran to its end (false: interrupted).
    pub complete: bool,
}

/// Runs probes.
pub trait Prober {
    fn probe(&mut self, spec: &ProbeSpec) -> anyhow::Result<ProbeResult>;
    /// Put the limit under search in place; called after calibration, so the calibrated
    /// rate is the unthrottled one (on a cloud instance there is nothing to put in place).
    fn start_limit(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Every probe, as written to probes.csv.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeRecord {
    pub probe: usize,
    /// calibrate, burst, drain, duty, confirm
    pub phase: &'static str,
    pub duty_share: f64,
    pub on_s: f64,
    pub off_s: f64,
    pub duration_s: f64,
    /// Median over slices of rate ÷ calibrated rate.
    pub rate_median: f64,
    /// Median (the lower middle of an even count) over the later on-periods of their last
    /// slice's rate ÷ calibrated rate.
    pub rate_end: f64,
    pub throttled: bool,
    pub nr_throttled: u64,
    pub throttled_s: f64,
    /// Seconds since the search started, at the end of this probe.
    pub elapsed_s: f64,
}

/// What the search found, with its uncertainty.
#[derive(Debug, Clone, Serialize)]
pub struct Findings {
    /// Largest duty share found sustainable at `cycle_s`.
    pub sustainable_share: f64,
    /// The bracket: sustainable at `_low`, throttled at `_high` (None: no probe was
    /// throttled, so there is no upper end).
    pub sustainable_share_low: f64,
    pub sustainable_share_high: Option<f64>,
    /// The rule a duty probe was judged by: its on-periods' ends kept this share of the
    /// calibrated rate.
    pub sustainable_rate: f64,
    /// Shares at which two probes disagreed, and what a third decided (true: throttled).
    pub disagreements: Vec<(f64, bool)>,
    pub cycle_s: f64,
    /// Seconds at full speed from rest until the rate collapsed (None: it did not within
    /// `burst_probe_s`, so the budget is at least that).
    pub burst_budget_s: Option<f64>,
    /// The balance that burst used up, in CPU-seconds: burst × (1 − throttled share), as a
    /// credit system earns at the throttled share while the job runs.
    pub burst_balance_s: Option<f64>,
    pub burst_probe_s: f64,
    /// Share of the calibrated rate once throttled.
    pub throttled_share: Option<f64>,
    /// Estimated rest to earn the burst back (burst balance ÷ throttled share, the credit
    /// model's earn rate); not measured.
    pub recovery_estimate_s: Option<f64>,
    /// Unthrottled rate, in Fibonacci steps per second.
    pub calibrated_steps_per_s: f64,
    pub probes: usize,
    pub elapsed_s: f64,
    /// Whether the time budget ended the search before the bracket was as narrow as asked.
    pub budget_exhausted: bool,
}

/// Settings of a search.
#[derive(Debug, Clone, Copy)]
pub struct SearchParams {
    pub cycle: Duration,
    /// Longest full-speed probe for the burst budget.
    pub max_burst: Duration,
    /// Stop bisecting when the bracket is this narrow.
    pub resolution: f64,
    /// Cycles per duty probe.
    pub cycles: u32,
    /// Total time allowed.
    pub budget: Duration,
    pub slice: Duration,
    /// A duty probe is sustainable when the ends of its on-periods keep at least this
    /// share of the calibrated rate (0.5: the machine's ordinary stalls never come near
    /// it, throttling always goes below).
    pub sustainable: f64,
}

/// Below this share of the calibrated rate a slice is throttled.
const COLLAPSE: f64 = 0.5;

/// After a collapse, a mean rate of at least this share of the calibrated one is the
/// work running free again, not a throttled share.
const RECOVERED: f64 = 0.95;

/// The median of rates (the mean of the middle two for an even count; 0 for none).
fn median(v: Vec<f64>) -> f64 {
    stats::median(&v).unwrap_or(0.0)
}

/// The lower middle of on-period rates: of two on-periods, one held and one free (a
/// limiter that alternates), the held one decides (`stats::lower_median` says why).
fn lower_median(v: Vec<f64>) -> f64 {
    stats::lower_median(&v).unwrap_or(0.0)
}

/// Work rate of each slice of an on-period. The last slice is shorter when the on-time is
/// not a whole number of slices: its rate is over its own length, and a last slice under a
/// fifth of a slice is left out (too short to say anything).
fn slice_rates(p: &DutyPeriod) -> impl Iterator<Item = f64> + '_ {
    let n = p.slice_steps.len();
    let last_len = p.on_s - (n.saturating_sub(1)) as f64 * p.slice_s;
    p.slice_steps.iter().enumerate().filter_map(move |(i, s)| {
        let len = if i + 1 == n {
            last_len.min(p.slice_s)
        } else {
            p.slice_s
        };
        (len >= 0.2 * p.slice_s).then(|| *s as f64 / len)
    })
}

/// The first slice (over all periods, in order) that is below the collapse line and
/// starts three slices whose median is too, and the on-time before it.
fn collapse_at(periods: &[DutyPeriod], rate: f64) -> Option<(f64, usize)> {
    let all: Vec<(f64, f64)> = periods
        .iter()
        .flat_map(|p| slice_rates(p).map(move |r| (r, p.slice_s)))
        .collect();
    let mut t = 0.0;
    for i in 0..all.len() {
        let low = all[i].0 < COLLAPSE * rate;
        if low
            && i + 3 <= all.len()
            && median(all[i..i + 3].iter().map(|x| x.0).collect()) < COLLAPSE * rate
        {
            return Some((t, i));
        }
        t += all[i].1;
    }
    None
}

/// Run the search.
pub fn search(
    prober: &mut dyn Prober,
    p: &SearchParams,
    now_s: &mut dyn FnMut() -> f64,
    progress: &mut dyn FnMut(&ProbeRecord, (f64, f64)),
) -> anyhow::Result<(Findings, Vec<ProbeRecord>)> {
    let start = now_s();
    let mut records: Vec<ProbeRecord> = Vec::new();
    let slice = p.slice;
    let full = |d: Duration| ProbeSpec {
        on: d,
        off: Duration::ZERO,
        duration: d,
        slice,
    };
    let mut bracket = (0.0f64, 1.0f64);
    let mut run = |phase: &'static str,
                   spec: ProbeSpec,
                   rate: f64,
                   prober: &mut dyn Prober,
                   records: &mut Vec<ProbeRecord>,
                   bracket: (f64, f64),
                   now_s: &mut dyn FnMut() -> f64|
     -> anyhow::Result<(ProbeResult, ProbeRecord)> {
        let r = prober.probe(&spec)?;
        let rates: Vec<f64> = r.periods.iter().flat_map(slice_rates).collect();
        let rate = if rate > 0.0 {
            rate
        } else {
            median(rates.clone()).max(1.0)
        };
        // The ends of the on-periods after the first (which starts from an empty balance).
        let ends: Vec<f64> = r
            .periods
            .iter()
            .skip(usize::from(r.periods.len() > 1))
            .filter_map(|q| slice_rates(q).last().map(|x| x / rate))
            .collect();
        let on_s = spec.on.as_secs_f64();
        let cycle = on_s + spec.off.as_secs_f64();
        let rec = ProbeRecord {
            probe: records.len(),
            phase,
            duty_share: if cycle > 0.0 { on_s / cycle } else { 1.0 },
            on_s,
            off_s: spec.off.as_secs_f64(),
            duration_s: spec.duration.as_secs_f64(),
            rate_median: median(rates) / rate,
            rate_end: lower_median(ends.clone()),
            throttled: !ends.is_empty() && lower_median(ends) < p.sustainable,
            nr_throttled: r.nr_throttled,
            throttled_s: r.throttled_s,
            elapsed_s: now_s() - start,
        };
        if !r.complete {
            // Cut short: it measured nothing, so it is not a probe.
            anyhow::bail!(
                "the search was interrupted during probe {} ({phase}), which is discarded; {} probe(s) kept",
                records.len(),
                records.len()
            );
        }
        records.push(rec.clone());
        progress(&rec, bracket);
        Ok((r, rec))
    };

    // 1. Calibrate, before the limit is in place.
    let (cal, _) = run(
        "calibrate",
        full(Duration::from_secs(1)),
        0.0,
        prober,
        &mut records,
        bracket,
        now_s,
    )?;
    let cal_rates: Vec<f64> = cal.periods.iter().flat_map(slice_rates).collect();
    let rate = median(cal_rates);
    anyhow::ensure!(rate > 0.0, "the calibration probe did no work");
    prober.start_limit()?;

    // 2. Burst budget and throttled share.
    let (burst, _) = run(
        "burst",
        full(p.max_burst),
        rate,
        prober,
        &mut records,
        bracket,
        now_s,
    )?;
    let collapse = collapse_at(&burst.periods, rate);
    let all: Vec<f64> = burst.periods.iter().flat_map(slice_rates).collect();
    let (burst_budget_s, throttled_share) = match collapse {
        Some((t, i)) => {
            // The rate once throttled: the slices after the collapse, past a 1 s settle.
            let settle = (1.0 / slice.as_secs_f64()) as usize;
            let after: Vec<f64> = all.iter().skip(i + settle).copied().collect();
            let after = if after.is_empty() {
                all[i..].to_vec()
            } else {
                after
            };
            // The mean, not the median: a limiter that holds in short bursts (a credit
            // system releasing a tick's worth at a time) makes single slices swing
            // between far below and far above the average it grants.
            let mean = after.iter().sum::<f64>() / after.len() as f64;
            if mean / rate >= RECOVERED {
                // A stall the work recovered from at full speed (another process had
                // the CPU for a moment): nothing holds it to a share, so it is not
                // throttling and leaves no share to search around.
                (None, None)
            } else {
                (Some(t), Some(mean / rate))
            }
        }
        None => (None, None),
    };
    let mut budget_exhausted = false;
    let mut disagreements = Vec::new();
    let mut high: Option<f64> = None;
    if let Some(s) = throttled_share {
        // 3. Bracket around the throttled share, then bisect.
        let cycle = p.cycle.as_secs_f64();
        let drain = |b: f64| {
            full(Duration::from_secs_f64(
                (b / (1.0 - s).max(0.05)).clamp(1.0, 3600.0),
            ))
        };
        let mut probe_duty = |d: f64,
                              phase: &'static str,
                              records: &mut Vec<ProbeRecord>,
                              bracket: (f64, f64),
                              now_s: &mut dyn FnMut() -> f64,
                              prober: &mut dyn Prober|
         -> anyhow::Result<bool> {
            // Drain what the last probe may have earned: at most its off-time's worth.
            let earned = s * cycle * p.cycles as f64;
            run(
                "drain",
                drain(earned + 0.5),
                rate,
                prober,
                records,
                bracket,
                now_s,
            )?;
            // A share outside [0, 1] has no off-time to give (and a negative one is
            // no Duration): the bracket arithmetic stays inside, this says so.
            let d = d.clamp(0.0, 1.0);
            let spec = ProbeSpec {
                on: Duration::from_secs_f64(d * cycle),
                off: Duration::from_secs_f64((1.0 - d) * cycle),
                duration: Duration::from_secs_f64(cycle * p.cycles as f64),
                slice,
            };
            let (_, rec) = run(phase, spec, rate, prober, records, bracket, now_s)?;
            Ok(rec.throttled)
        };
        let per_probe = cycle * p.cycles as f64 + 2.0;
        let over_budget = |now: f64| now - start + per_probe > p.budget.as_secs_f64();
        // Bracket: widen around the estimate until the low end holds and the high end breaks.
        let mut step = 0.02;
        let mut lo = (s - step).clamp(0.005, 0.995);
        let mut hi = (s + step).clamp(lo, 0.995);
        loop {
            if over_budget(now_s()) {
                budget_exhausted = true;
                break;
            }
            let lo_ok = !probe_duty(lo, "duty", &mut records, (lo, hi), now_s, prober)?;
            if !lo_ok {
                hi = lo;
                step *= 2.0;
                lo = (lo - step).max(0.0);
                if lo <= 0.0 {
                    break;
                }
                continue;
            }
            let hi_bad = probe_duty(hi, "duty", &mut records, (lo, hi), now_s, prober)?;
            if hi_bad || hi >= 0.995 {
                break;
            }
            lo = hi;
            step *= 2.0;
            hi = (hi + step).min(0.995);
        }
        // Bisect.
        while hi - lo > p.resolution && !budget_exhausted {
            if over_budget(now_s()) {
                budget_exhausted = true;
                break;
            }
            let mid = (lo + hi) / 2.0;
            if probe_duty(mid, "duty", &mut records, (lo, hi), now_s, prober)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        // Confirm both ends once more. A confirmation that disagrees is settled by a
        // third probe at the same share; a settled throttled low end (or sustainable high
        // end) widens the bracket by the resolution.
        if !budget_exhausted && !over_budget(now_s()) {
            if probe_duty(lo, "confirm", &mut records, (lo, hi), now_s, prober)? {
                let third = probe_duty(lo, "settle", &mut records, (lo, hi), now_s, prober)?;
                disagreements.push((lo, third));
                if third {
                    lo = (lo - p.resolution).max(0.0);
                }
            }
            if !probe_duty(hi, "confirm", &mut records, (lo, hi), now_s, prober)? {
                let third = probe_duty(hi, "settle", &mut records, (lo, hi), now_s, prober)?;
                disagreements.push((hi, third));
                if !third {
                    hi = (hi + p.resolution).min(1.0);
                }
            }
        }
        bracket = (lo, hi);
        high = Some(hi);
    } else {
        bracket = (1.0, 1.0);
    }
    let elapsed_s = now_s() - start;
    Ok((
        Findings {
            sustainable_share: bracket.0,
            sustainable_share_low: bracket.0,
            sustainable_share_high: high,
            sustainable_rate: p.sustainable,
            disagreements,
            cycle_s: p.cycle.as_secs_f64(),
            burst_budget_s,
            burst_balance_s: burst_budget_s
                .zip(throttled_share)
                .map(|(b, s)| b * (1.0 - s)),
            burst_probe_s: p.max_burst.as_secs_f64(),
            throttled_share,
            recovery_estimate_s: burst_budget_s
                .zip(throttled_share)
                .map(|(b, s)| b * (1.0 - s) / s.max(1e-3)),
            calibrated_steps_per_s: rate,
            probes: records.len(),
            elapsed_s,
            budget_exhausted,
        },
        records,
    ))
}

#[cfg(test)]
mod tests;
