//! Result folders: `summary.csv` (a row per run and group, written when a run ends),
//! `timeseries.csv` (written while a run runs, through its sink: `stream`),
//! `latency.csv` (spooled while a run runs, joined with its CFS periods when it ends),
//! `duty.csv` (written while a run runs, through its sink),
//! `phases.csv` (a run with changes, between them), the probes' tables, the workloads' own output (`workload/`), and `run.json`
//! (the host, the plan, and each finished run's summary and outcome; written when the
//! folder is made and rewritten, atomically, after every run, `complete: false` until
//! the end).
//!
//! A folder is written by one run only: a default folder is made new (never reused), and
//! every folder is locked while written. A run whose write fails (a full disk) loses only
//! that run: each file is cut back to the end of the run before.

use super::files::appender::Appender;
use super::files::csv_file::CsvFile;
use super::files::probes::Tagged;
use super::files::run_json::{self, RunJson, RunJsonEntry, SCHEMA_VERSION};
use super::files::{duty, latency, timeseries};
use super::folder::{FolderLock, ResultFolder, ResultsError};
use super::join::{join, JoinGroup, Series, Split};
use super::stream::{workload_file, Failure, RunWriter, SharedAppender, SharedSpool, Spool};
use super::summary::phases::{self, PhaseSpec};
use super::summary::window::scan;
use super::summary::{group_specs, summarize, SummaryRow};
use crate::result::RunResult;
use crate::runner::Stream;
use crate::sample::Host;
use crate::scenario::{Plan, PlannedRun};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Writes one result folder.
pub struct ResultWriter {
    dir: PathBuf,
    created: String,
    host: Host,
    /// Held while the folder is written: another run is refused it.
    _lock: FolderLock,
    summary: CsvFile,
    timeseries: Appender,
    /// Rows are appended when a run ends, from its spool.
    latency: Appender,
    /// The workloads' duty on-periods, appended as they come (on the output reader's
    /// thread, hence shared).
    duty: SharedAppender,
    /// The current run's latency rows, until it ends.
    spool: Option<SharedSpool>,
    /// Probe tables (steal.csv, gaps.csv, ...), opened when a probe first reports.
    probe_files: std::collections::BTreeMap<&'static str, CsvFile>,
    /// Each finished run's summary rows and result (small: no samples), for run.json.
    runs: Vec<(Vec<SummaryRow>, RunResult)>,
    /// The first write of the current run that failed.
    failed: Failure,
}

impl ResultWriter {
    /// Open the files of `folder` with their headers and write run.json (host, plan, no
    /// run yet), so even a folder whose first run is killed says what it is. If that
    /// fails and this run made the folder, the folder goes again, so a run that cannot
    /// start leaves nothing.
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
            summary.add(false, |w| w.write_record(SummaryRow::header(&plan.swept)))?;
            summary.write()?;
            summary.commit();
            let mut appenders = Vec::new();
            for (name, header) in [
                ("timeseries.csv", timeseries::header()),
                ("latency.csv", latency::header()),
                ("duty.csv", duty::header()),
            ] {
                let mut a = Appender::create(&dir.join(name))?;
                a.row(|b| b.write_all(header.as_bytes()))
                    .and_then(|_| a.sync())
                    .map_err(|e| a.error(e))?;
                a.commit();
                appenders.push(a);
            }
            let duty = appenders.pop().expect("three");
            let latency = appenders.pop().expect("three");
            let timeseries = appenders.pop().expect("three");
            Ok((summary, timeseries, latency, duty))
        })();
        let (summary, timeseries, latency, duty) = match opened {
            Ok(x) => x,
            Err(e) => {
                if made {
                    let _ = fs::remove_dir_all(&dir);
                }
                return Err(e);
            }
        };
        let w = ResultWriter {
            dir,
            created,
            host,
            _lock: lock,
            summary,
            timeseries,
            latency,
            duty: Arc::new(Mutex::new(duty)),
            spool: None,
            probe_files: Default::default(),
            runs: Vec::new(),
            failed: Arc::new(Mutex::new(None)),
        };
        if let Err(e) = w.write_json(plan, false) {
            if made {
                let _ = fs::remove_dir_all(&w.dir);
            }
            return Err(e);
        }
        Ok(w)
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

    /// The sink of planned run `run`, to hand to the runner: its samples, its
    /// workloads' output and its load's requests go to the files as they come.
    pub fn begin_run(&mut self, run: &PlannedRun) -> Result<RunWriter<'_>, ResultsError> {
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let spool = Arc::new(Mutex::new(Spool::create(&self.dir, run.index)?));
        self.spool = Some(spool.clone());
        Ok(RunWriter::new(
            run,
            self.host.clock_ticks_per_s,
            self.dir.clone(),
            &mut self.timeseries,
            spool,
            Some(self.duty.clone()),
            self.failed.clone(),
        ))
    }

    /// The run the runner just finished: its rows go to disk, its summary (computed from
    /// what was written) to summary.csv, its probe tables and run.json are written.
    /// Returns its summary rows (one per group). All or nothing: if a write fails (a
    /// full disk), every file is cut back to the previous run and run.json is left as
    /// it was (`complete: false`).
    pub fn end_run(
        &mut self,
        plan: &Plan,
        result: RunResult,
    ) -> Result<Vec<SummaryRow>, ResultsError> {
        let done = self.finish(plan, result);
        match done {
            Ok(rows) => {
                self.commit();
                Ok(rows)
            }
            Err(e) => {
                self.rollback(None);
                Err(e)
            }
        }
    }

    /// The run failed (the runner's error): its rows are cut back. Returns the write
    /// that failed, when that is why the run stopped (a full disk).
    pub fn abort_run(&mut self, run: &PlannedRun) -> Option<ResultsError> {
        self.rollback(Some(run));
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn finish(&mut self, plan: &Plan, result: RunResult) -> Result<Vec<SummaryRow>, ResultsError> {
        if let Some(e) = self.failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        self.timeseries
            .sync()
            .map_err(|e| self.timeseries.error(e))?;
        let specs = group_specs(&result);
        let splits = self.join_latency(&result, &specs)?;
        self.latency.sync().map_err(|e| self.latency.error(e))?;
        {
            let mut d = self.duty.lock().unwrap_or_else(|p| p.into_inner());
            d.sync().map_err(|e| d.error(e))?;
        }
        let (windows, shares) = (|| {
            let mut head = csv::Reader::from_reader(self.timeseries.reader_from(0)?);
            let header = head.byte_headers()?.clone();
            let rows = self.timeseries.reader_from(self.timeseries.run_start())?;
            scan(&header, rows, result.planned.index, &specs)
        })()
        .map_err(|e| ResultsError::Io {
            path: self.timeseries.path.clone(),
            error: std::io::Error::other(e),
        })?;
        let rows = summarize(&plan.scenario.name, &result, &windows, shares, &splits);
        self.summary.add(false, |w| {
            rows.iter().try_for_each(|row| w.write_record(row.values()))
        })?;
        self.probe_tables(&result)?;
        self.phase_table(&result, &specs)?;
        for f in self.csv_files() {
            f.write()?;
        }
        self.runs.push((rows.clone(), result));
        if let Err(e) = self.write_json(plan, false) {
            self.runs.pop();
            return Err(e);
        }
        Ok(rows)
    }

    /// Append the run's spooled latency rows to latency.csv with their CFS periods;
    /// returns each group's latencies split by throttled periods.
    fn join_latency(
        &mut self,
        result: &RunResult,
        specs: &[super::summary::window::GroupSpec],
    ) -> Result<Vec<Option<Split>>, ResultsError> {
        let Some(spool) = self.spool.clone() else {
            return Ok(vec![None; result.groups.len()]);
        };
        let path = {
            let mut s = spool.lock().unwrap_or_else(|p| p.into_inner());
            s.flush()?;
            s.path.clone()
        };
        let period_s = result
            .planned
            .limiter
            .cfs_period_us()
            .map(|p| p as f64 / 1e6);
        let groups: Vec<JoinGroup> = result
            .groups
            .iter()
            .zip(specs)
            .map(|(g, spec)| JoinGroup {
                name: g.name.clone(),
                zero_s: spec.zero_s.or(Some(0.0)),
                load_zero_s: result
                    .load
                    .as_ref()
                    .filter(|l| l.group == g.name)
                    .and_then(|l| l.zero_s),
                period_s: period_s.filter(|_| g.counters.bandwidth),
            })
            .collect();
        let ts = &self.timeseries;
        let ts_io = |e: std::io::Error| ts.error(e);
        let mut head = csv::Reader::from_reader(ts.reader_from(0).map_err(ts_io)?);
        let header = head
            .byte_headers()
            .map_err(|e| ts.error(std::io::Error::other(e)))?
            .clone();
        let pass1 = ts.reader_from(ts.run_start()).map_err(ts_io)?;
        let pass2 = ts.reader_from(ts.run_start()).map_err(ts_io)?;
        let series = Series {
            header: &header,
            pass1,
            pass2,
            run: result.planned.index,
            interval_s: result.planned.sample_interval.as_secs_f64(),
        };
        join(series, &path, &groups, &mut self.latency)
    }

    fn csv_files(&mut self) -> impl Iterator<Item = &mut CsvFile> {
        std::iter::once(&mut self.summary).chain(self.probe_files.values_mut())
    }

    fn commit(&mut self) {
        for f in self.csv_files() {
            f.commit();
        }
        self.timeseries.commit();
        self.latency.commit();
        self.duty.lock().unwrap_or_else(|p| p.into_inner()).commit();
        self.remove_spool();
    }

    /// The current run's spool goes (its rows are in latency.csv, or the run is cut).
    fn remove_spool(&mut self) {
        if let Some(s) = self.spool.take() {
            let path = s.lock().unwrap_or_else(|p| p.into_inner()).path.clone();
            let _ = fs::remove_file(path);
        }
    }

    /// Cut every file back to the end of the last whole run; `run`'s workload output
    /// files go too.
    fn rollback(&mut self, run: Option<&PlannedRun>) {
        for f in self.csv_files() {
            f.rollback();
        }
        self.timeseries.rollback();
        self.latency.rollback();
        self.duty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .rollback();
        self.remove_spool();
        // A probe table that this run opened goes again.
        self.probe_files.retain(|_, f| {
            let keep = f.committed > 0;
            if !keep {
                let _ = fs::remove_file(&f.path);
            }
            keep
        });
        if let Some(run) = run {
            for g in &run.groups {
                for s in [Stream::Stdout, Stream::Stderr] {
                    let _ = fs::remove_file(workload_file(&self.dir, run.index, &g.name, s));
                }
            }
        }
    }

    /// Put a run's probe rows in the probe tables' pending bytes.
    fn probe_tables(&mut self, result: &RunResult) -> Result<(), ResultsError> {
        let run = result.planned.index;
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
        if let Some(w) = &result.limiter.window {
            // The window counts the run's whole cgroup: every group together.
            let group = match result.groups.as_slice() {
                [g] => g.name.as_str(),
                _ => "all",
            };
            self.probe_rows("window.csv", run, group, &w.rows(result.t0_monotonic_ns))?;
        }
        Ok(())
    }

    /// A run with changes: each group's counters between them, in phases.csv.
    fn phase_table(
        &mut self,
        result: &RunResult,
        specs: &[super::summary::window::GroupSpec],
    ) -> Result<(), ResultsError> {
        if result.changes.is_empty() {
            return Ok(());
        }
        let spec = PhaseSpec {
            groups: specs.iter().map(|g| (g.name.as_str(), g.zero_s)).collect(),
            changes: result
                .changes
                .iter()
                .map(|c| {
                    let what = crate::scenario::show::limit_text(&c.limit);
                    let mut text = match c.group.as_str() {
                        "" => what,
                        g => format!("{g}: {what}"),
                    };
                    if let Some(e) = &c.error {
                        text.push_str(&format!(" (FAILED: {e})"));
                    }
                    (c.applied_s, text)
                })
                .collect(),
        };
        let rows = (|| {
            let mut head = csv::Reader::from_reader(self.timeseries.reader_from(0)?);
            let header = head.byte_headers()?.clone();
            let rows = self.timeseries.reader_from(self.timeseries.run_start())?;
            phases::scan(&header, rows, result.planned.index, &spec)
        })()
        .map_err(|e| ResultsError::Io {
            path: self.timeseries.path.clone(),
            error: std::io::Error::other(e),
        })?;
        self.table("phases.csv")?
            .add(true, |w| rows.iter().try_for_each(|r| w.serialize(r)))
    }

    /// The table `name` (phases.csv, a probe's), opened with its header the first time.
    fn table(&mut self, name: &'static str) -> Result<&mut CsvFile, ResultsError> {
        if !self.probe_files.contains_key(name) {
            let f = CsvFile::create(self.dir.join(name))?;
            self.probe_files.insert(name, f);
        }
        Ok(self.probe_files.get_mut(name).expect("just inserted"))
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
        self.table(name)?.add(true, |w| {
            for r in rows {
                let mut r = r.clone();
                r.tag(run, group);
                w.serialize(&r)?;
            }
            Ok(())
        })
    }

    /// Rewrite run.json with every run written so far; `complete` says whether every
    /// planned run is in.
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
        run_json::write(&self.dir, &doc)
    }
}
