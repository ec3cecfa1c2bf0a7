//! `throttlebench watch TARGET... [--children PATH]`: sample cgroups this tool did not
//! make, read only, into a result folder like a run's (plus episodes.csv), until Ctrl-C
//! or `--duration`; `--serve` exports them for Prometheus meanwhile.

use crate::cli::exit::RunStop;
use crate::report::ResultFolder;
use crate::sample::Host;
use crate::scenario::Span;
use crate::signals;
use crate::units::utc_now;
use crate::watch::files::WatchEnd;
use crate::watch::target::{Layout, TargetSpec};
use crate::watch::{self, WatchOptions};
use anyhow::Result;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub root: super::CgroupRoot,
    /// What to watch: a cgroup folder (absolute, or relative to --cgroup-root; v1: its
    /// folder in the cpu hierarchy, its cpuacct twin gives the CPU time), or pid:N (that
    /// process's cgroup).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<TargetSpec>,
    /// Also watch every child cgroup of PATH, taken in as they come and ended as they go
    /// (a node's kubepods cgroup, a container runtime's parent); repeatable (kubepods and
    /// its burstable and besteffort QoS cgroups, whose children are the pods).
    #[arg(long, value_name = "PATH")]
    pub children: Vec<PathBuf>,
    /// End after this long (default: at Ctrl-C or SIGTERM).
    #[arg(long)]
    pub duration: Option<Span>,
    /// Sample interval.
    #[arg(long, default_value = "10ms")]
    pub interval: Span,
    /// Result folder (default: a new results/watch/<UTC time>/). A folder that another
    /// run or watch is writing is refused (exit 7).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Serve the counters for Prometheus at http://ADDR/metrics while watching.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<String>,
    /// Do not draw plots at the end.
    #[arg(long)]
    pub no_plot: bool,
}

/// One group in a line, from its summary row and record.
fn group_line(r: &crate::report::SummaryRow, g: &crate::watch::files::GroupRecord) -> String {
    let mut s = format!(
        "{}: {:.1} s, cpu {:.3} CPUs",
        r.group, r.wall_s, r.cpu_share
    );
    match (r.nr_throttled, r.nr_periods, r.throttled_s) {
        (Some(n), Some(p), Some(t)) => {
            s.push_str(&format!(", throttled {n}/{p} periods"));
            if let Some(pct) = r.throttled_pct {
                s.push_str(&format!(" ({pct:.0}%)"));
            }
            s.push_str(&format!(", {t:.3}s throttled, {} episode(s)", g.episodes));
            if let Some(l) = g.longest_episode_s {
                s.push_str(&format!(", longest {l:.2}s"));
            }
        }
        _ => s.push_str(", throttling not reported by the kernel"),
    }
    if let (Some(q), Some(p)) = (r.quota_s, r.period_s) {
        s.push_str(&format!(", limit {:.3}", q / p));
    }
    if let Some(why) = &g.ended {
        s.push_str(&format!(", ended at {:.3} s ({why})", g.last_s));
    }
    s
}

pub fn run(cgroup_root: &Path, proc_root: &Path, args: &WatchArgs) -> Result<PathBuf> {
    let opts = WatchOptions {
        targets: args.targets.clone(),
        children: args.children.clone(),
        interval: args.interval.0,
        duration: args.duration.map(|d| d.0),
        cgroup_root: cgroup_root.to_path_buf(),
        proc_root: proc_root.to_path_buf(),
        serve: args.serve.clone(),
    };
    let usage = |what: &str| {
        crate::cli::exit::exit_with(crate::cli::exit::EXIT_USAGE, anyhow::anyhow!("{what}"))
    };
    if args.interval.0.is_zero() {
        return Err(usage("--interval must be longer than 0"));
    }
    if args.targets.is_empty() && args.children.is_empty() {
        return Err(usage(
            "nothing to watch: give a cgroup path, pid:N, or --children PATH",
        ));
    }
    // What cannot be watched is said before a folder is made.
    let layout = Layout::detect(cgroup_root)?;
    watch::resolve(&opts, &layout)?;
    signals::install();
    let (stamp, created) = utc_now();
    let folder = match &args.out {
        Some(out) => ResultFolder::named(out)?,
        None => ResultFolder::fresh(&watch::default_dir(&stamp))?,
    };
    let host = Host::read(
        proc_root,
        layout.version(),
        proc_root.join("pressure/cpu").exists(),
    );
    let served = super::serve::start(args.serve.as_deref())?;
    let result = watch::run(
        &opts,
        folder,
        host,
        created,
        served.as_ref().map(|(e, _)| e),
        &signals::received,
        &mut |line| eprintln!("throttlebench: watch: {line}"),
    )?;
    drop(served);
    for (r, g) in result.rows.iter().zip(&result.groups) {
        eprintln!("{}", group_line(r, g));
    }
    if result.ticks.missed > 0 {
        eprintln!(
            "throttlebench: watch: the sampler missed {} of {} ticks (busy {:.0} µs a tick on average)",
            result.ticks.missed,
            result.ticks.ticks + result.ticks.missed,
            result.ticks.busy_mean_s * 1e6
        );
    }
    if !args.no_plot {
        super::plot::after_run(&result.dir);
    }
    if let WatchEnd::Interrupted { signal } = result.end {
        return Err(RunStop::Interrupted {
            signal,
            dir: result.dir.display().to_string(),
        }
        .into());
    }
    println!("{}", result.dir.display());
    Ok(result.dir)
}
