//! A watch while it runs: one sampler over a changing set of groups, whose every tick
//! goes to the run's row writer, to each group's episode tracker (episodes.csv) and,
//! with `--serve`, into the exposition.
//!
//! `tick` allocates nothing while the set of groups stays the same (the sampler's
//! `tick_each`, the writer's and the trackers' fixed buffers, the exposition's atomics).
//! `refresh`, called about once a second between ticks, re-reads the limits through open
//! handles and, for `--children`, looks at the parent folder's link count (one fstat: a
//! cgroup folder's count is 2 plus its subfolders); only when that changed, or a group
//! could not be read in a tick, does it list the children again and add or end groups,
//! which allocates.
//!
//! Groups keep one order everywhere (sampler, writer, exposition, trackers); one that
//! goes is removed from all of them at once, before the tick's rows are written, so no
//! row is written from a sample that was not read.

use super::files::{Folder, GroupRecord, LimitsRecord, StartTotals, WatchEnd, WatchRequest};
use super::limits::LimitFiles;
use super::target::{Layout, Watched};
use crate::episodes::{EpisodeTracker, ThrottleDelta};
use crate::exposition::sampled::SampledGroups;
use crate::exposition::{CpuLimits, Exposition, GroupLabels};
use crate::report::files::appender::Appender;
use crate::report::files::episodes;
use crate::report::stream::{Failure, RunWriter, Spool};
use crate::report::ResultsError;
use crate::result::TickStats;
use crate::runner::RunSink;
use crate::sample::cpustat::Has;
use crate::sample::sampler::os_error;
use crate::sample::{Delta, Sample, Sampler};
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default CFS period, for a group whose period cannot be read.
const DEFAULT_PERIOD_S: f64 = 0.1;

/// A group being sampled.
struct LiveGroup {
    /// Its entry in `Watch::records`.
    record: usize,
    cpu_dir: PathBuf,
    /// The folder's inode: a folder of the same path made anew is another cgroup.
    ino: u64,
    /// Came from `--children` (the parent's index in `Watch::children`): ends when that
    /// parent no longer lists it.
    child_of: Option<usize>,
    limits: LimitFiles,
    last_limits: CpuLimits,
    tracker: EpisodeTracker,
    has: Has,
    prev: Sample,
}

/// `--children PATH`: the parent and its folder's link count when last listed.
struct Children {
    parent: Watched,
    dir: File,
    nlink: u64,
}

/// A group that stopped, for the caller to say so.
#[derive(Debug, Clone)]
pub struct Ended {
    pub name: String,
    pub why: String,
    pub last_s: f64,
}

/// One watch's sampling state.
pub struct Watch<'f> {
    layout: Layout,
    sampler: Sampler,
    writer: RunWriter<'f>,
    episodes: &'f mut Appender,
    exported: Option<SampledGroups>,
    host: String,
    live: Vec<LiveGroup>,
    /// Every group seen, in the order first read.
    pub records: Vec<GroupRecord>,
    /// Names used so far, and how many cgroups of that path came.
    names: HashMap<String, u32>,
    /// Folders whose cgroup ended while the folder was still there (a read that kept
    /// failing): not taken again until made anew (another inode).
    dead: HashSet<(PathBuf, u64)>,
    children: Vec<Children>,
    ticks_per_s: u64,
    /// A group ended in a tick since the last refresh.
    ended_since_refresh: bool,
    /// Groups ended since the caller last asked (`take_ended`).
    ended: Vec<Ended>,
    /// The time of the last tick, ns since the first.
    last_t_ns: u64,
    /// The writer's first failed write (a full disk), which ends the watch with exit 7.
    failed: Failure,
}

fn ino(dir: &Path) -> u64 {
    std::fs::metadata(dir).map(|m| m.ino()).unwrap_or(0)
}

/// The target of the groups that came from `--children` of `parent`.
pub fn children_target(parent: &Watched) -> String {
    format!("children of {}", parent.cpu_dir.display())
}

/// A quota in CPUs (timeseries.csv's `limit_cpus`): quota over period, None without one;
/// from whole µs as the kernel has them (20000 / 100000 is 0.2, 0.02 / 0.1 is not).
fn quota_cpus(l: &CpuLimits) -> Option<f64> {
    let us = |s: f64| (s * 1e6).round();
    l.quota_s
        .zip(l.period_s)
        .filter(|(_, p)| *p > 0.0)
        .map(|(q, p)| us(q) / us(p))
}

fn record_limits(l: &CpuLimits) -> LimitsRecord {
    LimitsRecord {
        quota_s: l.quota_s,
        period_s: l.period_s,
        burst_s: l.burst_s,
    }
}

impl<'f> Watch<'f> {
    /// Open the sampler on `initial` (each with the target it came from), take the first
    /// sample (time 0) and hand it to the writer. `children`: the parents whose children
    /// are watched too (they are among `initial` already, listed by the caller).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        layout: Layout,
        initial: Vec<(Watched, String)>,
        children: Vec<Watched>,
        proc_root: &Path,
        interval: Duration,
        folder: &Folder,
        timeseries: &'f mut Appender,
        episodes: &'f mut Appender,
        exposition: Option<&Exposition>,
    ) -> Result<Watch<'f>> {
        let sources: Vec<_> = initial.iter().map(|(w, _)| w.sources()).collect();
        let mut sampler = Sampler::open(&sources, proc_root, interval)?;
        let ticks_per_s = folder.host.clock_ticks_per_s;
        let failed: Failure = std::sync::Arc::new(std::sync::Mutex::new(None));
        // A watch has no units or requests: the writer's latency spool is made for its
        // type's sake and unlinked at once (nothing is ever written to it).
        let spool = Spool::create(&folder.dir, 0)?;
        let _ = std::fs::remove_file(&spool.path);
        let mut writer = RunWriter::for_groups(
            0,
            ticks_per_s,
            folder.dir.clone(),
            timeseries,
            std::sync::Arc::new(std::sync::Mutex::new(spool)),
            failed.clone(),
        );
        writer.flush_every(0);
        writer.begin(&[], sampler.system_has())?;
        let exported = exposition.map(|e| {
            SampledGroups::new(
                e,
                GroupLabels {
                    cgroup: "/".into(),
                    group: "host".into(),
                    limiter: String::new(),
                    scenario: "watch".into(),
                    host: folder.host.hostname.clone(),
                },
                ticks_per_s,
                sampler.system_has(),
            )
        });
        let children = children
            .into_iter()
            .map(|parent| {
                let dir = File::open(&parent.cpu_dir)
                    .with_context(|| format!("opening {}", parent.cpu_dir.display()))?;
                let nlink = dir.metadata().map(|m| m.nlink()).unwrap_or(0);
                Ok(Children { parent, dir, nlink })
            })
            .collect::<Result<Vec<_>>>()?;
        let first = sampler.tick(0)?.to_vec();
        let mut w = Watch {
            layout,
            sampler,
            writer,
            episodes,
            exported,
            host: folder.host.hostname.clone(),
            live: Vec::new(),
            records: Vec::new(),
            names: HashMap::new(),
            dead: HashSet::new(),
            children,
            ticks_per_s,
            ended_since_refresh: false,
            ended: Vec::new(),
            last_t_ns: 0,
            failed,
        };
        for (i, (watched, target)) in initial.into_iter().enumerate() {
            let child_of = w
                .children
                .iter()
                .position(|ch| target == children_target(&ch.parent));
            w.register(watched, target, child_of, &first[i], i);
        }
        // The first sample is every initial group's baseline.
        w.writer.tick(&first)?;
        Ok(w)
    }

    /// Make group `g` of the sampler (already open, first sample `first`) known to the
    /// writer, the exposition and the records.
    fn register(
        &mut self,
        w: Watched,
        target: String,
        child_of: Option<usize>,
        first: &Sample,
        g: usize,
    ) {
        let has = self.sampler.counters(g);
        let lives = self.names.entry(w.name.clone()).or_insert(0);
        *lives += 1;
        let name = if *lives == 1 {
            w.name.clone()
        } else {
            format!("{}#{lives}", w.name)
        };
        let mut limits = LimitFiles::open(&w.cpu_dir, w.v2);
        let l = limits.read();
        self.writer.add_group(name.clone(), has, first);
        // Recording a limit only stores it (the writer's rows carry it from the next tick).
        let _ = self.writer.limit(g, quota_cpus(&l));
        if let Some(e) = self.exported.as_mut() {
            e.add(
                GroupLabels {
                    cgroup: w.cgroup(),
                    group: name.clone(),
                    limiter: if l.quota_s.is_some() { "cfs" } else { "none" }.into(),
                    scenario: "watch".into(),
                    host: self.host.clone(),
                },
                has,
                &l,
            );
        }
        let t_s = first.t_ns as f64 / 1e9;
        self.records.push(GroupRecord {
            name,
            cgroup: w.cgroup(),
            cpu_stat: w.cpu_stat.clone(),
            usage: w.usage.clone(),
            version: if w.v2 { "v2" } else { "v1" },
            target,
            first_s: t_s,
            last_s: t_s,
            ended: None,
            counters: has,
            start: StartTotals {
                nr_periods: first.nr_periods,
                nr_throttled: first.nr_throttled,
                throttled_s: first.throttled_ns as f64 / 1e9,
                usage_s: first.usage_ns as f64 / 1e9,
            },
            limits: record_limits(&l),
            episodes: 0,
            longest_episode_s: None,
        });
        self.live.push(LiveGroup {
            record: self.records.len() - 1,
            ino: ino(&w.cpu_dir),
            cpu_dir: w.cpu_dir,
            child_of,
            limits,
            last_limits: l,
            tracker: EpisodeTracker::new(l.period_s.unwrap_or(DEFAULT_PERIOD_S)),
            has,
            prev: *first,
        });
    }

    /// How many groups are sampled now.
    pub fn groups(&self) -> usize {
        self.live.len()
    }

    /// Which system-wide counters the kernel reports.
    pub fn psi(&self) -> bool {
        self.sampler.system_has().psi
    }

    /// One tick at `t_ns` (ns since the first sample): read every group, end those that
    /// cannot be read any more, write the rows, track episodes, update the exposition.
    pub fn tick(&mut self, t_ns: u64) -> Result<()> {
        self.last_t_ns = t_ns;
        let failed = self.sampler.tick_each(t_ns)?;
        if !failed.is_empty() {
            let gone: Vec<(usize, String)> = failed
                .iter()
                .map(|(g, e)| {
                    // ENODEV: the kernel's answer on the handle of a removed cgroup's file.
                    let removed = os_error(e) == Some(nix::errno::Errno::ENODEV as i32)
                        || e.kind() == std::io::ErrorKind::NotFound;
                    let why = if removed {
                        "removed".to_string()
                    } else {
                        format!("could not be read any more: {e}")
                    };
                    (*g, why)
                })
                .collect();
            for (g, why) in gone.into_iter().rev() {
                self.end_group(g, why)?;
            }
            self.ended_since_refresh = true;
        }
        let samples = self.sampler.last();
        if let Err(e) = self.writer.tick(samples) {
            let stored = self.failed.lock().unwrap_or_else(|p| p.into_inner()).take();
            return Err(stored.map_or_else(|| e.into(), anyhow::Error::from));
        }
        let ticks_per_s = self.ticks_per_s;
        for (lg, s) in self.live.iter_mut().zip(samples) {
            let d = Delta::between(&lg.prev, s, ticks_per_s);
            let bw = lg.has.bandwidth;
            let td = ThrottleDelta {
                t_s: s.t_ns as f64 / 1e9,
                dt_s: d.dt_s,
                nr_periods: bw.then_some(d.nr_periods),
                nr_throttled: bw.then_some(d.nr_throttled),
                throttled_s: bw.then_some(d.throttled_s),
            };
            if let Some(e) = lg.tracker.push(&td) {
                let r = &mut self.records[lg.record];
                write_episode(self.episodes, &r.name, &e)?;
                r.note_episode(&e);
            }
            lg.prev = *s;
            self.records[lg.record].last_s = td.t_s;
        }
        if let Some(e) = self.exported.as_mut() {
            e.update(samples);
        }
        self.episodes.flush().map_err(|e| self.episodes.error(e))?;
        Ok(())
    }

    /// Stop sampling group `g`: its episode going on is written (cut off), its record says
    /// why it ended.
    fn end_group(&mut self, g: usize, why: String) -> Result<()> {
        let mut lg = self.live.remove(g);
        if let Some(e) = lg.tracker.finish() {
            let r = &mut self.records[lg.record];
            write_episode(self.episodes, &r.name, &e)?;
            r.note_episode(&e);
        }
        self.sampler.remove_group(g);
        self.writer.remove_group(g);
        if let Some(e) = self.exported.as_mut() {
            e.remove(g);
        }
        if lg.cpu_dir.exists() && ino(&lg.cpu_dir) == lg.ino {
            self.dead.insert((lg.cpu_dir.clone(), lg.ino));
        }
        let r = &mut self.records[lg.record];
        r.ended = Some(why.clone());
        self.ended.push(Ended {
            name: r.name.clone(),
            why,
            last_s: r.last_s,
        });
        Ok(())
    }

    /// Groups that ended since the last call.
    pub fn take_ended(&mut self) -> Vec<Ended> {
        std::mem::take(&mut self.ended)
    }

    /// Between ticks: re-read every group's limits, and with `--children` take in the
    /// children that came and end those that went. Returns whether the set of groups
    /// changed (then run.json is worth rewriting). Allocates only when something changed.
    pub fn refresh(&mut self) -> Result<bool> {
        for (g, lg) in self.live.iter_mut().enumerate() {
            let l = lg.limits.read();
            if l != lg.last_limits {
                lg.last_limits = l;
                lg.tracker
                    .set_period(l.period_s.unwrap_or(DEFAULT_PERIOD_S));
                if let Some(e) = self.exported.as_mut() {
                    e.set_limits(g, &l);
                }
                self.writer.limit(g, quota_cpus(&l))?;
                self.records[lg.record].limits = record_limits(&l);
            }
        }
        let ended = std::mem::take(&mut self.ended_since_refresh);
        let mut changed = ended;
        for k in 0..self.children.len() {
            changed |= self.refresh_children(k, ended)?;
        }
        Ok(changed)
    }

    /// The children of parent `k`: looked at again when its link count moved or a group
    /// ended (`ended`) since the last look. Whether a group came or went.
    fn refresh_children(&mut self, k: usize, ended: bool) -> Result<bool> {
        let ch = &mut self.children[k];
        let nlink = ch.dir.metadata().map(|m| m.nlink()).unwrap_or(0);
        if nlink == ch.nlink && !ended {
            return Ok(false);
        }
        ch.nlink = nlink;
        let target = children_target(&ch.parent);
        let mut changed = false;
        // A parent that went took every child with it: none listed.
        let (found, skipped) = self.layout.children(&ch.parent).unwrap_or_default();
        for e in skipped {
            eprintln!("throttlebench: watch: not watched: {e}");
        }
        let listed: HashSet<&Path> = found.iter().map(|w| w.cpu_dir.as_path()).collect();
        let gone: Vec<usize> = self
            .live
            .iter()
            .enumerate()
            .filter(|(_, lg)| lg.child_of == Some(k) && !listed.contains(lg.cpu_dir.as_path()))
            .map(|(g, _)| g)
            .collect();
        for g in gone.into_iter().rev() {
            self.end_group(g, "removed".into())?;
            changed = true;
        }
        let t_ns = self.last_t_ns;
        for w in found {
            let inode = ino(&w.cpu_dir);
            let known = self
                .live
                .iter()
                .any(|lg| lg.cpu_dir == w.cpu_dir && lg.ino == inode);
            if known || self.dead.contains(&(w.cpu_dir.clone(), inode)) {
                continue;
            }
            match self.sampler.add_group(&w.sources(), t_ns) {
                Ok(g) => {
                    let first = self.sampler.last()[g];
                    self.register(w, target.clone(), Some(k), &first, g);
                    changed = true;
                }
                // It went between the listing and the open: not a child now.
                Err(e) => eprintln!("throttlebench: watch: not watched: {e}"),
            }
        }
        Ok(changed)
    }

    /// The end: every episode going on is written (cut off), the rows are flushed.
    pub fn finish(&mut self) -> Result<()> {
        for lg in &mut self.live {
            if let Some(e) = lg.tracker.finish() {
                let r = &mut self.records[lg.record];
                write_episode(self.episodes, &r.name, &e)?;
                r.note_episode(&e);
            }
        }
        self.writer.flush()?;
        self.episodes.flush().map_err(|e| self.episodes.error(e))?;
        Ok(())
    }

    /// Write run.json for the watch so far.
    pub fn write_json(
        &self,
        folder: &Folder,
        request: &WatchRequest,
        ticks: TickStats,
    ) -> Result<(), ResultsError> {
        folder.write_json(request, &self.records, WatchEnd::Running, ticks, None)
    }
}

/// Append one episode's row (no allocation; the file's error names it).
fn write_episode(
    a: &mut Appender,
    group: &str,
    e: &crate::episodes::Episode,
) -> Result<(), ResultsError> {
    a.row(|b| episodes::write_row(b, 0, group, e))
        .map_err(|err| a.error(err))
}
