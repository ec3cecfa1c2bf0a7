//! Where a run's data goes while it runs. The runner hands every tick's samples and every
//! line its workloads write to a sink as they come, so nothing grows with the run's
//! length; the report layer's sink writes them to the result folder's files.

use crate::load::RequestRecord;
use crate::sample::cpustat::Has;
use crate::sample::{Sample, SystemHas};
use fibtest::record::{DutyPeriod, UnitLatency};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Which stream of a workload a text line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The sampler's side of a run's data (called on the sampler's thread; an
/// implementation must not allocate per call, and should flush at least once a second
/// of sample time).
pub trait RunSink {
    /// Before `begin`: the folder of each group's cgroup (its cpu controller's), in the
    /// plan's order; empty for a run measured from /proc. For sinks that label what they
    /// keep with it; the others ignore it.
    fn cgroups(&mut self, _dirs: &[&Path]) {}
    /// Before the first tick: which counters each group's cgroup reports (in the plan's
    /// order), and which system-wide ones.
    fn begin(&mut self, counters: &[Has], system: SystemHas) -> io::Result<()>;
    /// Every tick: one sample per group, in the plan's order, stamped with ns since the
    /// run's first sample. An error stops the run.
    fn tick(&mut self, samples: &[Sample]) -> io::Result<()>;
    /// The sink for the workloads' output, handed to the thread that reads their pipes.
    fn output(&mut self) -> io::Result<Box<dyn OutputSink>>;
    /// The sink for a `[load]`'s requests, handed to the load's thread.
    fn requests(&mut self) -> io::Result<Box<dyn RequestSink>>;
    /// Group `group`'s own CFS quota, in CPUs (None: none), from the next tick on: set
    /// before the first tick and whenever a change sets it.
    fn limit(&mut self, _group: usize, _cpus: Option<f64>) -> io::Result<()> {
        Ok(())
    }
}

/// A load's side of a run's data (called on the load's thread, in batches).
pub trait RequestSink: Send {
    /// A request to group `group`'s service ended (times since the load's time zero).
    fn request(&mut self, group: usize, r: &RequestRecord) -> io::Result<()>;
    /// Push what is buffered to the files; called at the end.
    fn flush(&mut self) -> io::Result<()>;
}

/// The workloads' side of a run's data (called on the thread that reads their output).
pub trait OutputSink: Send {
    /// A unit of work that group `group` reported.
    fn unit(&mut self, group: usize, unit: &UnitLatency) -> io::Result<()>;
    /// A duty on-period that group `group` reported.
    fn duty(&mut self, group: usize, period: &DutyPeriod) -> io::Result<()>;
    /// A line of a group's output that is not a record (stdout), or of its stderr.
    fn text(&mut self, group: usize, stream: Stream, line: &[u8]) -> io::Result<()>;
    /// Push what is buffered to the files; called at least once a second while output
    /// flows, and at the end.
    fn flush(&mut self) -> io::Result<()>;
}

/// A sink that keeps nothing: for runs whose data nobody stores (a threshold search's
/// probes read only the summary of the output).
pub struct Discard;

impl RunSink for Discard {
    fn begin(&mut self, _: &[Has], _: SystemHas) -> io::Result<()> {
        Ok(())
    }
    fn tick(&mut self, _: &[Sample]) -> io::Result<()> {
        Ok(())
    }
    fn output(&mut self) -> io::Result<Box<dyn OutputSink>> {
        Ok(Box::new(Discard))
    }
    fn requests(&mut self) -> io::Result<Box<dyn RequestSink>> {
        Ok(Box::new(Discard))
    }
}

/// A sink that keeps a run's duty on-periods in memory and nothing else: for a search's
/// short probes, whose periods it reads when the probe ends.
pub struct DutyKept(pub Arc<Mutex<Vec<DutyPeriod>>>);

impl OutputSink for DutyKept {
    fn unit(&mut self, _: usize, _: &UnitLatency) -> io::Result<()> {
        Ok(())
    }
    fn duty(&mut self, _: usize, period: &DutyPeriod) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(period.clone());
        Ok(())
    }
    fn text(&mut self, _: usize, _: Stream, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl RequestSink for Discard {
    fn request(&mut self, _: usize, _: &RequestRecord) -> io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl OutputSink for Discard {
    fn unit(&mut self, _: usize, _: &UnitLatency) -> io::Result<()> {
        Ok(())
    }
    fn duty(&mut self, _: usize, _: &DutyPeriod) -> io::Result<()> {
        Ok(())
    }
    fn text(&mut self, _: usize, _: Stream, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
