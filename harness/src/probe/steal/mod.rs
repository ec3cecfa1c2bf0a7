//! The CPU steal probe: what the kernel accounts as stolen (the steal column of
//! /proc/stat, what vmstat's `st` and mpstat's `%steal` show) next to what a spinning
//! thread observes (the time it did not get), per CPU.
//!
//! Observed stalls use the method of sysjitter and the kernel's osnoise tracer: one thread
//! per selected CPU, pinned, reads CLOCK_MONOTONIC in a tight loop; whenever two reads are
//! more than `threshold` apart (default 5 µs, osnoise's default) the thread did not run in
//! between, and the gap is recorded: into an HDR histogram (percentiles), log2 buckets
//! from the threshold up (counts and totals, for gaps.csv), and 1 ms bins of lost time
//! (the time series). Everything is allocated before the loop starts; the loop itself only
//! reads the clock, compares, and counts.
//!
//! Under a CFS quota the cgroup's throttled time (cpu.stat, summed over CPUs, added when a
//! CPU's queue is unthrottled, which is when the gap it caused ends) is read every
//! interval alongside /proc/stat. In each interval the stalls up to the throttled time are
//! attributed to throttling and the rest to everything else (hypervisor, interrupts,
//! other tasks): `throttle_stall_s` and `other_stall_s`.

mod mpstat;
mod report;
mod spin;

pub use mpstat::{mpstat_interval, steal_share, steal_share_of};
pub use report::{CpuRow, GapBucket, SeriesRow, StealReport, StealSummary};
pub use spin::{spin, Clock, GapRecorder, Monotonic};

use spin::FINE_BIN_NS;

use crate::clock::sleep_until;
use crate::sample::cpustat::CpuStat;
use crate::sample::file::RereadFile;
use crate::sample::procstat::{clock_ticks_per_s, CpuTimes, ProcStat, ProcStatReader};
use anyhow::{Context, Result};
use fibtest::cpulist::{pin_current_thread, CpuList};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// osnoise's default: shorter gaps are the loop's own variation.
pub const DEFAULT_THRESHOLD_NS: u64 = 5_000;
/// What to measure.
#[derive(Debug, Clone)]
pub struct StealConfig {
    /// One spinning thread per CPU.
    pub cpus: CpuList,
    pub duration: Duration,
    pub threshold_ns: u64,
    /// Interval of the time series (and of the /proc/stat and cpu.stat reads).
    pub interval: Duration,
    pub proc_root: PathBuf,
    /// The cgroup's cpu.stat, when the probe runs under a quota.
    pub cgroup_stat: Option<PathBuf>,
    /// Before spinning, measure steal this long with the probe's CPUs left idle (the question of "CPU Time stolen from a virtual machine?" [Steal]:
    /// does the hypervisor's steal count idle time too?). Zero: skip.
    pub idle: Duration,
}

/// The counters read every interval.
pub(super) struct Reads {
    t_ns: Vec<u64>,
    /// The /proc/stat times of each probed CPU, `cpus` per read (steal, and the interval
    /// mpstat divides it by).
    times: Vec<CpuTimes>,
    throttled_ns: Vec<u64>,
    nr_throttled: Vec<u64>,
}

struct Sources {
    procstat: ProcStatReader,
    stat: ProcStat,
    cgroup: Option<(PathBuf, RereadFile)>,
}

impl Sources {
    /// One read of every counter, appended to `r` (within its capacity: no allocation).
    fn read(&mut self, cpus: &[u32], r: &mut Reads, now: u64) -> Result<()> {
        self.procstat.read_into(&mut self.stat)?;
        r.t_ns.push(now);
        for c in cpus {
            r.times
                .push(self.stat.cpus.get(*c as usize).copied().unwrap_or_default());
        }
        if let Some((path, f)) = self.cgroup.as_mut() {
            let text = f.read().with_context(|| path.display().to_string())?;
            let s = CpuStat::parse(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            r.throttled_ns.push(s.throttled_ns);
            r.nr_throttled.push(s.nr_throttled);
        }
        Ok(())
    }
}

/// Run the probe: spin on every CPU of `cfg.cpus` for `cfg.duration` (or until `stop`),
/// reading /proc/stat (and cpu.stat) every interval. `stop` is asked after every sleep.
pub fn run(cfg: &StealConfig, stop: &dyn Fn() -> bool) -> Result<StealReport> {
    let cpus: Vec<u32> = cfg.cpus.iter().collect();
    anyhow::ensure!(!cpus.is_empty(), "no CPU to probe");
    let mut sources = Sources {
        procstat: ProcStatReader::open(&cfg.proc_root).with_context(|| {
            format!(
                "cannot read {}",
                cfg.proc_root.join("stat").to_string_lossy()
            )
        })?,
        stat: ProcStat::default(),
        cgroup: cfg
            .cgroup_stat
            .as_deref()
            .map(|p| {
                RereadFile::open(p, 4096)
                    .map(|f| (p.to_path_buf(), f))
                    .with_context(|| format!("cannot read {}", p.display()))
            })
            .transpose()?,
    };
    // A cpu.stat without throttling counters (a v2 group without the cpu controller, a
    // kernel without CFS bandwidth) would make every stall look unthrottled: say so and
    // leave the split empty instead.
    if let Some((path, f)) = sources.cgroup.as_mut() {
        let text = f
            .read()
            .with_context(|| format!("cannot read {}", path.display()))?;
        let has = CpuStat::parse(text).map(|s| s.has).unwrap_or_default();
        if !has.bandwidth {
            eprintln!(
                "note: {} has no throttling counters (no cpu controller or CFS bandwidth \
                 there): stalls are not split into throttling and other",
                path.display()
            );
            sources.cgroup = None;
        }
    }
    // Steal with the CPUs idle, first.
    let mut idle = None;
    if !cfg.idle.is_zero() {
        let mut a = ProcStat::default();
        let mut b = ProcStat::default();
        let t0 = Monotonic.now_ns();
        sources.procstat.read_into(&mut a)?;
        let end = t0 + cfg.idle.as_nanos() as u64;
        while Monotonic.now_ns() < end && !stop() {
            sleep_until(end);
        }
        sources.procstat.read_into(&mut b)?;
        let secs = (Monotonic.now_ns() - t0) as f64 / 1e9;
        let at = |p: &ProcStat, c: u32| p.cpus.get(c as usize).copied().unwrap_or_default();
        let pairs: Vec<(CpuTimes, CpuTimes)> =
            cpus.iter().map(|c| (at(&a, *c), at(&b, *c))).collect();
        let ticks: u64 = pairs
            .iter()
            .map(|(a, b)| b.steal.saturating_sub(a.steal))
            .sum();
        let share = steal_share_of(pairs.iter().map(|(a, b)| (a, b)));
        idle = Some((secs, ticks as f64 / clock_ticks_per_s() as f64, share));
    }
    let duration_ns = cfg.duration.as_nanos() as u64;
    let interval_ns = (cfg.interval.as_nanos() as u64).max(FINE_BIN_NS);
    let n_reads = (duration_ns / interval_ns) as usize + 3;
    let mut reads = Reads {
        t_ns: Vec::with_capacity(n_reads),
        times: Vec::with_capacity(n_reads * cpus.len()),
        throttled_ns: Vec::with_capacity(n_reads),
        nr_throttled: Vec::with_capacity(n_reads),
    };
    // Warm the buffers so the first timed read is like the others.
    sources
        .stat
        .cpus
        .reserve(cpus.iter().max().map(|c| *c as usize + 1).unwrap_or(1));

    let start = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(cpus.len() + 1));
    let stop_threads = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for &cpu in &cpus {
        let mut rec = GapRecorder::new(cfg.threshold_ns, 0, duration_ns + interval_ns);
        let (start, barrier, stop_threads) = (start.clone(), barrier.clone(), stop_threads.clone());
        let h = std::thread::Builder::new()
            .name(format!("steal-{cpu}"))
            .spawn(move || -> std::io::Result<GapRecorder> {
                let pinned = pin_current_thread(cpu);
                barrier.wait();
                pinned?;
                let t0 = start.load(Ordering::SeqCst);
                rec.set_start(t0);
                spin(&mut Monotonic, &mut rec, t0 + duration_ns, &stop_threads);
                Ok(rec)
            })
            .context("cannot start a probe thread")?;
        handles.push((cpu, h));
    }
    let mut clock = Monotonic;
    let t_first = clock.now_ns();
    let first = sources.read(&cpus, &mut reads, t_first);
    let t0 = clock.now_ns();
    start.store(t0, Ordering::SeqCst);
    barrier.wait();
    let mut complete = first.is_ok();
    let mut err = first.err();
    if err.is_none() {
        let mut k = 1u64;
        loop {
            let due = t0 + (k * interval_ns).min(duration_ns);
            while clock.now_ns() < due && !stop() {
                sleep_until(due);
            }
            if stop() {
                complete = false;
                break;
            }
            let now = clock.now_ns();
            if let Err(e) = sources.read(&cpus, &mut reads, now) {
                err = Some(e);
                break;
            }
            if k * interval_ns >= duration_ns {
                break;
            }
            k += 1;
        }
    }
    stop_threads.store(true, Ordering::SeqCst);
    let mut recs = Vec::new();
    for (cpu, h) in handles {
        let rec = h
            .join()
            .map_err(|_| anyhow::anyhow!("probe thread of CPU {cpu} panicked"))?
            .with_context(|| format!("cannot pin a probe thread to CPU {cpu}"))?;
        recs.push((cpu, rec));
    }
    if let Some(e) = err {
        return Err(e);
    }
    // A last read after the loops, when stopped early.
    if !complete {
        let now = clock.now_ns();
        sources.read(&cpus, &mut reads, now)?;
    }
    let mut r = report::build(&recs, &reads, t0, cfg, clock_ticks_per_s() as f64, complete);
    if let Some((secs, steal, share)) = idle {
        r.summary.idle_s = Some(secs);
        r.summary.idle_steal_s = Some(steal);
        r.summary.idle_steal_share = Some(share);
    }
    Ok(r)
}

#[cfg(test)]
mod tests;
