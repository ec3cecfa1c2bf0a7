//! `throttlebench bench`: what the tool itself costs, as tables, so that a claim about
//! its speed or overhead is a measurement anyone can repeat: the sampler (`sampler`),
//! memory and time at scale (`scale`), the FIPS tests against rngtest (`fips`), the
//! open-loop load generator against wrk (`load`); and how close the limiters come to
//! their targets over repeated runs (`accuracy`).

mod accuracy;
mod fips;
mod load;
mod sampler;
mod scale;

use crate::cgroup::Hierarchy;
use crate::scenario::Span;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub root: crate::cli::CgroupRoot,
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// CPU cost of the sampler per tick and per group, against its floors: the bare
    /// wake-ups and the bare reads of the same files.
    Sampler {
        /// Sample intervals to measure.
        #[arg(long, value_delimiter = ',', default_value = "1ms,10ms,100ms")]
        intervals: Vec<Span>,
        /// Numbers of groups (idle cgroups) to sample at once.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        groups: Vec<usize>,
        /// How long to sample each configuration.
        #[arg(long, default_value = "5s")]
        duration: Span,
        /// Times each configuration is measured (the table gives the median and range).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Also write every measurement as CSV here.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Memory and time at scale: peak RSS of runs of growing length (1 ms sampling), of
    /// a million Fibtest units, missed ticks with many groups, and `plot` of the results.
    Scale(scale::ScaleArgs),
    /// Speed of the FIPS 140-2 tests against rngtest (rng-tools5), on the same input.
    Fips {
        /// MiB of pseudo-random input (a temporary file, unlinked at once).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
        mib: u64,
        /// Timed runs of each tool; the fastest counts.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Also write the table as CSV here.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// The open-loop load generator against wrk: maximum rate and CPU per request on one
    /// CPU, latencies at low load, or both tools on a server of yours (--target).
    Load(load::LoadBenchArgs),
    /// How close limiters come to their targets, over repeated runs of the shipped
    /// scenarios behind README's figures: freezer, signal, cfs and cpulimit at 10/40/80%,
    /// weights 150/100/100/50, Fibtest at a quota equal to its demand.
    Accuracy(accuracy::AccuracyArgs),
}

pub fn run(cgroup_root: &Path, proc_root: &Path, args: &BenchArgs) -> Result<()> {
    match &args.what {
        BenchWhat::Sampler {
            intervals,
            groups,
            duration,
            repeat,
            csv,
        } => {
            let h = Hierarchy::detect(cgroup_root)?;
            crate::signals::install();
            let mut all = Vec::new();
            println!(
                "{:>8} {:>7} {:>9} {:>7} {:>24} {:>27} {:>22} {:>7}",
                "loop",
                "groups",
                "interval",
                "ticks",
                "cpu/tick_us (min-max)",
                "cpu/group-tick_us (min-max)",
                "cpu_% (min-max)",
                "missed"
            );
            for &n in groups {
                for iv in intervals {
                    for kind in ["timer", "reads", "timed-reads", "sampler"] {
                        let mut got = Vec::new();
                        for _ in 0..*repeat {
                            let r = sampler::measure(
                                &h, proc_root, kind, n, iv.0, duration.0, *repeat,
                            )?;
                            got.push(r);
                        }
                        let col = |f: fn(&sampler::SamplerCost) -> f64| {
                            sampler::spread(&got.iter().map(f).collect::<Vec<_>>())
                        };
                        let (t, tl, th) = col(|r| r.cpu_per_tick_us);
                        let (g, gl, gh) = col(|r| r.cpu_per_group_tick_us);
                        let (p, pl, ph) = col(|r| r.cpu_pct);
                        let missed: u64 = got.iter().map(|r| r.missed_ticks).sum();
                        println!(
                            "{:>8} {:>7} {:>9} {:>7} {:>24} {:>27} {:>22} {:>7}",
                            kind,
                            n,
                            iv.to_string(),
                            got[0].ticks,
                            format!("{t:.2} ({tl:.2}-{th:.2})"),
                            format!("{g:.2} ({gl:.2}-{gh:.2})"),
                            format!("{p:.3} ({pl:.3}-{ph:.3})"),
                            missed
                        );
                        all.extend(got);
                    }
                }
            }
            println!(
                "timer: the sleep alone (wake-ups); reads: the same files read back to back (the floor); timed-reads: those reads once a tick after the sleep; sampler: a real tick (reads, parse, a row per group written). {} runs each, median (min-max).",
                repeat
            );
            if let Some(path) = csv {
                write_csv(path, &all)?;
            }
            std::io::stdout().flush()?;
            Ok(())
        }
        BenchWhat::Scale(a) => scale::run(cgroup_root, a),
        BenchWhat::Fips { mib, repeat, csv } => fips::fips_bench(*mib, *repeat, csv.as_deref()),
        BenchWhat::Load(a) => load::run(a),
        BenchWhat::Accuracy(a) => accuracy::run(cgroup_root, a),
    }
}

/// Every row of a bench's table as CSV at `path` (`--csv`).
fn write_csv<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    for r in rows {
        w.serialize(r)?;
    }
    w.flush()?;
    Ok(())
}
