//! `throttlebench watch`: the counters of cgroups this tool did not make, sampled and
//! written like a run's (one group per cgroup), with their throttling episodes, until
//! Ctrl-C or a duration; read only, nothing on the machine is changed.
//!
//! `target` resolves what to watch (a path, `pid:N`, the children of a folder); `live`
//! samples it (one sampler for all groups, groups coming and going); `files` is the
//! result folder; `summary` the summary rows at the end.

pub mod files;
pub mod limits;
pub mod live;
pub mod serve;
pub mod summary;
pub mod target;

#[cfg(test)]
mod tests;

use crate::clock::{monotonic_ns, sleep_until};
use crate::exposition::Exposition;
use crate::report::{ResultFolder, SummaryRow};
use crate::result::TickStats;
use crate::sample::Host;
use anyhow::{bail, Result};
use files::{WatchEnd, WatchRequest};
use live::{Ended, Watch};
use std::path::{Path, PathBuf};
use std::time::Duration;
use target::{Layout, TargetSpec, Watched};

/// What to watch and how.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub targets: Vec<TargetSpec>,
    /// Watch every child cgroup of these folders, as they come and go.
    pub children: Vec<PathBuf>,
    pub interval: Duration,
    /// End after this long (None: at a signal).
    pub duration: Option<Duration>,
    pub cgroup_root: PathBuf,
    pub proc_root: PathBuf,
    /// The `--serve` address, for run.json.
    pub serve: Option<String>,
}

/// A finished watch.
#[derive(Debug)]
pub struct WatchResult {
    pub dir: PathBuf,
    pub end: WatchEnd,
    pub rows: Vec<SummaryRow>,
    /// Every group seen, in the rows' order.
    pub groups: Vec<files::GroupRecord>,
    pub ticks: TickStats,
}

/// How often, at most, `Watch::refresh` runs (limits re-read, children looked at).
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// The cgroups to watch, each with the target it came from.
pub type Initial = Vec<(Watched, String)>;

/// What a watch's initial targets are, with the parents of `--children`.
pub fn resolve(opts: &WatchOptions, layout: &Layout) -> Result<(Initial, Vec<Watched>)> {
    let mut initial: Vec<(Watched, String)> = Vec::new();
    let mut push = |w: Watched, target: String| {
        if !initial.iter().any(|(x, _)| x.cpu_dir == w.cpu_dir) {
            initial.push((w, target));
        }
    };
    for t in &opts.targets {
        let w = match t {
            TargetSpec::Path(p) => layout.resolve(&opts.cgroup_root, p)?,
            TargetSpec::Pid(pid) => layout.of_process(&opts.proc_root, *pid)?,
        };
        push(w, t.to_string());
    }
    let mut parents: Vec<Watched> = Vec::new();
    for p in &opts.children {
        let parent = layout.resolve(&opts.cgroup_root, p)?;
        if parents.iter().any(|x| x.cpu_dir == parent.cpu_dir) {
            continue;
        }
        let (found, skipped) = layout.children(&parent)?;
        for e in skipped {
            eprintln!("throttlebench: watch: not watched: {e}");
        }
        let target = live::children_target(&parent);
        for w in found {
            push(w, target.clone());
        }
        parents.push(parent);
    }
    if opts.targets.is_empty() && parents.is_empty() {
        bail!("nothing to watch: give a cgroup path, pid:N, or --children PATH");
    }
    Ok((initial, parents))
}

/// Watch until `--duration` or a signal (`stopped` says which, polled after every tick),
/// writing into `folder`; `exposition` is updated every tick when given. `said` hears of
/// groups that come and go.
pub fn run(
    opts: &WatchOptions,
    folder: ResultFolder,
    host: Host,
    created: String,
    exposition: Option<&Exposition>,
    stopped: &dyn Fn() -> Option<i32>,
    said: &mut dyn FnMut(&str),
) -> Result<WatchResult> {
    let layout = Layout::detect(&opts.cgroup_root)?;
    let (initial, parent) = resolve(opts, &layout)?;
    let (mut folder, mut files) = files::create(folder, host, created)?;
    let request = WatchRequest {
        targets: opts.targets.iter().map(|t| t.to_string()).collect(),
        children: opts
            .children
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        interval: crate::scenario::Span::from_micros(opts.interval.as_micros() as u64).to_string(),
        duration: opts
            .duration
            .map(|d| crate::scenario::Span::from_micros(d.as_micros() as u64).to_string()),
        cgroup_root: opts.cgroup_root.clone(),
        serve: opts.serve.clone(),
    };
    let interval_ns = (opts.interval.as_nanos() as u64).max(1);
    let mut ticks = TickStats {
        interval_s: opts.interval.as_secs_f64(),
        ticks: 1,
        ..TickStats::default()
    };
    let files::Files {
        timeseries,
        episodes,
        ..
    } = &mut files;
    let with_children = !parent.is_empty();
    let t0 = monotonic_ns();
    folder.t0_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut watch = Watch::start(
        layout,
        initial,
        parent,
        &opts.proc_root,
        opts.interval,
        &folder,
        timeseries,
        episodes,
        exposition,
    )?;
    watch.write_json(&folder, &request, ticks)?;
    said(&format!(
        "watching {} group(s) every {}, results in {}",
        watch.groups(),
        request.interval,
        folder.dir.display()
    ));
    let refresh_ticks = (REFRESH_EVERY.as_nanos() as u64 / interval_ns).max(1);
    let duration_ns = opts.duration.map(|d| d.as_nanos() as u64);
    let mut busy_ns = 0u64;
    // The grid starts after the setup (run.json written and synced), which may take
    // longer than an interval: the first row then spans it, and no tick counts as missed.
    let mut next = monotonic_ns();
    let end = loop {
        next += interval_ns;
        let now = monotonic_ns();
        if next <= now {
            // Fell behind: skip the missed ticks, keep the grid, count them.
            let skip_to = now + interval_ns - (now - next) % interval_ns;
            ticks.missed += (skip_to - next) / interval_ns;
            next = skip_to;
        }
        if stopped().is_none() {
            sleep_until(next);
        }
        let now = monotonic_ns();
        if now.saturating_sub(next) > interval_ns / 2 && stopped().is_none() {
            ticks.late += 1;
        }
        watch.tick(now - t0)?;
        ticks.ticks += 1;
        let busy = monotonic_ns().saturating_sub(now);
        busy_ns += busy;
        ticks.busy_max_s = ticks.busy_max_s.max(busy as f64 / 1e9);
        let ended = watch.take_ended();
        if ticks.ticks.is_multiple_of(refresh_ticks) || !ended.is_empty() {
            let changed = watch.refresh()?;
            let mut ended = ended;
            ended.extend(watch.take_ended());
            for Ended { name, why, last_s } in &ended {
                said(&format!("{name}: {why}; its rows end at {last_s:.3} s"));
            }
            if changed {
                watch.write_json(&folder, &request, ticks)?;
            }
        }
        if let Some(sig) = stopped() {
            break WatchEnd::Interrupted { signal: sig };
        }
        if watch.groups() == 0 && !with_children {
            said("every watched cgroup went: nothing left to watch");
            break WatchEnd::Completed;
        }
        if duration_ns.is_some_and(|d| now - t0 >= d) {
            break WatchEnd::Completed;
        }
    };
    ticks.busy_mean_s = busy_ns as f64 / 1e9 / ticks.ticks.max(1) as f64;
    watch.finish()?;
    let psi = watch.psi();
    let records = std::mem::take(&mut watch.records);
    drop(watch);
    let windows = files.windows(&records)?;
    let rows = summary::rows(&records, &windows, end, &ticks, psi);
    files.write_summary(&rows)?;
    folder.write_json(&request, &records, end, ticks, Some(&rows))?;
    Ok(WatchResult {
        dir: folder.dir.clone(),
        end,
        rows,
        groups: records,
        ticks,
    })
}

/// The default folder of a watch: results/watch/<UTC time>.
pub fn default_dir(stamp: &str) -> PathBuf {
    Path::new("results").join("watch").join(stamp)
}
