//! An emulated burstable CPU (like an EC2 T-series instance), the known truth the
//! threshold finder is tested against. The workload earns credits at the baseline rate,
//! spends them when it uses CPU, holds at most `balance_max`, and when the balance is
//! empty is held at the baseline share through the cgroup's CFS quota. Balances are in
//! CPU-seconds (one second of one CPU at full speed).
//!
//! Every `tick` the loop reads the cgroup's CPU usage and updates:
//! `balance = min(balance_max, balance + baseline × dt − used)`. When the balance is empty
//! the quota becomes `baseline × period`; it is lifted again once the balance holds at
//! least one tick of full-speed running, so that a job held at the baseline (earning
//! exactly what it spends) is not let loose by rounding.

use super::duty::{Clock, CpuUsage};
use crate::cgroup::CfsLimit;
use crate::cgroup::CgroupError;
use crate::scenario::plan::CreditModel;
use serde::Serialize;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Sets the CFS limit (a cgroup in production, a fake in tests).
pub trait QuotaSink {
    fn set(&mut self, limit: &CfsLimit) -> Result<(), CgroupError>;
}

/// One point of the balance over time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CreditPoint {
    /// Seconds since the loop started.
    pub t_s: f64,
    pub balance_s: f64,
    /// Whether the workload was held at the baseline.
    pub held: bool,
}

/// Run until `stop`; returns the balance every tick where it changed state, plus the
/// first and last points.
pub fn run(
    m: &CreditModel,
    clock: &mut dyn Clock,
    cpu: &mut dyn CpuUsage,
    sink: &mut dyn QuotaSink,
    stop: &AtomicBool,
) -> io::Result<Vec<CreditPoint>> {
    let unlimited = CfsLimit {
        quota_us: None,
        period_us: m.period_us,
        burst_us: 0,
    };
    let held_limit = CfsLimit {
        quota_us: Some(((m.baseline * m.period_us as f64) as u64).max(1000)),
        period_us: m.period_us,
        burst_us: 0,
    };
    let start = clock.now_ns();
    let mut balance = m.balance_start_s.min(m.balance_max_s);
    let mut held = balance <= 0.0;
    sink.set(if held { &held_limit } else { &unlimited })
        .map_err(io::Error::other)?;
    let mut points = vec![CreditPoint {
        t_s: 0.0,
        balance_s: balance,
        held,
    }];
    let mut last_t = start;
    let mut last_used = cpu.usage_ns()?;
    let mut next = start;
    while !stop.load(Ordering::Relaxed) {
        next += m.tick_ns;
        if !clock.sleep_until(next, stop) {
            break;
        }
        let now = clock.now_ns();
        let used = cpu.usage_ns()?;
        let dt = (now - last_t) as f64 / 1e9;
        let spent = used.saturating_sub(last_used) as f64 / 1e9;
        // No floor at 0: usage is read per tick, not per CFS period, so one tick can
        // overspend what the next repays; clamping would forgive that debt and leak CPU
        // above the baseline. The debt is bounded by one period at full speed.
        let floor = -(m.period_us as f64 / 1e6);
        balance = (balance + m.baseline * dt - spent)
            .min(m.balance_max_s)
            .max(floor);
        last_t = now;
        last_used = used;
        let release_at = m.tick_ns as f64 / 1e9;
        let should_hold = if held {
            balance < release_at
        } else {
            balance <= 0.0
        };
        if should_hold != held {
            held = should_hold;
            sink.set(if held { &held_limit } else { &unlimited })
                .map_err(io::Error::other)?;
            points.push(CreditPoint {
                t_s: (now - start) as f64 / 1e9,
                balance_s: balance,
                held,
            });
        }
    }
    points.push(CreditPoint {
        t_s: (clock.now_ns() - start) as f64 / 1e9,
        balance_s: balance,
        held,
    });
    Ok(points)
}

#[cfg(test)]
mod tests;
