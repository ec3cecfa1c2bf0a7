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

use crate::clock::sleep_until;
use crate::sample::cpustat::CpuStat;
use crate::sample::file::RereadFile;
use crate::sample::procstat::{clock_ticks_per_s, ProcStat, ProcStatReader};
use anyhow::{Context, Result};
use fibtest::cpulist::{pin_current_thread, CpuList};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// osnoise's default: shorter gaps are the loop's own variation.
pub const DEFAULT_THRESHOLD_NS: u64 = 5_000;
/// Width of the bins of lost time the time series is made from.
const FINE_BIN_NS: u64 = 1_000_000;
/// Log2 buckets from the threshold: the last holds everything above 2^38 thresholds.
const BUCKETS: usize = 40;
/// Largest gap the histogram tracks exactly (longer ones are recorded as this), in ns.
const HIST_MAX_NS: u64 = 3_600_000_000_000;

/// A monotonic clock in ns (the real one, or a fake in tests).
pub trait Clock {
    fn now_ns(&mut self) -> u64;
}

/// CLOCK_MONOTONIC through the vDSO, as the C loop it is compared with reads it.
pub struct Monotonic;

impl Clock for Monotonic {
    #[inline(always)]
    fn now_ns(&mut self) -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into a timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
}

/// What one spinning thread saw. Allocated before the loop; recording never allocates.
pub struct GapRecorder {
    threshold_ns: u64,
    /// Time zero of the fine bins.
    start_ns: u64,
    /// First and last clock reads of the loop.
    pub first_ns: u64,
    pub last_ns: u64,
    pub iterations: u64,
    pub gaps: u64,
    pub lost_ns: u64,
    pub max_ns: u64,
    hist: Histogram<u64>,
    /// (count, total ns) of gaps in [threshold × 2^i, threshold × 2^(i+1)).
    buckets: [(u64, u64); BUCKETS],
    /// Lost ns per FINE_BIN_NS since `start_ns` (a gap is split over the bins it spans).
    fine: Vec<u64>,
}

impl GapRecorder {
    /// Room for `span_ns` of fine bins from `start_ns`; gaps past the end land in the last bin.
    pub fn new(threshold_ns: u64, start_ns: u64, span_ns: u64) -> GapRecorder {
        GapRecorder {
            threshold_ns: threshold_ns.max(1),
            start_ns,
            first_ns: start_ns,
            last_ns: start_ns,
            iterations: 0,
            gaps: 0,
            lost_ns: 0,
            max_ns: 0,
            hist: Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("valid bounds"),
            buckets: [(0, 0); BUCKETS],
            fine: vec![0; (span_ns / FINE_BIN_NS) as usize + 2],
        }
    }

    /// Move time zero of the fine bins (before the loop starts).
    pub fn set_start(&mut self, start_ns: u64) {
        self.start_ns = start_ns;
    }

    /// A gap from `from` to `to` (the two clock reads around it).
    #[cold]
    #[inline(never)]
    fn record(&mut self, from: u64, to: u64) {
        let len = to - from;
        self.gaps += 1;
        self.lost_ns += len;
        self.max_ns = self.max_ns.max(len);
        self.hist.saturating_record(len.min(HIST_MAX_NS));
        let ratio = len / self.threshold_ns;
        let b = ((63 - ratio.max(1).leading_zeros()) as usize).min(BUCKETS - 1);
        self.buckets[b].0 += 1;
        self.buckets[b].1 += len;
        let last = self.fine.len() - 1;
        let bin = |t: u64| ((t.saturating_sub(self.start_ns) / FINE_BIN_NS) as usize).min(last);
        let (b0, b1) = (bin(from), bin(to));
        if b0 == b1 {
            self.fine[b0] += len;
            return;
        }
        // Split over the bins the gap spans.
        let mut t = from;
        for b in b0..b1 {
            let edge = self.start_ns + (b as u64 + 1) * FINE_BIN_NS;
            let edge = edge.clamp(t, to);
            self.fine[b] += edge - t;
            t = edge;
        }
        self.fine[b1] += to - t;
    }

    /// Lost ns in [from, to) (clock times), at the fine bins' resolution.
    fn lost_between(&self, from: u64, to: u64) -> u64 {
        let last = self.fine.len();
        let bin = |t: u64| ((t.saturating_sub(self.start_ns) / FINE_BIN_NS) as usize).min(last);
        self.fine[bin(from)..bin(to)].iter().sum()
    }

    /// Mean time of one loop iteration that was not a gap, in ns.
    pub fn loop_ns(&self) -> f64 {
        let busy = (self.last_ns - self.first_ns).saturating_sub(self.lost_ns);
        let n = self.iterations.saturating_sub(self.gaps);
        if n == 0 {
            0.0
        } else {
            busy as f64 / n as f64
        }
    }

    /// Time the loop ran, in ns.
    pub fn span_ns(&self) -> u64 {
        self.last_ns - self.first_ns
    }
}

/// Spin until the clock reaches `end_ns` or `stop` is set (looked at every 1024
/// iterations), recording every gap above the threshold.
pub fn spin<C: Clock>(clock: &mut C, rec: &mut GapRecorder, end_ns: u64, stop: &AtomicBool) {
    let threshold = rec.threshold_ns;
    let mut prev = clock.now_ns();
    rec.first_ns = prev;
    let mut n: u64 = 0;
    loop {
        let t = clock.now_ns();
        if t - prev > threshold {
            rec.record(prev, t);
        }
        prev = t;
        n += 1;
        if t >= end_ns || (n & 1023 == 0 && stop.load(Ordering::Relaxed)) {
            break;
        }
    }
    rec.iterations = n;
    rec.last_ns = prev;
}

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
    /// Before spinning, measure steal this long with the probe's CPUs left idle (seed 001:
    /// does the hypervisor's steal count idle time too?). Zero: skip.
    pub idle: Duration,
}

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
    /// steal_s / duration_s (per CPU; the "all" row is per CPU on average).
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
    pub duration_s: f64,
    pub cpus: usize,
    pub threshold_s: f64,
    /// /proc/stat steal of the probed CPUs, in s (summed over them).
    pub steal_s: f64,
    /// Observed stalls, summed over the probed CPUs, in s.
    pub stall_s: f64,
    /// stall_s / (loop time × CPUs): share of each CPU lost, on average.
    pub stall_share: f64,
    /// steal_s / (duration × CPUs).
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
    /// them, in s and per CPU as a share of the idle time.
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

/// The counters read every interval.
struct Reads {
    t_ns: Vec<u64>,
    /// Steal ticks of each probed CPU, `cpus` per read.
    steal: Vec<u64>,
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
            r.steal.push(
                self.stat
                    .cpus
                    .get(*c as usize)
                    .map(|t| t.steal)
                    .unwrap_or(0),
            );
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
        let ticks: u64 = cpus
            .iter()
            .map(|c| {
                let at = |p: &ProcStat| p.cpus.get(*c as usize).map(|t| t.steal).unwrap_or(0);
                at(&b).saturating_sub(at(&a))
            })
            .sum();
        idle = Some((secs, ticks as f64 / clock_ticks_per_s() as f64));
    }
    let duration_ns = cfg.duration.as_nanos() as u64;
    let interval_ns = (cfg.interval.as_nanos() as u64).max(FINE_BIN_NS);
    let n_reads = (duration_ns / interval_ns) as usize + 3;
    let mut reads = Reads {
        t_ns: Vec::with_capacity(n_reads),
        steal: Vec::with_capacity(n_reads * cpus.len()),
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
    let mut r = report(&recs, &reads, t0, cfg, clock_ticks_per_s() as f64, complete);
    if let Some((secs, steal)) = idle {
        r.summary.idle_s = Some(secs);
        r.summary.idle_steal_s = Some(steal);
        r.summary.idle_steal_share = Some(steal / (secs * cpus.len() as f64).max(1e-9));
    }
    Ok(r)
}

fn pct(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1e9)
}

/// Turn what the loops and the reads saw into the report.
fn report(
    recs: &[(u32, GapRecorder)],
    reads: &Reads,
    t0: u64,
    cfg: &StealConfig,
    hz: f64,
    complete: bool,
) -> StealReport {
    let n = recs.len();
    let last = reads.t_ns.len() - 1;
    let steal_at = |i: usize, c: usize| reads.steal[i * n + c];
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
            steal_share: steal_s / duration_s.max(1e-9),
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
        steal_share: steal_s / (duration_s * n as f64).max(1e-9),
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
        super::write_rows(&dir.join("steal.csv"), &self.cpus)?;
        super::write_rows(&dir.join("gaps.csv"), &self.gaps)?;
        super::write_rows(&dir.join(series_name), &self.series)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each read advances by `step` ns, except the reads listed in `jumps` (iteration
    /// number, extra ns), which come after a gap.
    struct FakeClock {
        t: u64,
        n: u64,
        step: u64,
        jumps: Vec<(u64, u64)>,
    }

    impl Clock for FakeClock {
        fn now_ns(&mut self) -> u64 {
            self.n += 1;
            self.t += self.step;
            if let Some(j) = self.jumps.iter().find(|j| j.0 == self.n) {
                self.t += j.1;
            }
            self.t
        }
    }

    fn spin_fake(jumps: Vec<(u64, u64)>, until: u64) -> GapRecorder {
        let mut clock = FakeClock {
            t: 1_000_000_000,
            n: 0,
            step: 30,
            jumps,
        };
        let mut rec = GapRecorder::new(5_000, 1_000_000_000, until);
        spin(
            &mut clock,
            &mut rec,
            1_000_000_000 + until,
            &AtomicBool::new(false),
        );
        rec
    }

    #[test]
    fn injected_gaps_are_counted_measured_and_binned() {
        // Gaps of 4 µs (below the threshold), 10 µs, 2 ms and 50 ms into a 200 ms loop.
        let rec = spin_fake(
            vec![
                (1_000, 4_000),
                (2_000, 10_000),
                (3_000, 2_000_000),
                (4_000, 50_000_000),
            ],
            200_000_000,
        );
        assert_eq!(rec.gaps, 3);
        // Each gap is its jump plus the one step of the read after it.
        assert_eq!(rec.lost_ns, 10_030 + 2_000_030 + 50_000_030);
        assert_eq!(rec.max_ns, 50_000_030);
        assert!((rec.loop_ns() - 30.0).abs() < 0.5, "{}", rec.loop_ns());
        // 10 µs falls in [5, 10) × 2^1 = [10, 20) µs; 2 ms in [1.28, 2.56) ms; 50 ms in
        // [40.96, 81.92) ms.
        assert_eq!(rec.buckets[1], (1, 10_030));
        assert_eq!(rec.buckets[8], (1, 2_000_030));
        assert_eq!(rec.buckets[13], (1, 50_000_030));
        assert_eq!(rec.buckets.iter().map(|b| b.0).sum::<u64>(), 3);
        // p50 of three gaps is the middle one (HDR: 3 significant digits).
        let p50 = rec.hist.value_at_quantile(0.5);
        assert!((1_998_000..=2_002_000).contains(&p50), "{p50}");
        // The 50 ms gap spans about 51 fine bins; their sum is the whole gap.
        let start = rec.start_ns;
        assert_eq!(rec.lost_between(start, start + 200_000_000), rec.lost_ns);
        let nonzero = rec.fine.iter().filter(|b| **b > 0).count();
        assert!((50..=53).contains(&nonzero), "{nonzero}");
    }

    #[test]
    fn a_quiet_loop_has_no_gaps() {
        let rec = spin_fake(vec![], 10_000_000);
        assert_eq!(rec.gaps, 0);
        assert_eq!(rec.lost_ns, 0);
        assert!(rec.iterations >= 10_000_000 / 30);
    }

    #[test]
    fn the_report_attributes_stalls_to_throttling_interval_by_interval() {
        // Two intervals of 100 ms; a 60 ms gap in the first while the cgroup was throttled
        // 60 ms, and a 5 ms gap in the second without throttling.
        let t0 = 1_000_000_000u64;
        let mut rec = GapRecorder::new(5_000, t0, 200_000_000);
        rec.first_ns = t0;
        rec.record(t0 + 20_000_000, t0 + 80_000_000);
        rec.record(t0 + 150_000_000, t0 + 155_000_000);
        rec.last_ns = t0 + 200_000_000;
        rec.iterations = 1_000;
        let reads = Reads {
            t_ns: vec![t0, t0 + 100_000_000, t0 + 200_000_000],
            steal: vec![10, 10, 11],
            throttled_ns: vec![0, 60_000_000, 60_000_000],
            nr_throttled: vec![0, 1, 1],
        };
        let cfg = StealConfig {
            cpus: CpuList::from_cpus([0]),
            duration: Duration::from_millis(200),
            threshold_ns: 5_000,
            interval: Duration::from_millis(100),
            proc_root: "/proc".into(),
            cgroup_stat: None,
            idle: Duration::ZERO,
        };
        let r = report(&[(0, rec)], &reads, t0, &cfg, 100.0, true);
        let s = &r.summary;
        assert!((s.stall_s - 0.065).abs() < 1e-9, "{s:?}");
        assert!((s.steal_s - 0.01).abs() < 1e-9);
        assert_eq!(s.throttle_stall_s, Some(0.06));
        assert!((s.other_stall_s.unwrap() - 0.005).abs() < 1e-9);
        assert_eq!(s.nr_throttled, Some(1));
        let all: Vec<&SeriesRow> = r.series.iter().filter(|x| x.cpu == "all").collect();
        assert_eq!(all.len(), 2);
        assert!((all[0].stall_s - 0.06).abs() < 1e-9);
        assert!((all[1].stall_s - 0.005).abs() < 1e-9);
        assert_eq!(all[1].throttle_stall_s, Some(0.0));
        assert_eq!(r.cpus.last().unwrap().cpu, "all");
        // Buckets are cut after the largest used: 60 ms is in [40.96, 81.92) ms, bucket 13.
        assert_eq!(r.gaps.len(), 14);
    }
}
