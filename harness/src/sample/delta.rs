//! Counter changes between two samples, in base units (s, counts): what each row of
//! timeseries.csv holds and what a summary adds up.

use super::Sample;
use serde::Serialize;

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
