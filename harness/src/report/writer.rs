//! Result folders: `summary.csv`, `timeseries.csv`, `latency.csv` (appended and written to
//! disk run by run, so an interrupted or failed run keeps what it measured) and `run.json`
//! (rewritten after every run with everything so far, `complete: false` until the end).
//!
//! A folder is written by one run only: a default folder is made new (never reused), and
//! every folder is locked while written. A run whose write fails (a full disk) loses only
//! that run: each file is cut back to the end of the run before.

use super::summary::{summarize, Delta, SummaryRow};
use crate::result::RunResult;
use crate::sample::Host;
use crate::scenario::Plan;
use serde::Serialize;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Version of the result folder layout; bumped when a column or field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct RunJson<'a> {
    schema_version: u32,
    tool: &'static str,
    tool_version: &'static str,
    /// UTC, ISO 8601.
    created: &'a str,
    /// False until every planned run has been written.
    complete: bool,
    host: &'a Host,
    plan: &'a Plan,
    runs: Vec<RunJsonEntry<'a>>,
}

#[derive(Serialize)]
struct RunJsonEntry<'a> {
    /// One row per group.
    summary: &'a [SummaryRow],
    result: &'a RunResult,
}

/// Writes one result folder.
pub struct ResultWriter {
    dir: PathBuf,
    created: String,
    host: Host,
    /// Held while the folder is written: another run is refused it.
    _lock: FolderLock,
    summary: CsvFile,
    timeseries: CsvFile,
    latency: CsvFile,
    /// Probe tables (steal.csv, gaps.csv, ...), opened when a probe first reports.
    probe_files: std::collections::BTreeMap<&'static str, CsvFile>,
    /// Each run's summary rows and raw result, for run.json.
    runs: Vec<(Vec<SummaryRow>, RunResult)>,
}

/// The results could not be written: the file (or folder) and why.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot write results to {}: {}", path.display(), describe(error))]
    Io { path: PathBuf, error: io::Error },
    #[error("the result folder {} is being written by another throttlebench run; give another --out", path.display())]
    InUse { path: PathBuf },
}

impl ResultsError {
    fn io(path: &Path) -> impl Fn(io::Error) -> ResultsError + '_ {
        move |error| ResultsError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// An I/O error in words, with the cases of a full disk said plainly.
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => format!("the disk is full ({e})"),
        Some(libc::EDQUOT) => format!("the disk quota is used up ({e})"),
        _ => e.to_string(),
    }
}

/// A lock on a result folder (flock on the folder itself), held while a run writes it.
#[derive(Debug)]
pub struct FolderLock(#[allow(dead_code)] File);

impl FolderLock {
    /// Lock `dir`; `InUse` if another process holds it.
    fn take(dir: &Path) -> Result<FolderLock, ResultsError> {
        use std::os::unix::io::AsRawFd;
        let f = File::open(dir).map_err(ResultsError::io(dir))?;
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                ResultsError::InUse {
                    path: dir.to_path_buf(),
                }
            } else {
                ResultsError::Io {
                    path: dir.to_path_buf(),
                    error: e,
                }
            });
        }
        Ok(FolderLock(f))
    }
}

/// A result folder that this run alone writes.
#[derive(Debug)]
pub struct ResultFolder {
    pub path: PathBuf,
    lock: FolderLock,
    /// Whether this run made the folder (then it removes it if it cannot start).
    made: bool,
}

impl ResultFolder {
    /// A new folder at `base` or, if that exists (another run started in the same
    /// second, or an earlier run), at `base-2`, `base-3`, ...: made with mkdir, which fails
    /// on an existing folder, so two runs never get the same one. Its parents are made.
    pub fn fresh(base: &Path) -> Result<ResultFolder, ResultsError> {
        if let Some(parent) = base.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(ResultsError::io(parent))?;
        }
        let name = base.file_name().unwrap_or_default().to_string_lossy();
        for n in 1..=1000 {
            let path = if n == 1 {
                base.to_path_buf()
            } else {
                base.with_file_name(format!("{name}-{n}"))
            };
            match fs::create_dir(&path) {
                Ok(()) => {
                    let lock = FolderLock::take(&path).inspect_err(|_| {
                        let _ = fs::remove_dir(&path);
                    })?;
                    return Ok(ResultFolder {
                        path,
                        lock,
                        made: true,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ResultsError::io(&path)(e)),
            }
        }
        Err(ResultsError::Io {
            path: base.to_path_buf(),
            error: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "it and 999 numbered variants exist",
            ),
        })
    }

    /// The folder the user named (`--out`), made if missing; an existing one is reused
    /// (its files rewritten) unless another run is writing it, which is refused.
    pub fn named(dir: &Path) -> Result<ResultFolder, ResultsError> {
        let made = match fs::create_dir(dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(ResultsError::io(dir))?;
                true
            }
            Err(e) => return Err(ResultsError::io(dir)(e)),
        };
        match FolderLock::take(dir) {
            Ok(lock) => Ok(ResultFolder {
                path: dir.to_path_buf(),
                lock,
                made,
            }),
            Err(e) => {
                if made {
                    let _ = fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }
}

/// One CSV file, written run by run: a run's rows are collected in memory, then written
/// at once; if that fails the file is cut back to the end of the previous run, so a
/// full disk never leaves half a row.
struct CsvFile {
    path: PathBuf,
    file: File,
    /// Length up to the end of the last run fully written.
    committed: u64,
    /// Bytes written after `committed`, not yet committed.
    written: u64,
    pending: Vec<u8>,
}

impl CsvFile {
    fn create(path: PathBuf) -> Result<CsvFile, ResultsError> {
        let file = File::create(&path).map_err(ResultsError::io(&path))?;
        Ok(CsvFile {
            path,
            file,
            committed: 0,
            written: 0,
            pending: Vec::new(),
        })
    }

    /// Add rows to the pending bytes through a CSV writer; `headers`: write the
    /// serialized type's header before the first row if the file is still empty.
    fn add(
        &mut self,
        headers: bool,
        rows: impl FnOnce(&mut csv::Writer<&mut Vec<u8>>) -> csv::Result<()>,
    ) -> Result<(), ResultsError> {
        let empty = self.committed == 0 && self.written == 0 && self.pending.is_empty();
        let mut w = csv::WriterBuilder::new()
            .has_headers(headers && empty)
            .from_writer(&mut self.pending);
        let r = rows(&mut w).and_then(|_| w.flush().map_err(csv::Error::from));
        drop(w);
        r.map_err(|e| ResultsError::Io {
            path: self.path.clone(),
            error: e.into(),
        })
    }

    /// Write the pending bytes to the file and to disk.
    fn write(&mut self) -> Result<(), ResultsError> {
        use std::os::unix::fs::FileExt;
        let at = self.committed + self.written;
        self.file
            .write_all_at(&self.pending, at)
            .and_then(|_| self.file.sync_data())
            .map_err(ResultsError::io(&self.path))?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn commit(&mut self) {
        self.committed += self.written;
        self.written = 0;
    }

    /// Forget what was written since the last commit.
    fn rollback(&mut self) {
        self.pending.clear();
        if self.written > 0 {
            let _ = self.file.set_len(self.committed);
            self.written = 0;
        }
    }
}

/// Rows of a probe table, tagged with their run and group.
trait Tagged: Serialize + Clone {
    fn tag(&mut self, run: usize, group: &str);
}

macro_rules! tagged {
    ($($t:ty),*) => {$(
        impl Tagged for $t {
            fn tag(&mut self, run: usize, group: &str) {
                self.run = Some(run);
                self.group = Some(group.to_string());
            }
        }
    )*};
}

tagged!(
    crate::probe::steal::CpuRow,
    crate::probe::steal::GapBucket,
    crate::probe::steal::SeriesRow,
    crate::probe::entropy::SupplyRow,
    crate::probe::entropy::FipsRow
);

/// Columns of timeseries.csv: one row per run and sample, each counter's change since
/// the previous sample (times in s), plus two shares over the interval.
pub const TIMESERIES_COLUMNS: &[&str] = &[
    "run",
    "group",
    "t_s",
    "dt_s",
    "usage_s",
    "cpu_share",
    "nr_periods",
    "nr_throttled",
    "throttled_s",
    "throttled_share",
    "nr_bursts",
    "burst_time_s",
    "steal_s",
    "busy_s",
    "psi_some_s",
    "psi_full_s",
];

/// One row of timeseries.csv; counters the cgroup's cpu.stat does not have (`has`) are
/// left empty rather than written as 0.
fn timeseries_values(
    run: usize,
    group: &str,
    t_s: f64,
    d: &Delta,
    has: crate::sample::cpustat::Has,
) -> [String; 16] {
    let share = |x: f64| if d.dt_s > 0.0 { x / d.dt_s } else { 0.0 };
    let only = |ok: bool, v: String| if ok { v } else { String::new() };
    let (bw, burst) = (has.bandwidth, has.burst);
    [
        run.to_string(),
        group.to_string(),
        t_s.to_string(),
        d.dt_s.to_string(),
        d.usage_s.to_string(),
        share(d.usage_s).to_string(),
        only(bw, d.nr_periods.to_string()),
        only(bw, d.nr_throttled.to_string()),
        only(bw, d.throttled_s.to_string()),
        only(bw, share(d.throttled_s).to_string()),
        only(burst, d.nr_bursts.to_string()),
        only(burst, d.burst_time_s.to_string()),
        d.steal_s.to_string(),
        d.busy_s.to_string(),
        d.psi_some_s.to_string(),
        d.psi_full_s.to_string(),
    ]
}

/// Columns of latency.csv: one row per request or slow unit.
pub const LATENCY_COLUMNS: &[&str] = &[
    "run",
    "kind",
    "index",
    "due_s",
    "latency_s",
    "thread",
    "start_s",
    "end_s",
    "group",
];

#[derive(Serialize)]
struct LatencyRow<'a> {
    run: usize,
    kind: &'a str,
    index: u64,
    due_s: f64,
    latency_s: f64,
    thread: u32,
    start_s: f64,
    end_s: f64,
    group: &'a str,
}

impl ResultWriter {
    /// Open the CSV files of `folder` with their headers. If that fails and this run made
    /// the folder, the folder goes again, so a run that cannot start leaves nothing.
    pub fn create(
        folder: ResultFolder,
        plan: &Plan,
        host: Host,
        created: String,
    ) -> Result<ResultWriter, ResultsError> {
        let ResultFolder {
            path: dir,
            lock,
            made,
        } = folder;
        let opened = (|| {
            let mut summary = CsvFile::create(dir.join("summary.csv"))?;
            let mut timeseries = CsvFile::create(dir.join("timeseries.csv"))?;
            let mut latency = CsvFile::create(dir.join("latency.csv"))?;
            for (f, header) in [
                (&mut summary, SummaryRow::header(&plan.swept)),
                (
                    &mut timeseries,
                    TIMESERIES_COLUMNS.iter().map(|c| c.to_string()).collect(),
                ),
                // Written by hand so a run without units still gets a header.
                (
                    &mut latency,
                    LATENCY_COLUMNS.iter().map(|c| c.to_string()).collect(),
                ),
            ] {
                f.add(false, |w| w.write_record(&header))?;
                f.write()?;
                f.commit();
            }
            Ok((summary, timeseries, latency))
        })();
        let (summary, timeseries, latency) = match opened {
            Ok(x) => x,
            Err(e) => {
                if made {
                    let _ = fs::remove_dir_all(&dir);
                }
                return Err(e);
            }
        };
        Ok(ResultWriter {
            dir,
            created,
            host,
            _lock: lock,
            summary,
            timeseries,
            latency,
            probe_files: Default::default(),
            runs: Vec::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every summary row written so far.
    pub fn rows(&self) -> Vec<&SummaryRow> {
        self.runs.iter().flat_map(|(rows, _)| rows).collect()
    }

    /// How many runs are written.
    pub fn runs_written(&self) -> usize {
        self.runs.len()
    }

    /// Append one run to every file and to disk; returns its summary rows (one per
    /// group). All or nothing: if a write fails (a full disk), every file is cut back to
    /// the previous run and run.json is left as it was (`complete: false`).
    pub fn append(
        &mut self,
        plan: &Plan,
        result: RunResult,
    ) -> Result<Vec<SummaryRow>, ResultsError> {
        let rows = summarize(
            &plan.scenario.name,
            &result,
            self.host.clock_ticks_per_s,
            self.host.psi,
        );
        let written = self.fill(&rows, &result).and_then(|_| {
            for f in self.files() {
                f.write()?;
            }
            Ok(())
        });
        if let Err(e) = written {
            self.rollback();
            return Err(e);
        }
        self.runs.push((rows.clone(), result));
        if let Err(e) = self.write_json(plan, false) {
            self.runs.pop();
            self.rollback();
            return Err(e);
        }
        for f in self.files() {
            f.commit();
        }
        Ok(rows)
    }

    fn files(&mut self) -> impl Iterator<Item = &mut CsvFile> {
        [&mut self.summary, &mut self.timeseries, &mut self.latency]
            .into_iter()
            .chain(self.probe_files.values_mut())
    }

    fn rollback(&mut self) {
        for f in self.files() {
            f.rollback();
        }
        // A probe table that this run opened goes again.
        self.probe_files.retain(|_, f| {
            let keep = f.committed > 0;
            if !keep {
                let _ = fs::remove_file(&f.path);
            }
            keep
        });
    }

    /// Put one run's rows in every file's pending bytes.
    fn fill(&mut self, rows: &[SummaryRow], result: &RunResult) -> Result<(), ResultsError> {
        self.summary.add(false, |w| {
            rows.iter().try_for_each(|row| w.write_record(row.values()))
        })?;
        let run = result.planned.index;
        let ticks = self.host.clock_ticks_per_s;
        self.timeseries.add(false, |w| {
            for g in &result.groups {
                let t0 = g.samples.first().map(|s| s.t_ns).unwrap_or(0);
                for pair in g.samples.windows(2) {
                    let delta = Delta::between(&pair[0], &pair[1], ticks);
                    let t_s = pair[1].t_ns.saturating_sub(t0) as f64 / 1e9;
                    w.write_record(timeseries_values(run, &g.name, t_s, &delta, g.counters))?;
                }
            }
            Ok(())
        })?;
        self.latency.add(false, |w| {
            for g in &result.groups {
                for u in &g.workload.units {
                    w.serialize(LatencyRow {
                        run,
                        kind: match u.kind {
                            fibtest::record::UnitKind::Slow => "slow",
                            fibtest::record::UnitKind::Request => "request",
                        },
                        index: u.index,
                        due_s: u.due_s,
                        latency_s: u.latency_s,
                        thread: u.thread,
                        start_s: u.start_s,
                        end_s: u.end_s,
                        group: &g.name,
                    })?;
                }
            }
            Ok(())
        })?;
        for g in &result.groups {
            use crate::probe::ProbeOutput;
            match &g.workload.probe {
                Some(ProbeOutput::StealProbe(p)) => {
                    self.probe_rows("steal.csv", run, &g.name, &p.cpus)?;
                    self.probe_rows("gaps.csv", run, &g.name, &p.gaps)?;
                    self.probe_rows("steal_timeseries.csv", run, &g.name, &p.series)?;
                }
                Some(ProbeOutput::EntropyProbe(p)) => {
                    self.probe_rows("entropy.csv", run, &g.name, &p.supply)?;
                    self.probe_rows("fips.csv", run, &g.name, &p.fips)?;
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Put a probe's rows in `name`'s pending bytes (the file opened, with its header,
    /// the first time).
    fn probe_rows<T: Tagged>(
        &mut self,
        name: &'static str,
        run: usize,
        group: &str,
        rows: &[T],
    ) -> Result<(), ResultsError> {
        if !self.probe_files.contains_key(name) {
            let f = CsvFile::create(self.dir.join(name))?;
            self.probe_files.insert(name, f);
        }
        let f = self.probe_files.get_mut(name).expect("just inserted");
        f.add(true, |w| {
            for r in rows {
                let mut r = r.clone();
                r.tag(run, group);
                w.serialize(&r)?;
            }
            Ok(())
        })
    }

    /// Rewrite run.json; `complete` says whether every planned run is in. Written to
    /// run.json.tmp and renamed into place, so a failure (a full disk) leaves the previous
    /// run.json whole; the error names run.json.
    pub fn write_json(&self, plan: &Plan, complete: bool) -> Result<(), ResultsError> {
        let doc = RunJson {
            schema_version: SCHEMA_VERSION,
            tool: "throttlebench",
            tool_version: env!("CARGO_PKG_VERSION"),
            created: &self.created,
            complete,
            host: &self.host,
            plan,
            runs: self
                .runs
                .iter()
                .map(|(rows, result)| RunJsonEntry {
                    summary: rows,
                    result,
                })
                .collect(),
        };
        let path = self.dir.join("run.json");
        let tmp = self.dir.join("run.json.tmp");
        let written = (|| -> io::Result<()> {
            let mut w = BufWriter::new(File::create(&tmp)?);
            serde_json::to_writer_pretty(&mut w, &doc)?;
            w.write_all(b"\n")?;
            w.into_inner().map_err(|e| e.into_error())?.sync_data()?;
            fs::rename(&tmp, &path)
        })();
        written.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            ResultsError::io(&path)(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_folder_is_never_shared() {
        let d = std::env::temp_dir().join(format!("tb-folder-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let base = d.join("results/s/20261122T120654Z");
        let a = ResultFolder::fresh(&base).unwrap();
        let b = ResultFolder::fresh(&base).unwrap();
        assert_eq!(a.path, base);
        assert_eq!(b.path, d.join("results/s/20261122T120654Z-2"));
        // --out a folder that a live writer holds: refused, naming it.
        match ResultFolder::named(&a.path) {
            Err(e @ ResultsError::InUse { .. }) => {
                assert!(e.to_string().contains(&base.display().to_string()), "{e}")
            }
            other => panic!("{other:?}"),
        }
        drop(a);
        let again = ResultFolder::named(&base).unwrap();
        assert!(!again.made);
        let _ = fs::remove_dir_all(&d);
    }
}
