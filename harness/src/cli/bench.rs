//! `throttlebench bench sampler`: what the sampler costs, measured the way it runs in a
//! real run (one tick = reading every source, then checking on the workload, then an
//! absolute-deadline sleep), on a real cgroup. Prints a table and writes it as CSV.

use crate::cgroup::{Hierarchy, Version};
use crate::sample::sampler::thread_cpu_ns;
use crate::sample::{monotonic_ns, sleep_until, Sampler, SamplerSources};
use crate::scenario::Span;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// CPU cost of the sampler at given intervals.
    Sampler {
        /// Sample intervals to measure.
        #[arg(long, value_delimiter = ',', default_value = "1ms,10ms,100ms")]
        intervals: Vec<Span>,
        /// How long to sample at each interval.
        #[arg(long, default_value = "5s")]
        duration: Span,
        /// Also write the table as CSV here.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
}

/// One row of the sampler table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SamplerCost {
    /// "timer": the loop's absolute-deadline sleep alone (the floor any sampler at this
    /// interval pays for its wake-ups); "sampler": the real tick on top of it.
    pub loop_kind: &'static str,
    pub interval_s: f64,
    pub ticks: u64,
    /// Wall time sampled, in s.
    pub wall_s: f64,
    /// CPU time of the sampling thread, in s.
    pub cpu_s: f64,
    /// cpu_s / ticks, in µs.
    pub cpu_per_tick_us: f64,
    /// 100 * cpu_s / wall_s: share of one CPU, in %.
    pub cpu_pct: f64,
    /// Ticks that woke more than one interval late.
    pub late_ticks: u64,
}

pub fn run(cgroup_root: &Path, proc_root: &Path, args: &BenchArgs) -> Result<()> {
    match &args.what {
        BenchWhat::Sampler {
            intervals,
            duration,
            csv,
        } => {
            let h = Hierarchy::detect(cgroup_root)?;
            crate::signals::install();
            let mut rows = Vec::new();
            println!(
                "{:>8} {:>10} {:>7} {:>8} {:>9} {:>13} {:>8} {:>6}",
                "loop", "interval", "ticks", "wall_s", "cpu_s", "cpu/tick_us", "cpu_%", "late"
            );
            for (iv, with_sampler) in intervals.iter().flat_map(|iv| [(iv, false), (iv, true)]) {
                let r = sampler_cost(&h, proc_root, iv.0, duration.0, with_sampler)?;
                println!(
                    "{:>8} {:>10} {:>7} {:>8.3} {:>9.4} {:>13.2} {:>8.3} {:>6}",
                    r.loop_kind,
                    iv.to_string(),
                    r.ticks,
                    r.wall_s,
                    r.cpu_s,
                    r.cpu_per_tick_us,
                    r.cpu_pct,
                    r.late_ticks
                );
                rows.push(r);
            }
            if let Some(path) = csv {
                let mut w = csv::Writer::from_path(path)
                    .with_context(|| format!("writing {}", path.display()))?;
                for r in &rows {
                    w.serialize(r)?;
                }
                w.flush()?;
            }
            std::io::stdout().flush()?;
            Ok(())
        }
    }
}

/// Sample an idle cgroup every `interval` for `duration` (or, without `with_sampler`,
/// only wake up on the same schedule) and measure this thread's CPU time.
pub fn sampler_cost(
    h: &Hierarchy,
    proc_root: &Path,
    interval: Duration,
    duration: Duration,
    with_sampler: bool,
) -> Result<SamplerCost> {
    let cg = h.create_run(&[])?;
    let usage = cg.usage_path();
    let ticks_wanted = (duration.as_nanos() / interval.as_nanos().max(1)) as u64;
    let mut sampler = Sampler::open(
        &SamplerSources {
            cpu_stat: &cg.cpu_stat_path(),
            usage: (cg.version == Version::V1).then_some(usage.as_path()),
            proc_root,
        },
        ticks_wanted as usize,
        interval,
    )?;
    // A child to check on each tick, as the run loop checks on the workload.
    let mut child = Command::new("sleep")
        .arg("3600")
        .stdin(Stdio::null())
        .spawn()
        .context("starting `sleep` as a stand-in workload")?;
    let interval_ns = interval.as_nanos() as u64;
    let t0 = monotonic_ns();
    let cpu0 = thread_cpu_ns();
    let mut next = t0;
    let mut late = 0;
    let mut seen = u32::MAX;
    for _ in 0..ticks_wanted {
        next += interval_ns;
        sleep_until(next);
        let now = monotonic_ns();
        if now > next + interval_ns {
            late += 1;
        }
        if with_sampler {
            sampler.tick(now - t0)?;
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
    cg.destroy(Duration::from_secs(2))?;
    h.remove_parents_if_empty();
    Ok(SamplerCost {
        loop_kind: if with_sampler { "sampler" } else { "timer" },
        interval_s: interval.as_secs_f64(),
        ticks: ticks_wanted,
        wall_s: wall as f64 / 1e9,
        cpu_s: cpu as f64 / 1e9,
        cpu_per_tick_us: cpu as f64 / 1e3 / ticks_wanted.max(1) as f64,
        cpu_pct: 100.0 * cpu as f64 / wall as f64,
        late_ticks: late,
    })
}
