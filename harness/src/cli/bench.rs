//! `throttlebench bench sampler`: what the sampler costs, measured the way it runs in a
//! real run (one tick = reading every source, then checking on the workload, then an
//! absolute-deadline sleep), on a real cgroup. Prints a table and writes it as CSV.
//!
//! `throttlebench bench fips`: the speed of the FIPS 140-2 tests (`probe::fips`) against
//! `rngtest` (rng-tools5) on the same pseudo-random file, with a check that both count
//! the same.

use crate::cgroup::{Hierarchy, Version};
use crate::clock::{monotonic_ns, sleep_until, thread_cpu_ns};
use crate::sample::{GroupSources, Sampler};
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
        BenchWhat::Fips { mib, repeat, csv } => fips_bench(*mib, *repeat, csv.as_deref()),
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
    let stat = cg.cpu_stat_path();
    let mut sampler = Sampler::open(
        &[GroupSources {
            cpu_stat: Some(&stat),
            usage: (cg.version == Version::V1).then_some(usage.as_path()),
        }],
        proc_root,
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

/// One row of the FIPS table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FipsSpeed {
    /// "throttlebench" (`probe::fips::test_bytes` on the input in memory) or "rngtest"
    /// (the whole process, reading the file on its stdin).
    pub tool: &'static str,
    pub input_bytes: u64,
    /// Timed runs; the fastest is reported.
    pub runs: u32,
    /// Wall time of the fastest run, in s.
    pub best_s: f64,
    /// Input bits / 2^20 / best_s.
    pub mibit_per_s: f64,
    pub blocks: u64,
    pub failures: u64,
    pub bits_received: u64,
}

/// A file removed when dropped.
/// `bench fips`: time our FIPS tests and rngtest on `mib` MiB of pseudo-random bytes.
fn fips_bench(mib: u64, repeat: u32, csv: Option<&Path>) -> Result<()> {
    use crate::probe::fips;
    use std::time::Instant;

    let n = usize::try_from(mib.checked_mul(1 << 20).context("--mib is too large")?)?;
    let data = fips::xorshift_bytes(0x5EED, n);
    // rngtest reads the bytes from a file, as `rngtest < FILE` would. The file is unlinked
    // as soon as it is made, so nothing stays in the temp folder however this ends.
    let path = std::env::temp_dir().join(format!("throttlebench-fips-{}.bin", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("making {}", path.display()))?;
    std::fs::remove_file(&path).with_context(|| format!("unlinking {}", path.display()))?;
    {
        use std::io::Write;
        file.write_all(&data)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mibits = n as f64 * 8.0 / (1u64 << 20) as f64;
    let row = |tool, best: f64, c: fips::FipsCounts| FipsSpeed {
        tool,
        input_bytes: n as u64,
        runs: repeat,
        best_s: best,
        mibit_per_s: mibits / best,
        blocks: c.blocks,
        failures: c.failures,
        bits_received: c.bits_received,
    };

    let mut best = f64::INFINITY;
    let mut ours = fips::FipsCounts::default();
    for _ in 0..repeat {
        let t = Instant::now();
        ours = fips::test_bytes(std::hint::black_box(&data));
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mut rows = vec![row("throttlebench", best, ours)];

    let mut theirs = None;
    let mut version = String::new();
    let mut own_speed = String::new();
    let mut best = f64::INFINITY;
    for _ in 0..repeat {
        // The child's stdin shares this file's offset: rewind it for each run.
        {
            use std::io::Seek;
            file.rewind()?;
        }
        let stdin = file.try_clone()?;
        let t = Instant::now();
        let out = match Command::new("rngtest")
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(e).context("running rngtest"),
        };
        best = best.min(t.elapsed().as_secs_f64());
        let report = String::from_utf8_lossy(&out.stderr);
        version = report.lines().next().unwrap_or("").to_string();
        // Its own figure: the time in fips_run_rng_test per block, without its reads.
        if let Some(l) = report.lines().find(|l| l.contains("FIPS tests speed")) {
            own_speed = l.trim_start_matches("rngtest: ").to_string();
        }
        // rngtest exits 1 when a block failed: not an error here.
        let c = fips::parse_rngtest(&report)
            .with_context(|| format!("rngtest ({}) printed no counts:\n{report}", out.status))?;
        theirs = Some(c);
    }
    if let Some(c) = theirs {
        rows.push(row("rngtest", best, c));
    }

    println!(
        "{:<14} {:>9} {:>10} {:>9} {:>8} {:>9}",
        "tool", "input_MiB", "Mibit/s", "best_s", "blocks", "failures"
    );
    for r in &rows {
        println!(
            "{:<14} {:>9} {:>10.1} {:>9.4} {:>8} {:>9}",
            r.tool, mib, r.mibit_per_s, r.best_s, r.blocks, r.failures
        );
    }
    if let Some(path) = csv {
        let mut w =
            csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
        for r in &rows {
            w.serialize(r)?;
        }
        w.flush()?;
    }
    match theirs {
        None => {
            println!("rngtest not found (apt-get install rng-tools5): only throttlebench's figure")
        }
        Some(c) => {
            // The Debian package's version, when there is one.
            let package = Command::new("dpkg-query")
                .args(["-W", "-f", "${Version}", "rng-tools5"])
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| format!(" (rng-tools5 {})", String::from_utf8_lossy(&o.stdout)))
                .unwrap_or_default();
            println!(
                "speed ratio: {:.1}x (throttlebench / {version}{package}), best of {repeat} runs each",
                rows[0].mibit_per_s / rows[1].mibit_per_s,
            );
            println!("throttlebench: test_bytes on the input in memory; rngtest: the whole process, reading the file");
            if !own_speed.is_empty() {
                println!("rngtest's own figure (per block, without its reads): {own_speed}");
            }
            if c != ours {
                anyhow::bail!("the counts differ:\nthrottlebench:\n{ours}\nrngtest:\n{c}");
            }
            println!("counts equal on every line of rngtest's report:\n{ours}");
        }
    }
    std::io::stdout().flush()?;
    Ok(())
}
