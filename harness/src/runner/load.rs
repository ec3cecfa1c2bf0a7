//! A run's `[load]` while it runs: the generator on a thread of its own (outside the
//! run's cgroups, on the CPUs the workloads do not pin), its records handed to the run's
//! sink, and its end noticed by the sampler's loop, which then ends the run.

use super::sink::RequestSink;
use crate::load::{self, Arrivals, LoadError, LoadReport, LoadSpec, Target};
use crate::result::LoadResult;
use crate::scenario::{LoadPlan, PlannedRun};
use anyhow::{Context, Result};
use fibtest::cpulist::CpuList;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The port a run's service listens on: a free loopback port when the load's target
/// says `{port}`.
pub(super) fn pick_port(run: &PlannedRun) -> Result<Option<u16>> {
    match &run.load {
        Some(l) if l.picks_port() => Ok(Some(
            load::free_loopback_port().context("finding a free loopback port for the service")?,
        )),
        _ => Ok(None),
    }
}

/// The generator's spec for run `run` of `plan` on `port`, pinned to the load's CPUs, or
/// else to `spare` CPUs when there are any.
pub(super) fn spec(
    plan: &LoadPlan,
    run: &PlannedRun,
    port: Option<u16>,
    spare: Option<&CpuList>,
) -> Result<LoadSpec> {
    let target = Target::with_port(&plan.target, port.unwrap_or(0))?;
    let mut s = LoadSpec::new(target, plan.rate, plan.duration.0);
    s.body = plan.body.as_ref().map(|b| b.as_bytes().to_vec());
    s.headers = plan.headers.clone();
    s.arrivals = match plan.poisson {
        Some(seed) => Arrivals::Poisson {
            seed: seed.wrapping_add(run.index as u64),
        },
        None => Arrivals::Constant,
    };
    s.connections = plan.connections;
    s.warmup = plan.warmup.0;
    s.timeout = plan.timeout.0;
    s.port_wait = plan.port_wait.0;
    let cpus = plan.cpus.as_ref().or(spare);
    let n = cpus.map(|c| c.len() as u32).unwrap_or(1).max(1);
    s.threads = plan.threads.unwrap_or(n.min(plan.connections)).max(1);
    s.cpus = cpus.cloned();
    Ok(s)
}

pub(super) struct LiveLoad {
    group: String,
    port: Option<u16>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<LoadReport, LoadError>>>,
    /// Why it was stopped before its schedule was done.
    cut: Option<String>,
}

impl LiveLoad {
    /// Start the load `spec` against group `group`'s service; its records go to `sink`.
    pub(super) fn start(
        spec: LoadSpec,
        group: usize,
        name: &str,
        port: Option<u16>,
        mut sink: Box<dyn RequestSink>,
    ) -> Result<LiveLoad> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("load".into())
            .spawn(move || {
                let r = load::run(&spec, &flag, |rec| sink.request(group, rec));
                let flushed = sink.flush();
                match (r, flushed) {
                    (Ok(report), Ok(())) => Ok(report),
                    (Ok(_), Err(e)) => Err(LoadError::Sink(e)),
                    (Err(e), _) => Err(e),
                }
            })
            .context("starting the load generator's thread")?;
        Ok(LiveLoad {
            group: name.to_string(),
            port,
            stop,
            handle: Some(handle),
            cut: None,
        })
    }

    /// Whether the load has ended (its schedule done, or it could not run).
    pub(super) fn done(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stop the load before its schedule is done, saying why.
    pub(super) fn cut(&mut self, why: &str) {
        if !self.done() && self.cut.is_none() {
            self.cut = Some(why.to_string());
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Wait for the load's thread; `t0` is the run's time zero (CLOCK_MONOTONIC ns).
    /// Returns what it did, and whether the service never opened its port.
    pub(super) fn finish(mut self, t0: u64) -> (LoadResult, Option<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let joined = self.handle.take().map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(LoadError::Spec(
                    "the load generator's thread panicked".into(),
                ))
            })
        });
        let mut never_opened = None;
        let (report, error) = match joined {
            Some(Ok(r)) => (Some(r), self.cut.clone()),
            Some(Err(LoadError::PortNeverOpened(e))) => {
                never_opened = Some(e.to_string());
                (None, Some(e.to_string()))
            }
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, self.cut.clone()),
        };
        let zero_s = report
            .as_ref()
            .map(|r| (r.start_monotonic_ns as i128 - t0 as i128) as f64 / 1e9);
        (
            LoadResult {
                group: self.group.clone(),
                port: self.port,
                zero_s,
                report,
                error,
            },
            never_opened,
        )
    }
}

impl Drop for LiveLoad {
    /// A run that ends by an error still stops and joins its load.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
