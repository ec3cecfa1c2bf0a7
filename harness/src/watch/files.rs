//! A watch's result folder: the same files as a run's (`timeseries.csv`, `summary.csv`,
//! `latency.csv`, `duty.csv`, `run.json`, plots) plus `episodes.csv`, with one group per
//! watched cgroup and a single run (0).
//!
//! Rows go through the run's own writer (`report::stream::RunWriter`), flushed every
//! tick, and episodes as they end, so a watch killed even by SIGKILL keeps all but its
//! last interval. `run.json` says what is watched (each group's folder, when it came and
//! went, its counters at its first read, its limits) from the start, and is rewritten when
//! a group comes or goes; the summary is computed at the end from the rows read back
//! (`report::summary::window::scan`), like a run's.

use crate::report::files::appender::Appender;
use crate::report::files::csv_file::CsvFile;
use crate::report::files::{duty, episodes, latency, run_json, timeseries};
use crate::report::folder::FolderLock;
use crate::report::summary::window::{scan, GroupSpec, GroupWindow};
use crate::report::{ResultFolder, ResultsError, SummaryRow};
use crate::result::TickStats;
use crate::sample::cpustat::Has;
use crate::sample::Host;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What stays fixed for a watch's folder.
pub struct Folder {
    pub dir: PathBuf,
    pub created: String,
    pub host: Host,
    /// The wall-clock time of the first sample, s since the Unix epoch: a row's time
    /// plus this is when it was read (to set rows beside a Prometheus's samples).
    pub t0_unix_s: f64,
    _lock: FolderLock,
}

/// The long files, appended to while the watch runs.
pub struct Files {
    pub timeseries: Appender,
    pub episodes: Appender,
    summary: CsvFile,
}

fn with_header(dir: &Path, name: &str, header: &str) -> Result<Appender, ResultsError> {
    let mut a = Appender::create(&dir.join(name))?;
    a.row(|b| b.write_all(header.as_bytes()))
        .and_then(|_| a.sync())
        .map_err(|e| a.error(e))?;
    a.commit();
    Ok(a)
}

/// Make the files of `folder` with their headers. A folder this watch made goes again
/// if that fails.
pub fn create(
    folder: ResultFolder,
    host: Host,
    created: String,
) -> Result<(Folder, Files), ResultsError> {
    let ResultFolder { path, lock, made } = folder;
    let files = (|| {
        let mut summary = CsvFile::create(path.join("summary.csv"))?;
        summary.add(false, |w| w.write_record(SummaryRow::header(&[])))?;
        summary.write()?;
        summary.commit();
        // latency.csv and duty.csv have only their headers (a watch runs no workload),
        // so a watch's folder has every file a run's has.
        with_header(&path, "latency.csv", &latency::header())?;
        with_header(&path, "duty.csv", &duty::header())?;
        Ok(Files {
            timeseries: with_header(&path, "timeseries.csv", &timeseries::header())?,
            episodes: with_header(&path, "episodes.csv", &episodes::header())?,
            summary,
        })
    })();
    match files {
        Ok(f) => Ok((
            Folder {
                dir: path,
                created,
                host,
                t0_unix_s: 0.0,
                _lock: lock,
            },
            f,
        )),
        Err(e) => {
            if made {
                let _ = std::fs::remove_dir_all(&path);
            }
            Err(e)
        }
    }
}

/// Limits in seconds, as run.json holds them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LimitsRecord {
    pub quota_s: Option<f64>,
    pub period_s: Option<f64>,
    pub burst_s: Option<f64>,
}

/// A group's cumulative counters at its first read (a watched cgroup's counters do not
/// start at 0): what a replay of its scrapes starts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StartTotals {
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_s: f64,
    pub usage_s: f64,
}

/// One watched group, from when it was first read to when it went (or the watch ended).
#[derive(Debug, Clone, Serialize)]
pub struct GroupRecord {
    /// Its name in the rows: its path in the hierarchy (`#2`, `#3`, ... added when a
    /// cgroup of that path comes back after it went).
    pub name: String,
    /// Its path as /proc/<pid>/cgroup shows it.
    pub cgroup: String,
    /// The folders read.
    pub cpu_stat: PathBuf,
    pub usage: Option<PathBuf>,
    /// "v1" or "v2".
    pub version: &'static str,
    /// The target it came from: a path, `pid:N`, or `children of PATH`.
    pub target: String,
    /// When it was first read, s since the watch's first sample.
    pub first_s: f64,
    /// Its last read, s since the watch's first sample.
    pub last_s: f64,
    /// Why it stopped before the watch did (its cgroup was removed), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// Which counters its cpu.stat reports.
    pub counters: Has,
    pub start: StartTotals,
    /// Its limits when last read.
    pub limits: LimitsRecord,
    /// Throttling episodes written to episodes.csv, and the longest one's length, s.
    pub episodes: u64,
    pub longest_episode_s: Option<f64>,
}

impl GroupRecord {
    /// Count an episode of this group.
    pub fn note_episode(&mut self, e: &crate::episodes::Episode) {
        self.episodes += 1;
        let l = e.length_s();
        self.longest_episode_s = Some(self.longest_episode_s.map_or(l, |m| m.max(l)));
    }
}

/// How the watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchEnd {
    /// It is still running (the folder of a watch killed before it could say more).
    Running,
    /// `--duration` was reached.
    Completed,
    /// A signal ended it (Ctrl-C: 2).
    Interrupted { signal: i32 },
}

impl WatchEnd {
    /// The summary's `outcome` of a group that lasted to the end.
    pub fn outcome(&self) -> &'static str {
        match self {
            WatchEnd::Running => "running",
            WatchEnd::Completed => "completed",
            WatchEnd::Interrupted { .. } => "interrupted",
        }
    }
}

/// What was asked for, as run.json says it.
#[derive(Debug, Clone, Serialize)]
pub struct WatchRequest {
    pub targets: Vec<String>,
    /// The `--children` parents, as given.
    pub children: Vec<String>,
    /// The sample interval (`10ms`).
    pub interval: String,
    pub duration: Option<String>,
    pub cgroup_root: PathBuf,
    pub serve: Option<String>,
}

/// run.json of a watch. `plan` is shaped like a run's where readers look (the name
/// `watch`, run 0's `sample_interval` and groups), so plots and `check` read it too.
#[derive(Serialize)]
struct WatchJson<'a> {
    schema_version: u32,
    tool: &'static str,
    tool_version: &'static str,
    kind: &'static str,
    created: &'a str,
    /// The wall-clock time of the first sample (rows' time 0), s since the Unix epoch.
    t0_unix_s: f64,
    /// True once the watch ended and its summary is written.
    complete: bool,
    host: &'a Host,
    plan: serde_json::Value,
    watch: &'a WatchRequest,
    end: WatchEnd,
    ticks: TickStats,
    groups: &'a [GroupRecord],
    runs: Vec<serde_json::Value>,
}

impl Folder {
    /// Write run.json.
    pub fn write_json(
        &self,
        request: &WatchRequest,
        groups: &[GroupRecord],
        end: WatchEnd,
        ticks: TickStats,
        summary: Option<&[SummaryRow]>,
    ) -> Result<(), ResultsError> {
        let plan = serde_json::json!({
            "scenario": { "name": "watch" },
            "source": "watch",
            "swept": [],
            "runs": [{
                "index": 0,
                "config": 0,
                "repeat": 0,
                "params": [],
                "sample_interval": request.interval,
                "limiter": { "kind": "none" },
                "groups": groups.iter().map(|g| serde_json::json!({
                    "name": g.name,
                    "workload": { "kind": "watched", "cgroup": g.cgroup },
                })).collect::<Vec<_>>(),
            }],
        });
        let doc = WatchJson {
            schema_version: run_json::SCHEMA_VERSION,
            tool: "throttlebench",
            tool_version: env!("CARGO_PKG_VERSION"),
            kind: "watch",
            created: &self.created,
            t0_unix_s: self.t0_unix_s,
            complete: summary.is_some(),
            host: &self.host,
            plan,
            watch: request,
            end,
            ticks,
            groups,
            runs: summary
                .map(|rows| vec![serde_json::json!({ "summary": rows })])
                .unwrap_or_default(),
        };
        run_json::write(&self.dir, &doc)
    }
}

impl Files {
    /// Each group's totals over its rows, read back from timeseries.csv (synced first).
    pub fn windows(&mut self, groups: &[GroupRecord]) -> Result<Vec<GroupWindow>, ResultsError> {
        self.timeseries
            .sync()
            .map_err(|e| self.timeseries.error(e))?;
        self.episodes.sync().map_err(|e| self.episodes.error(e))?;
        let specs: Vec<GroupSpec> = groups
            .iter()
            .map(|g| GroupSpec {
                name: g.name.clone(),
                zero_s: None,
                end_s: None,
                holds_only: false,
            })
            .collect();
        let path = self.timeseries.path.clone();
        let scanned = (|| {
            let mut head = csv::Reader::from_reader(self.timeseries.reader_from(0)?);
            let header = head.byte_headers()?.clone();
            let start = timeseries::header().len() as u64;
            scan(&header, self.timeseries.reader_from(start)?, 0, &specs)
        })();
        scanned.map(|(w, _)| w).map_err(|e| ResultsError::Io {
            path,
            error: std::io::Error::other(e),
        })
    }

    /// Write the summary rows.
    pub fn write_summary(&mut self, rows: &[SummaryRow]) -> Result<(), ResultsError> {
        self.summary.add(false, |w| {
            rows.iter().try_for_each(|row| w.write_record(row.values()))
        })?;
        self.summary.write()?;
        self.summary.commit();
        Ok(())
    }
}
