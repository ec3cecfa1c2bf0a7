//! Result folders: `summary.csv`, `timeseries.csv`, `latency.csv` (appended and written to
//! disk run by run, so an interrupted or failed run keeps what it measured) and `run.json`
//! (rewritten after every run with everything so far, `complete: false` until the end).
//!
//! A folder is written by one run only: a default folder is made new (never reused), and
//! every folder is locked while written. A run whose write fails (a full disk) loses only
//! that run: each file is cut back to the end of the run before.

use super::files::csv_file::CsvFile;
use super::files::probes::Tagged;
use super::files::run_json::{self, RunJson, RunJsonEntry, SCHEMA_VERSION};
use super::files::{latency, timeseries};
use super::folder::{FolderLock, ResultFolder, ResultsError};
use super::summary::{summarize, SummaryRow};
use crate::result::RunResult;
use crate::sample::Host;
use crate::scenario::Plan;
use std::fs;
use std::path::{Path, PathBuf};

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
                    timeseries::COLUMNS.iter().map(|c| c.to_string()).collect(),
                ),
                // Written by hand so a run without units still gets a header.
                (
                    &mut latency,
                    latency::COLUMNS.iter().map(|c| c.to_string()).collect(),
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
        self.timeseries
            .add(false, |w| timeseries::write_run(w, result, ticks))?;
        self.latency.add(false, |w| latency::write_run(w, result))?;
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
