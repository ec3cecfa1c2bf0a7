//! `throttlebench bench sampler`: what the sampler costs, measured the way it runs in a
//! real run (one tick = reading every group's cgroup files and the system files once,
//! writing each group's timeseries.csv row, checking on the workload, then an
//! absolute-deadline sleep), on real, idle cgroups, next to two floors:
//!
//! - `timer`: the same loop that only sleeps: the wake-up cost any sampler at this
//!   interval pays, whatever it reads;
//! - `reads`: the same files read back to back in a tight loop, without parsing or
//!   writing: the physical floor of reading them;
//! - `timed-reads`: the same reads once a tick on the sampler's schedule, without
//!   parsing or writing: the floor with caches as a waking tick finds them.
//!
//! Each configuration is measured `--repeat` times; the table gives the median and the
//! range, so a figure quoted from it comes with its spread.

use crate::cgroup::{Cgroup, Hierarchy, Version};
use crate::clock::{monotonic_ns, sleep_until, thread_cpu_ns};
use crate::report::files::timeseries;
use crate::sample::file::RereadFile;
use crate::sample::{Delta, GroupSources, Sample, Sampler};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// One measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SamplerCost {
    /// "timer": the loop's absolute-deadline sleep alone; "sampler": a real tick (reads,
    /// parse, a timeseries row per group) on top of it; "reads": the files read back to
    /// back, no sleep, no parse.
    pub loop_kind: &'static str,
    pub groups: usize,
    pub interval_s: f64,
    pub repeat: u32,
    pub ticks: u64,
    /// Wall time, in s.
    pub wall_s: f64,
    /// CPU time of the measuring thread, in s.
    pub cpu_s: f64,
    /// cpu_s / ticks, in µs.
    pub cpu_per_tick_us: f64,
    /// cpu_s / ticks / groups, in µs.
    pub cpu_per_group_tick_us: f64,
    /// 100 * cpu_s / wall_s: share of one CPU, in %.
    pub cpu_pct: f64,
    /// Ticks skipped because the loop fell more than an interval behind.
    pub missed_ticks: u64,
}

/// `groups` idle cgroups under the tool's parent, removed when dropped.
struct IdleGroups {
    top: Cgroup,
    children: Vec<Cgroup>,
}

impl IdleGroups {
    fn make(h: &Hierarchy, n: usize) -> Result<IdleGroups> {
        let top = h.create_run(&[])?;
        let children = (0..n)
            .map(|i| top.create_child(&format!("g{i}")))
            .collect::<Result<_, _>>()?;
        Ok(IdleGroups { top, children })
    }

    fn paths(&self) -> Vec<(PathBuf, Option<PathBuf>)> {
        self.children
            .iter()
            .map(|c| {
                (
                    c.cpu_stat_path(),
                    (c.version == Version::V1).then(|| c.usage_path()),
                )
            })
            .collect()
    }

    fn remove(self, h: &Hierarchy) -> Result<()> {
        for c in self.children {
            c.destroy(Duration::from_secs(2))?;
        }
        self.top.destroy(Duration::from_secs(2))?;
        h.remove_parents_if_empty();
        Ok(())
    }
}

/// Measure one loop kind at one interval with `groups` groups.
pub fn measure(
    h: &Hierarchy,
    proc_root: &Path,
    kind: &'static str,
    groups: usize,
    interval: Duration,
    duration: Duration,
    repeat: u32,
) -> Result<SamplerCost> {
    let idle = IdleGroups::make(h, groups)?;
    let paths = idle.paths();
    let r = run_loop(proc_root, kind, &paths, interval, duration);
    idle.remove(h)?;
    let (ticks, wall, cpu, missed) = r?;
    Ok(SamplerCost {
        loop_kind: kind,
        groups,
        interval_s: interval.as_secs_f64(),
        repeat,
        ticks,
        wall_s: wall as f64 / 1e9,
        cpu_s: cpu as f64 / 1e9,
        cpu_per_tick_us: cpu as f64 / 1e3 / ticks.max(1) as f64,
        cpu_per_group_tick_us: cpu as f64 / 1e3 / ticks.max(1) as f64 / groups.max(1) as f64,
        cpu_pct: 100.0 * cpu as f64 / wall.max(1) as f64,
        missed_ticks: missed,
    })
}

/// Ticks, wall ns, CPU ns and missed ticks of one loop.
fn run_loop(
    proc_root: &Path,
    kind: &'static str,
    paths: &[(PathBuf, Option<PathBuf>)],
    interval: Duration,
    duration: Duration,
) -> Result<(u64, u64, u64, u64)> {
    let ticks_wanted = (duration.as_nanos() / interval.as_nanos().max(1)) as u64;
    let interval_ns = interval.as_nanos() as u64;
    if kind == "reads" || kind == "timed-reads" {
        // The floor: every file read back to back, as many times as ticks (`reads`), or
        // once a tick on the sampler's schedule (`timed-reads`: the reads of a tick
        // after a sleep, with caches as a real tick finds them).
        let mut files = Vec::new();
        for (stat, usage) in paths {
            files.push(RereadFile::open(stat, 4096).with_context(|| stat.display().to_string())?);
            if let Some(u) = usage {
                files.push(RereadFile::open(u, 64).with_context(|| u.display().to_string())?);
            }
        }
        let mut system = RereadFile::open(&proc_root.join("stat"), 1 << 20)?;
        let t0 = monotonic_ns();
        let cpu0 = thread_cpu_ns();
        let mut next = t0;
        for _ in 0..ticks_wanted {
            if kind == "timed-reads" {
                next += interval_ns;
                sleep_until(next);
            }
            system.read()?;
            for f in files.iter_mut() {
                std::hint::black_box(f.read()?);
            }
        }
        return Ok((ticks_wanted, monotonic_ns() - t0, thread_cpu_ns() - cpu0, 0));
    }
    let sources: Vec<GroupSources> = paths
        .iter()
        .map(|(s, u)| GroupSources {
            cpu_stat: Some(s),
            usage: u.as_deref(),
        })
        .collect();
    let mut sampler = Sampler::open(&sources, proc_root, interval)?;
    let names: Vec<String> = (0..paths.len()).map(|i| format!("g{i}")).collect();
    let counters: Vec<_> = (0..paths.len()).map(|g| sampler.counters(g)).collect();
    let system = sampler.system_has();
    // The rows go where a run's would: a file, through a buffer.
    let out = tempfile_path();
    let mut rows = crate::report::files::appender::Appender::create(&out)?;
    let _ = std::fs::remove_file(&out);
    let mut prev = vec![Sample::default(); paths.len()];
    // A child to check on each tick, as the run loop checks on the workload.
    let mut child = Command::new("sleep")
        .arg("3600")
        .stdin(Stdio::null())
        .spawn()
        .context("starting `sleep` as a stand-in workload")?;
    let t0 = monotonic_ns();
    let cpu0 = thread_cpu_ns();
    let mut next = t0;
    let mut missed = 0;
    let mut seen = u32::MAX;
    let mut ticks = 0;
    while ticks < ticks_wanted {
        next += interval_ns;
        let now = monotonic_ns();
        if next <= now {
            let skip_to = now + interval_ns - (now - t0) % interval_ns;
            missed += (skip_to - next) / interval_ns;
            next = skip_to;
        }
        sleep_until(next);
        ticks += 1;
        if kind == "sampler" {
            let now = monotonic_ns();
            let samples = sampler.tick(now - t0)?;
            for (g, s) in samples.iter().enumerate() {
                let d = Delta::between(&prev[g], s, 100);
                rows.row(|b| {
                    timeseries::write_row(
                        b,
                        0,
                        &names[g],
                        s.t_ns as f64 / 1e9,
                        &d,
                        counters[g],
                        system,
                        None,
                    )
                })?;
                prev[g] = *s;
            }
            // As the run loop: waitpid only after a SIGCHLD.
            let events = crate::signals::child_events();
            if events != seen {
                seen = events;
                let _ = child.try_wait()?;
            }
        }
    }
    let cpu = thread_cpu_ns() - cpu0;
    let wall = monotonic_ns() - t0;
    let _ = child.kill();
    let _ = child.wait();
    Ok((ticks, wall, cpu, missed))
}

fn tempfile_path() -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "throttlebench-bench-{}-{n}.csv",
        std::process::id()
    ))
}

/// The median and range of one column over repeats.
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let med = fibtest::stats::median(values).unwrap_or(0.0);
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (med, lo, hi)
}
