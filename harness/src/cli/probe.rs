//! `throttlebench probe steal|entropy`: the probes alone. A scenario runs them as its
//! workload (`workload.kind = "steal"` / `"entropy"`) by starting this same command with
//! `--json` inside the run's cgroup.

use crate::cli::exit::{exit_with, EXIT_INTERRUPTED, EXIT_USAGE};
use crate::probe::entropy::{self, EntropyConfig, Source};
use crate::probe::fips;
use crate::probe::steal::{self, StealConfig, DEFAULT_THRESHOLD_NS};
use crate::probe::ProbeOutput;
use crate::scenario::Span;
use crate::signals;
use crate::units::utc_now;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use fibtest::cpulist::CpuList;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub root: super::CgroupRoot,
    #[command(subcommand)]
    pub what: ProbeWhat,
}

#[derive(Debug, Subcommand)]
pub enum ProbeWhat {
    /// CPU steal: /proc/stat's steal next to the stalls pinned spinning threads observe.
    Steal(StealArgs),
    /// The kernel's RNG: readiness, supply per source and reader count, FIPS 140-2 tests.
    Entropy(EntropyArgs),
}

#[derive(Debug, Args)]
pub struct StealArgs {
    /// How long to spin.
    #[arg(long, default_value = "10s")]
    pub duration: Span,
    /// Result folder (default: results/probe-steal/<UTC time>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// CPUs to spin on, one thread each (default: every CPU this process may use).
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<CpuList>,
    /// Shortest gap between two clock reads that counts as a stall (osnoise: 5us).
    #[arg(long, default_value = "5us")]
    pub threshold: Span,
    /// Interval of the time series and of the /proc/stat and cpu.stat reads.
    #[arg(long, default_value = "100ms")]
    pub interval: Span,
    /// cpu.stat of the cgroup the probe runs in, to tell throttling stalls apart
    /// (default: the cpu cgroup of this process, when it is not the root).
    #[arg(long, value_name = "FILE")]
    pub cgroup_stat: Option<PathBuf>,
    /// First measure steal this long with the CPUs idle (does steal count idle time?).
    #[arg(long, default_value = "0s")]
    pub idle: Span,
    /// Print the report as one JSON line on stdout (how a scenario run records it).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EntropyArgs {
    /// Total time of the supply measurements, shared evenly between them.
    #[arg(long, default_value = "10s")]
    pub duration: Span,
    /// Result folder (default: results/probe-entropy/<UTC time>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Sources to measure.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "getrandom,urandom,random,hwrng"
    )]
    pub sources: Vec<Source>,
    /// Bytes per read.
    #[arg(long, value_delimiter = ',', default_value = "32,4096,65536")]
    pub sizes: Vec<usize>,
    /// Concurrent reader counts.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    pub readers: Vec<usize>,
    /// Bytes of each source to run the FIPS 140-2 tests on (0: none); a slow source is
    /// read for at most --fips-time.
    #[arg(long, default_value_t = 2_500_004)]
    pub fips_bytes: usize,
    #[arg(long, default_value = "2s")]
    pub fips_time: Span,
    /// Only run the FIPS 140-2 tests on this file's bytes (as `rngtest < FILE`) and print
    /// the counts in rngtest's terms; exit 1 when a block failed, as rngtest does.
    #[arg(long, value_name = "FILE")]
    pub fips_file: Option<PathBuf>,
    /// Print the report as one JSON line on stdout (how a scenario run records it).
    #[arg(long)]
    pub json: bool,
}

/// The cpu.stat of this process's cpu cgroup (v1 `cpu` hierarchy or v2 unified), unless
/// it is the root (whose cpu.stat has no throttling).
pub fn own_cpu_stat(cgroup_root: &Path, proc_root: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(proc_root.join("self/cgroup")).ok()?;
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let rel = path.trim_start_matches('/');
        if rel.is_empty() {
            continue;
        }
        let dir = if controllers.is_empty() {
            cgroup_root.join(rel)
        } else if controllers.split(',').any(|c| c == "cpu") {
            cgroup_root.join(controllers).join(rel)
        } else {
            continue;
        };
        let stat = dir.join("cpu.stat");
        if stat.exists() {
            return Some(stat);
        }
    }
    None
}

/// The result folder: `--out` (made if missing), or a new one under
/// `results/probe-<what>/` named by the time (`-2`, `-3`, ... when two probes start in
/// one second: made with mkdir, never shared).
fn out_dir(out: &Option<PathBuf>, what: &str) -> Result<PathBuf> {
    match out {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| d.display().to_string())?;
            Ok(d.clone())
        }
        None => {
            let base = PathBuf::from("results")
                .join(format!("probe-{what}"))
                .join(utc_now().0);
            Ok(crate::report::ResultFolder::fresh(&base)?.path)
        }
    }
}

pub fn run(cgroup_root: &Path, proc_root: &Path, args: &ProbeArgs) -> Result<i32> {
    signals::install();
    match &args.what {
        ProbeWhat::Steal(a) => steal_cmd(cgroup_root, proc_root, a),
        ProbeWhat::Entropy(a) => entropy_cmd(proc_root, a),
    }
}

fn steal_cmd(cgroup_root: &Path, proc_root: &Path, a: &StealArgs) -> Result<i32> {
    let allowed = super::allowed_cpus()?;
    let cpus = match &a.cpus {
        None => allowed,
        Some(c) => {
            let outside = c.difference(&allowed);
            if !outside.is_empty() {
                return Err(exit_with(
                    EXIT_USAGE,
                    anyhow::anyhow!("--cpus: CPU(s) {outside} are not among this process's allowed CPUs {allowed}"),
                ));
            }
            c.clone()
        }
    };
    if a.duration.0.is_zero() {
        return Err(exit_with(
            EXIT_USAGE,
            anyhow::anyhow!("--duration must be more than 0"),
        ));
    }
    let threshold_ns = a.threshold.0.as_nanos() as u64;
    let cfg = StealConfig {
        cpus,
        duration: a.duration.0,
        threshold_ns: if threshold_ns == 0 {
            DEFAULT_THRESHOLD_NS
        } else {
            threshold_ns
        },
        interval: a.interval.0,
        proc_root: proc_root.to_path_buf(),
        cgroup_stat: a
            .cgroup_stat
            .clone()
            .or_else(|| own_cpu_stat(cgroup_root, proc_root)),
        idle: a.idle.0,
    };
    let report = steal::run(&cfg, &|| signals::received().is_some())?;
    finish(
        a.json,
        &a.out,
        "steal",
        &report.summary,
        report.summary.complete,
        report.human(),
        |dir| report.write_csv(dir, "timeseries.csv"),
        ProbeOutput::StealProbe(report.clone()),
    )
}

/// Print the report as a JSON line (`json`) and/or write its files, summary.json and a
/// table for people (`out`, or alone); the exit code: 128 + the signal (130 for Ctrl-C) when
/// the probe stopped early.
#[allow(clippy::too_many_arguments)]
fn finish<S: serde::Serialize>(
    json: bool,
    out: &Option<PathBuf>,
    what: &str,
    summary: &S,
    complete: bool,
    human: String,
    write: impl FnOnce(&Path) -> Result<()>,
    output: ProbeOutput,
) -> Result<i32> {
    if json {
        println!("{}", serde_json::to_string(&output)?);
    }
    if !json || out.is_some() {
        let dir = out_dir(out, what)?;
        write(&dir)?;
        let p = dir.join("summary.json");
        std::fs::write(&p, serde_json::to_string_pretty(summary)? + "\n")
            .with_context(|| p.display().to_string())?;
        eprint!("{human}");
        eprintln!("results in {}", dir.display());
    }
    // Stopped early by a signal: 128 + its number, as `run` does.
    Ok(if complete {
        0
    } else {
        signals::received()
            .filter(|s| (1..32).contains(s))
            .map_or(EXIT_INTERRUPTED, |s| 128 + s)
    })
}

fn entropy_cmd(proc_root: &Path, a: &EntropyArgs) -> Result<i32> {
    if let Some(file) = &a.fips_file {
        let mut f = std::fs::File::open(file).with_context(|| file.display().to_string())?;
        let counts = fips::test_reader(&mut f).with_context(|| file.display().to_string())?;
        println!("{counts}");
        if let Some(dir) = &a.out {
            std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
            let name = file.display().to_string();
            crate::probe::write_rows(
                &dir.join("fips.csv"),
                &[entropy::FipsRow::new(
                    &name,
                    counts.bits_received / 8,
                    &counts,
                )],
            )?;
        }
        return Ok(if counts.failures > 0 { 1 } else { 0 });
    }
    for (flag, empty) in [
        ("--sources", a.sources.is_empty()),
        ("--sizes", a.sizes.is_empty() || a.sizes.contains(&0)),
        ("--readers", a.readers.is_empty() || a.readers.contains(&0)),
    ] {
        if empty {
            return Err(exit_with(
                EXIT_USAGE,
                anyhow::anyhow!("{flag} needs at least one value, none of them 0"),
            ));
        }
    }
    let combos = (a.sources.len() * a.sizes.len() * a.readers.len()) as u32;
    let cfg = EntropyConfig {
        sources: a.sources.clone(),
        sizes: a.sizes.clone(),
        readers: a.readers.clone(),
        each: a.duration.0 / combos.max(1),
        fips_bytes: a.fips_bytes,
        fips_time: a.fips_time.0,
        proc_root: proc_root.to_path_buf(),
        sys_root: PathBuf::from("/sys"),
        dev_root: PathBuf::from("/dev"),
    };
    let quiet = a.json;
    let report = entropy::run(&cfg, &mut |what| {
        if !quiet {
            eprintln!("measuring {what}");
        }
    })?;
    finish(
        a.json,
        &a.out,
        "entropy",
        &report.summary,
        report.summary.complete,
        report.human(),
        |dir| report.write(dir),
        ProbeOutput::EntropyProbe(report.clone()),
    )
}
