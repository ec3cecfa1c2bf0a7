//! Writing a run as it runs: the sampler's ticks become timeseries.csv rows; the
//! workloads' units and the load's requests become rows of the run's latency spool
//! (joined with their CFS periods into latency.csv when the run ends); their duty
//! on-periods become duty.csv rows; the workloads' other output goes to files of their
//! own (`workload/run<N>-<group>.stdout` and `.stderr`). Everything is buffered in fixed
//! buffers and written at least once a second, so memory does not grow with the run and
//! a run killed even by SIGKILL keeps all but its last second.

use super::files::appender::Appender;
use super::files::{duty, latency, timeseries};
use super::folder::ResultsError;
use crate::clock::monotonic_ns;
use crate::load::RequestRecord;
use crate::runner::{OutputSink, RequestSink, RunSink, Stream};
use crate::sample::cpustat::Has;
use crate::sample::{Delta, Sample, SystemHas};
use crate::scenario::PlannedRun;
use fibtest::record::{DutyPeriod, UnitLatency};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The first write that failed, shared by the sampler's and the output reader's side.
pub(crate) type Failure = Arc<Mutex<Option<ResultsError>>>;

fn fail(failed: &Failure, e: ResultsError) -> io::Error {
    let text = e.to_string();
    let mut f = failed.lock().unwrap_or_else(|p| p.into_inner());
    if f.is_none() {
        *f = Some(e);
    }
    io::Error::other(text)
}

/// The folder for the workloads' own output.
pub(crate) fn workload_dir(dir: &Path) -> PathBuf {
    dir.join("workload")
}

/// The file of group `group`'s `stream` in run `run`.
pub(crate) fn workload_file(dir: &Path, run: usize, group: &str, stream: Stream) -> PathBuf {
    let ext = match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    };
    workload_dir(dir).join(format!("run{run}-{group}.{ext}"))
}

/// A run's latency rows before their periods are known: a file of its own, shared by
/// the thread that reads the workloads' output and the load's.
pub(crate) struct Spool {
    pub(crate) path: PathBuf,
    file: BufWriter<File>,
    /// A row at a time, reused.
    row: Vec<u8>,
    flushed_at_ns: u64,
}

impl Spool {
    /// Make run `run`'s spool in `dir`, with its header.
    pub(crate) fn create(dir: &Path, run: usize) -> Result<Spool, ResultsError> {
        let path = latency::spool_path(dir, run);
        let mut file = BufWriter::with_capacity(
            1 << 16,
            File::create(&path).map_err(ResultsError::io(&path))?,
        );
        file.write_all(latency::spool_header().as_bytes())
            .map_err(ResultsError::io(&path))?;
        Ok(Spool {
            path,
            file,
            row: Vec::with_capacity(256),
            flushed_at_ns: monotonic_ns(),
        })
    }

    fn write(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> Result<(), ResultsError> {
        self.row.clear();
        let path = &self.path;
        fill(&mut self.row)
            .and_then(|_| self.file.write_all(&self.row))
            .map_err(ResultsError::io(path))?;
        let now = monotonic_ns();
        if now - self.flushed_at_ns >= 1_000_000_000 {
            self.flushed_at_ns = now;
            self.flush()?;
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> Result<(), ResultsError> {
        self.file.flush().map_err(ResultsError::io(&self.path))
    }
}

pub(crate) type SharedSpool = Arc<Mutex<Spool>>;

/// A file the sampler's side owns and the output reader's side appends to.
pub(crate) type SharedAppender = Arc<Mutex<Appender>>;

fn spool_write(
    spool: &SharedSpool,
    failed: &Failure,
    fill: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    let mut s = spool.lock().unwrap_or_else(|p| p.into_inner());
    s.write(fill).map_err(|e| fail(failed, e))
}

/// The sampler's side of one run.
pub struct RunWriter<'w> {
    pub(crate) run: usize,
    pub(crate) names: Vec<String>,
    pub(crate) ticks_per_s: u64,
    pub(crate) dir: PathBuf,
    pub(crate) timeseries: &'w mut Appender,
    pub(crate) spool: SharedSpool,
    /// duty.csv (none for a watch, which runs no workload).
    pub(crate) duty: Option<SharedAppender>,
    /// The kind of the load's rows: its protocol ("http", "line").
    pub(crate) load_kind: &'static str,
    pub(crate) failed: Failure,
    counters: Vec<Has>,
    system: SystemHas,
    /// Each group's own CFS quota in CPUs, as last set.
    limits: Vec<Option<f64>>,
    /// The previous tick's samples (one per group), for the changes.
    prev: Vec<Sample>,
    first: bool,
    /// Sample time of the last write to the file, in ns.
    flushed_at_ns: u64,
    /// Rows go to the file when this much sample time has passed since the last write.
    flush_every_ns: u64,
}

impl<'w> RunWriter<'w> {
    pub(crate) fn new(
        run: &PlannedRun,
        ticks_per_s: u64,
        dir: PathBuf,
        timeseries: &'w mut Appender,
        spool: SharedSpool,
        duty: Option<SharedAppender>,
        failed: Failure,
    ) -> RunWriter<'w> {
        RunWriter {
            run: run.index,
            names: run.groups.iter().map(|g| g.name.clone()).collect(),
            ticks_per_s,
            dir,
            timeseries,
            spool,
            duty,
            load_kind: match &run.load {
                Some(l) if l.target.starts_with("tcp://") => "line",
                _ => "http",
            },
            failed,
            counters: Vec::new(),
            system: SystemHas::default(),
            limits: Vec::new(),
            prev: Vec::new(),
            first: true,
            flushed_at_ns: 0,
            flush_every_ns: 1_000_000_000,
        }
    }

    /// A writer of run `run` whose groups come with `add_group` (a watch's, which has no
    /// plan and no load).
    pub(crate) fn for_groups(
        run: usize,
        ticks_per_s: u64,
        dir: PathBuf,
        timeseries: &'w mut Appender,
        spool: SharedSpool,
        failed: Failure,
    ) -> RunWriter<'w> {
        RunWriter {
            run,
            names: Vec::new(),
            ticks_per_s,
            dir,
            timeseries,
            spool,
            duty: None,
            load_kind: "http",
            failed,
            counters: Vec::new(),
            system: SystemHas::default(),
            limits: Vec::new(),
            prev: Vec::new(),
            first: true,
            flushed_at_ns: 0,
            flush_every_ns: 1_000_000_000,
        }
    }

    /// Write the rows to the file every `ns` of sample time (0: every tick) instead of
    /// every second: a watch loses at most one interval if it is killed.
    pub fn flush_every(&mut self, ns: u64) {
        self.flush_every_ns = ns;
    }

    /// A group sampled from now on (a watched cgroup that appeared), at the end of the
    /// order: `first` is its first sample (the baseline of its first row), `has` which
    /// counters its cgroup reports. Allocates; ticks after it do not.
    pub fn add_group(&mut self, name: String, has: Has, first: &Sample) {
        self.names.push(name);
        self.counters.push(has);
        self.prev.push(*first);
        self.limits.resize(self.names.len(), None);
    }

    /// Group `g` is no longer sampled (its cgroup went); the groups after it move down.
    /// Its rows so far stay in the file.
    pub fn remove_group(&mut self, g: usize) {
        self.names.remove(g);
        self.counters.remove(g);
        self.prev.remove(g);
        if g < self.limits.len() {
            self.limits.remove(g);
        }
    }

    /// Write what is buffered to the file now.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Err(e) = self.timeseries.flush() {
            let e = self.timeseries.error(e);
            return Err(fail(&self.failed, e));
        }
        Ok(())
    }
}

impl RunSink for RunWriter<'_> {
    fn begin(&mut self, counters: &[Has], system: SystemHas) -> io::Result<()> {
        self.counters = counters.to_vec();
        self.system = system;
        self.prev = vec![Sample::default(); counters.len()];
        self.first = true;
        Ok(())
    }

    fn tick(&mut self, samples: &[Sample]) -> io::Result<()> {
        if self.first {
            self.prev.copy_from_slice(samples);
            self.first = false;
            return Ok(());
        }
        let (run, ticks, system) = (self.run, self.ticks_per_s, self.system);
        for (g, s) in samples.iter().enumerate() {
            let d = Delta::between(&self.prev[g], s, ticks);
            let t_s = s.t_ns as f64 / 1e9;
            let (name, has) = (&self.names[g], self.counters[g]);
            let limit = self.limits.get(g).copied().flatten();
            let written = self
                .timeseries
                .row(|b| timeseries::write_row(b, run, name, t_s, &d, has, system, limit));
            if let Err(e) = written {
                let e = self.timeseries.error(e);
                return Err(fail(&self.failed, e));
            }
            self.prev[g] = *s;
        }
        let now = samples.first().map(|s| s.t_ns).unwrap_or(0);
        if now.saturating_sub(self.flushed_at_ns) >= self.flush_every_ns {
            self.flushed_at_ns = now;
            self.flush()?;
        }
        Ok(())
    }

    fn output(&mut self) -> io::Result<Box<dyn OutputSink>> {
        Ok(Box::new(OutputFiles {
            run: self.run,
            names: self.names.clone(),
            dir: self.dir.clone(),
            spool: self.spool.clone(),
            duty: self.duty.clone(),
            text: BTreeMap::new(),
            failed: self.failed.clone(),
            flushed_at_ns: monotonic_ns(),
        }))
    }

    fn limit(&mut self, group: usize, cpus: Option<f64>) -> io::Result<()> {
        if self.limits.len() <= group {
            self.limits.resize(group + 1, None);
        }
        self.limits[group] = cpus;
        Ok(())
    }

    fn requests(&mut self) -> io::Result<Box<dyn RequestSink>> {
        Ok(Box::new(RequestRows {
            run: self.run,
            names: self.names.clone(),
            kind: self.load_kind,
            spool: self.spool.clone(),
            failed: self.failed.clone(),
        }))
    }
}

/// The load's side of one run (on the load's thread).
struct RequestRows {
    run: usize,
    names: Vec<String>,
    kind: &'static str,
    spool: SharedSpool,
    failed: Failure,
}

impl RequestSink for RequestRows {
    fn request(&mut self, group: usize, r: &RequestRecord) -> io::Result<()> {
        let (run, kind, name) = (self.run, self.kind, &self.names[group]);
        spool_write(&self.spool, &self.failed, |b| {
            latency::write_request(b, run, name, kind, r)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut s = self.spool.lock().unwrap_or_else(|p| p.into_inner());
        s.flush().map_err(|e| fail(&self.failed, e))
    }
}

/// The workloads' side of one run (on the output reader's thread).
struct OutputFiles {
    run: usize,
    names: Vec<String>,
    dir: PathBuf,
    spool: SharedSpool,
    duty: Option<SharedAppender>,
    /// Each group's and stream's text file, made when it first has a line.
    text: BTreeMap<(usize, u8), (PathBuf, BufWriter<File>)>,
    failed: Failure,
    flushed_at_ns: u64,
}

impl OutputSink for OutputFiles {
    fn unit(&mut self, group: usize, unit: &UnitLatency) -> io::Result<()> {
        let (run, name) = (self.run, &self.names[group]);
        spool_write(&self.spool, &self.failed, |b| {
            latency::write_unit(b, run, name, unit)
        })
    }

    fn duty(&mut self, group: usize, period: &DutyPeriod) -> io::Result<()> {
        let Some(file) = &self.duty else {
            return Ok(());
        };
        let (run, name) = (self.run, &self.names[group]);
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        f.row(|b| duty::write_row(b, run, name, period))
            .map_err(|e| {
                let e = f.error(e);
                fail(&self.failed, e)
            })
    }

    fn text(&mut self, group: usize, stream: Stream, line: &[u8]) -> io::Result<()> {
        let key = (group, stream as u8);
        if !self.text.contains_key(&key) {
            let path = workload_file(&self.dir, self.run, &self.names[group], stream);
            let made =
                std::fs::create_dir_all(workload_dir(&self.dir)).and_then(|_| File::create(&path));
            match made {
                Ok(f) => {
                    self.text.insert(key, (path, BufWriter::new(f)));
                }
                Err(e) => return Err(fail(&self.failed, ResultsError::io(&path)(e))),
            }
        }
        let (path, w) = self.text.get_mut(&key).expect("just made");
        if let Err(e) = w.write_all(line).and_then(|_| w.write_all(b"\n")) {
            let e = ResultsError::io(path)(e);
            return Err(fail(&self.failed, e));
        }
        let now = monotonic_ns();
        if now - self.flushed_at_ns >= 1_000_000_000 {
            self.flushed_at_ns = now;
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        {
            let mut s = self.spool.lock().unwrap_or_else(|p| p.into_inner());
            s.flush().map_err(|e| fail(&self.failed, e))?;
        }
        if let Some(file) = &self.duty {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = f.flush() {
                let e = f.error(e);
                return Err(fail(&self.failed, e));
            }
        }
        for (path, w) in self.text.values_mut() {
            if let Err(e) = w.flush() {
                let e = ResultsError::io(path)(e);
                return Err(fail(&self.failed, e));
            }
        }
        Ok(())
    }
}
