//! `throttlebench bench scale`: memory and time at scale, measured on real runs of this
//! binary (children, so each has its own peak resident set size): a duty workload
//! sampled every 1 ms for a short and a long time (memory must not grow with the run),
//! a Fibtest run with a thousand slow threads (about a million latency rows), many
//! groups at once (missed ticks), `watch` of a throttled cgroup for a short and a long
//! time, and `plot` of each result folder.
//!
//! Each child reports its own peak RSS (VmHWM) into the file named by
//! `THROTTLEBENCH_PEAK_RSS_FILE` when it exits: the harness's own figure, not its
//! workloads'.

use crate::cgroup::{CfsLimit, Cgroup, Hierarchy};
use crate::report::read::Table;
use crate::scenario::Span;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Lengths of the runs sampled every 1 ms.
    #[arg(long, value_delimiter = ',', default_value = "1m,10m")]
    lengths: Vec<Span>,
    /// Numbers of groups run at once, each with the interval of `--group-intervals` at
    /// the same position.
    #[arg(long, value_delimiter = ',', default_value = "64,500")]
    groups: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "10ms,100ms")]
    group_intervals: Vec<Span>,
    /// How long the many-group runs last.
    #[arg(long, default_value = "20s")]
    group_duration: Span,
    /// Slow threads of the Fibtest run (each does about 100 units a second).
    #[arg(long, default_value_t = 1000)]
    slow_threads: u32,
    /// Lengths of the watches of one throttled cgroup (a duty workload this bench starts
    /// in a cgroup of its own under a 20 ms / 100 ms quota).
    #[arg(long, value_delimiter = ',', default_value = "1m,10m")]
    watch_lengths: Vec<Span>,
    /// The watches' sample interval.
    #[arg(long, default_value = "10ms")]
    watch_interval: Span,
    /// Only the watch rows.
    #[arg(long)]
    watch_only: bool,
    /// Keep the result folders here (default: a temporary folder, removed at the end).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Also write the table as CSV here.
    #[arg(long)]
    csv: Option<PathBuf>,
}

/// One row of the table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScaleRow {
    pub work: String,
    /// Wall time of the run, in s.
    pub run_s: f64,
    /// Peak resident set size of the harness (not its workloads), in MB.
    pub run_rss_mb: f64,
    pub run_json_kb: f64,
    pub timeseries_mb: f64,
    pub latency_rows: u64,
    pub missed_ticks: u64,
    /// `throttlebench plot` of the folder: wall time in s, peak RSS in MB.
    pub plot_s: f64,
    pub plot_rss_mb: f64,
}

/// Run this binary with `args`, returning its wall time (s) and peak RSS (MB).
/// `cgroup_root` is passed to commands that use cgroups (`run`, `watch`), not to `plot`.
fn child(args: &[&str], cgroup_root: Option<&Path>) -> Result<(f64, f64)> {
    let rss_file = std::env::temp_dir().join(format!(
        "throttlebench-rss-{}-{}",
        std::process::id(),
        args.len()
    ));
    let _ = std::fs::remove_file(&rss_file);
    let t = Instant::now();
    let mut cmd = Command::new(std::env::current_exe()?);
    if let Some(root) = cgroup_root {
        cmd.arg("--cgroup-root").arg(root);
    }
    let out = cmd
        .args(args)
        .env("THROTTLEBENCH_PEAK_RSS_FILE", &rss_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    let wall = t.elapsed().as_secs_f64();
    let rss = std::fs::read_to_string(&rss_file).unwrap_or_default();
    let _ = std::fs::remove_file(&rss_file);
    if !out.status.success() {
        bail!(
            "throttlebench {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let kb: f64 = rss
        .trim()
        .parse()
        .context("the child reported no peak RSS")?;
    Ok((wall, kb / 1024.0))
}

/// `throttlebench run FILE --out OUT --no-plot` as a child: its wall time and peak RSS.
pub(super) fn run_child(file: &Path, out: &Path, cgroup_root: &Path) -> Result<(f64, f64)> {
    child(
        &[
            "run",
            file.to_str().unwrap_or_default(),
            "--out",
            out.to_str().unwrap_or_default(),
            "--no-plot",
        ],
        Some(cgroup_root),
    )
}

/// Write a scenario, run it and plot its folder.
fn measure(work: &str, scenario: &str, dir: &Path, cgroup_root: &Path) -> Result<ScaleRow> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join("scenario.toml");
    std::fs::write(&file, scenario)?;
    let out = dir.join("out");
    let (run_s, run_rss_mb) = run_child(&file, &out, cgroup_root)?;
    let (plot_s, plot_rss_mb) = child(&["plot", out.to_str().unwrap_or_default()], None)?;
    let size = |f: &str| std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0) as f64;
    let summary = Table::read(&out.join("summary.csv"))?;
    let missed = (0..summary.len())
        .filter_map(|r| summary.num(r, "missed_ticks"))
        .fold(0.0, f64::max) as u64;
    let latency_rows = {
        let mut r = csv::Reader::from_path(out.join("latency.csv"))?;
        let mut rec = csv::ByteRecord::new();
        let mut n = 0;
        while r.read_byte_record(&mut rec)? {
            n += 1;
        }
        n
    };
    Ok(ScaleRow {
        work: work.to_string(),
        run_s,
        run_rss_mb,
        run_json_kb: size("run.json") / 1024.0,
        timeseries_mb: size("timeseries.csv") / 1e6,
        latency_rows,
        missed_ticks: missed,
        plot_s,
        plot_rss_mb,
    })
}

/// The workload a watch row watches, killed and reaped when dropped (its cgroup after it).
struct Watched {
    child: std::process::Child,
    cgroup: Option<Cgroup>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy(std::time::Duration::from_secs(5));
        }
    }
}

/// Start a duty workload (100 ms on, 100 ms off) in a new cgroup under a 20 ms / 100 ms
/// quota, watch it for `len` at `interval`, and plot the folder.
fn measure_watch(
    len: Span,
    interval: Span,
    dir: &Path,
    cgroup_root: &Path,
    h: &Hierarchy,
) -> Result<ScaleRow> {
    std::fs::create_dir_all(dir)?;
    let cg = h.create_run(&[])?;
    cg.set_cfs(&CfsLimit {
        quota_us: Some(20_000),
        period_us: 100_000,
        burst_us: 0,
    })?;
    let workload = Command::new(std::env::current_exe()?)
        .args([
            "fibtest",
            "duty",
            "--on",
            "100ms",
            "--off",
            "100ms",
            "--duration",
        ])
        .arg(format!("{}s", len.as_secs_f64().ceil() as u64 + 60))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let w = Watched {
        child: workload,
        cgroup: Some(cg),
    };
    let cg = w.cgroup.as_ref().expect("set");
    for f in cg.procs_files() {
        std::fs::write(&f, w.child.id().to_string())
            .with_context(|| format!("writing {}", f.display()))?;
    }
    let out = dir.join("out");
    let target = cg.cpu_dir().to_string_lossy().to_string();
    let (len_s, iv_s) = (len.to_string(), interval.to_string());
    let (run_s, run_rss_mb) = child(
        &[
            "watch",
            &target,
            "--duration",
            &len_s,
            "--interval",
            &iv_s,
            "--out",
            out.to_str().unwrap_or_default(),
            "--no-plot",
        ],
        Some(cgroup_root),
    )?;
    drop(w);
    let (plot_s, plot_rss_mb) = child(&["plot", out.to_str().unwrap_or_default()], None)?;
    let size = |f: &str| std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0) as f64;
    let summary = Table::read(&out.join("summary.csv"))?;
    let missed = (0..summary.len())
        .filter_map(|r| summary.num(r, "missed_ticks"))
        .fold(0.0, f64::max) as u64;
    Ok(ScaleRow {
        work: format!("watch, 1 group, {interval} sampling, {len}"),
        run_s,
        run_rss_mb,
        run_json_kb: size("run.json") / 1024.0,
        timeseries_mb: size("timeseries.csv") / 1e6,
        latency_rows: 0,
        missed_ticks: missed,
        plot_s,
        plot_rss_mb,
    })
}

pub fn run(cgroup_root: &Path, a: &ScaleArgs) -> Result<()> {
    let base = match &a.keep {
        Some(k) => k.clone(),
        None => std::env::temp_dir().join(format!("throttlebench-scale-{}", std::process::id())),
    };
    let mut jobs: Vec<(String, String)> = Vec::new();
    for len in a.lengths.iter().filter(|_| !a.watch_only) {
        jobs.push((
            format!("duty, 1 group, 1 ms sampling, {len}"),
            format!(
                "name = \"scale-duty\"\nsample_interval = \"1ms\"\n[workload]\nkind = \"duty\"\non = \"1s\"\noff = \"0s\"\nduration = \"{len}\"\n"
            ),
        ));
    }
    let mut more: Vec<(String, String)> = Vec::new();
    more.push((
        format!("fibtest, {} slow threads, 10 s", a.slow_threads),
        format!(
            "name = \"scale-fibtest\"\n[workload]\nkind = \"fibtest\"\nfast = 0\nslow = {}\nduration = \"10s\"\n",
            a.slow_threads
        ),
    ));
    for (n, iv) in a.groups.iter().zip(&a.group_intervals) {
        let mut s = format!("name = \"scale-groups\"\nsample_interval = \"{iv}\"\n");
        for g in 0..*n {
            s.push_str(&format!(
                "[[group]]\nname = \"g{g}\"\nworkload = {{ kind = \"duty\", on = \"10ms\", off = \"90ms\", duration = \"{}\" }}\n",
                a.group_duration
            ));
        }
        more.push((format!("{n} groups at {iv}, {}", a.group_duration), s));
    }
    if !a.watch_only {
        jobs.extend(more);
    }
    println!(
        "{:<40} {:>8} {:>11} {:>10} {:>10} {:>9} {:>7} {:>8} {:>11}",
        "work",
        "run_s",
        "run_rss_MB",
        "run.json",
        "timeseries",
        "lat_rows",
        "missed",
        "plot_s",
        "plot_rss_MB"
    );
    let mut rows = Vec::new();
    let mut watch_rows = Vec::new();
    let print_row = |r: &ScaleRow| {
        println!(
            "{:<40} {:>8.1} {:>11.1} {:>7.1} kB {:>7.1} MB {:>9} {:>7} {:>8.2} {:>11.1}",
            r.work,
            r.run_s,
            r.run_rss_mb,
            r.run_json_kb,
            r.timeseries_mb,
            r.latency_rows,
            r.missed_ticks,
            r.plot_s,
            r.plot_rss_mb
        )
    };
    let result = (|| -> Result<()> {
        for (i, (work, scenario)) in jobs.iter().enumerate() {
            let r = measure(work, scenario, &base.join(format!("job{i}")), cgroup_root)?;
            print_row(&r);
            rows.push(r);
        }
        let h = Hierarchy::detect(cgroup_root)?;
        for (i, len) in a.watch_lengths.iter().enumerate() {
            let r = measure_watch(
                *len,
                a.watch_interval,
                &base.join(format!("watch{i}")),
                cgroup_root,
                &h,
            )?;
            print_row(&r);
            watch_rows.push(r);
        }
        h.remove_parents_if_empty();
        Ok(())
    })();
    if a.keep.is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
    result?;
    if let (false, [short, long, ..]) = (a.watch_only, rows.as_slice()) {
        println!(
            "peak RSS of the longest 1 ms run against the shortest: {:+.1}%",
            100.0 * (long.run_rss_mb / short.run_rss_mb - 1.0)
        );
    }
    if let (Some(short), Some(long)) = (watch_rows.first(), watch_rows.last()) {
        if watch_rows.len() > 1 {
            println!(
                "peak RSS of the longest watch against the shortest: {:+.1}%",
                100.0 * (long.run_rss_mb / short.run_rss_mb - 1.0)
            );
        }
    }
    rows.extend(watch_rows);
    if let Some(path) = &a.csv {
        super::write_csv(path, &rows)?;
    }
    Ok(())
}
