//! Steal as a share of a CPU's time, computed as mpstat's `%steal` is, so the probe's
//! `steal_share` and mpstat's figure are the same number for the same two reads of
//! /proc/stat.
//!
//! sysstat (the source of mpstat, file rd_stats.c, "get_per_cpu_interval") divides the
//! change of the steal column by the change of all time columns of that CPU: user, nice,
//! system, idle, iowait, irq, softirq and steal; not guest and guest_nice, "because
//! cpu_user and cpu_nice already include them". When `user − guest` (or `nice −
//! guest_nice`) went down between the two reads (the kernel's guest counter can run a
//! little ahead of user), the shortfall is added back to the interval. An interval of
//! zero ticks (a tickless CPU that did not tick at all) gives 0 % steal, as mpstat prints.
//! mpstat's `all` row (sysstat 12.6) is the steal of the online CPUs' lines (not the `cpu`
//! line) over the sum of their per-CPU intervals: [`steal_share_of`]. The real mpstat
//! decides these details: `harness/tests/probe/mpstat.rs` runs it on the fixtures.

use crate::sample::procstat::CpuTimes;

/// The interval in clock ticks between two reads of one CPU's times, as sysstat computes
/// it: every time column except guest and guest_nice, plus the guest shortfall.
pub fn mpstat_interval(prev: &CpuTimes, curr: &CpuTimes) -> u64 {
    // sysstat works in unsigned 64-bit arithmetic; so does this (wrapping, as C does).
    let shortfall = |cu: u64, cg: u64, pu: u64, pg: u64| {
        let (c, p) = (cu.wrapping_sub(cg), pu.wrapping_sub(pg));
        p.saturating_sub(c)
    };
    let ishift = shortfall(curr.user, curr.guest, prev.user, prev.guest)
        + shortfall(curr.nice, curr.guest_nice, prev.nice, prev.guest_nice);
    curr.total().wrapping_sub(prev.total()).wrapping_add(ishift)
}

/// mpstat's `%steal` ÷ 100 between two reads of one CPU: steal ticks over interval ticks.
pub fn steal_share(prev: &CpuTimes, curr: &CpuTimes) -> f64 {
    match mpstat_interval(prev, curr) {
        0 => 0.0,
        interval => curr.steal.saturating_sub(prev.steal) as f64 / interval as f64,
    }
}

/// mpstat's `all` row over the CPUs of `pairs` (previous, current read of each): the
/// steal ticks of all of them over the sum of their intervals, each CPU's interval with its
/// own guest shortfall (what mpstat 12.6 prints; the `cpu` line is not used).
pub fn steal_share_of<'a>(pairs: impl IntoIterator<Item = (&'a CpuTimes, &'a CpuTimes)>) -> f64 {
    let (mut steal, mut interval) = (0u64, 0u64);
    for (prev, curr) in pairs {
        steal += curr.steal.saturating_sub(prev.steal);
        interval += mpstat_interval(prev, curr);
    }
    if interval == 0 {
        0.0
    } else {
        steal as f64 / interval as f64
    }
}
