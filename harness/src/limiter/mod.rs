//! Limiters: what holds a workload back. Kernel settings (cfs, weight, cpuset) are applied
//! to the cgroup before the workload starts (`apply`); duty cycles (freezer, signal) run
//! as a control loop on their own thread while it runs, and an external command runs
//! beside it (`ActiveLimiter`). `leaks` checks what a limiter left behind.

pub mod command;
pub mod credits;
pub mod duty;
pub mod signal;

use crate::cgroup::{Cgroup, CgroupError, FreezerHandle};
use crate::clock::{monotonic_ns, sleep_until};
use crate::process::procs;
use crate::sample::file::{parse_u64, RereadFile};
use crate::scenario::plan::{DutyControl, GroupLimit, Limiter, PlannedRun, Weight};
use crate::scenario::schema::SignalBy;
use duty::{Actuator, Clock, CpuUsage, DutyStats};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Apply the kernel settings of `run`'s limiter to its cgroup (and weights to groups).
pub fn apply(run: &PlannedRun, cg: &Cgroup, groups: &[&Cgroup]) -> Result<(), CgroupError> {
    match &run.limiter {
        Limiter::Cfs(c) => cg.set_cfs(c),
        Limiter::Cpuset { cpus } => cg.set_cpus(&cpus.to_string()),
        Limiter::Weight => {
            for (g, plan) in groups.iter().zip(&run.groups) {
                g.set_weight(plan.weight.unwrap_or(100))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Put a group's own settings (`limit = { ... }`, or a change of them) on its cgroup:
/// CFS bandwidth, a weight (v2 units, or v1 shares as a Kubernetes request gives them),
/// a CPU set.
pub fn apply_group_limit(cg: &Cgroup, l: &GroupLimit) -> Result<(), CgroupError> {
    if let Some(c) = &l.cfs {
        cg.set_cfs(c)?;
    }
    match l.weight {
        Some(Weight::V2(w)) => cg.set_weight(w)?,
        Some(Weight::Shares(s)) => cg.set_shares(s)?,
        None => {}
    }
    if let Some(c) = &l.cpuset {
        cg.set_cpus(&c.to_string())?;
    }
    Ok(())
}

/// What a limiter did while the workload ran.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LimiterReport {
    /// Duty-cycle limiters: cycles run, time on and off, the workload's CPU rate.
    pub duty: Option<DutyStats>,
    /// Freezer: freezes the kernel had not confirmed within 20 ms.
    pub unconfirmed_freezes: u64,
    /// Command limiters: how the command ended.
    pub command: Option<command::CommandReport>,
    /// Credits: the balance at the start, at every change between held and free, and at the end.
    pub credits: Option<Vec<credits::CreditPoint>>,
    /// An error of the control loop, if it failed.
    pub error: Option<String>,
}

impl LimiterReport {
    /// What went wrong with the limiter, in words: an external command that exited early
    /// or ignored SIGTERM, a control loop that failed. Empty when it did its job.
    pub fn faults(&self) -> Vec<String> {
        let mut f = Vec::new();
        if let Some(c) = self.command.as_ref().and_then(|c| c.fault()) {
            f.push(format!("the limiter command {c}"));
        }
        if let Some(e) = &self.error {
            f.push(format!("the limiter failed: {e}"));
        }
        f
    }
}

/// An external limiter that fails within this time of its start failed to start: the run
/// fails with it, instead of going on unlimited.
pub const EARLY: std::time::Duration = std::time::Duration::from_secs(1);

/// A limiter that acts while the workload runs.
pub struct ActiveLimiter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(io::Result<DutyStats>, u64)>>,
    credits: Option<JoinHandle<io::Result<Vec<credits::CreditPoint>>>>,
    command: Option<command::CommandLimiter>,
}

/// Where the limiter finds the workload.
pub struct Target<'a> {
    /// None for a run without a cgroup (an unprivileged user): only limiters that need
    /// none (signal, command) can run then.
    pub cgroup: Option<&'a Cgroup>,
    /// The first group's main pid (also its process group).
    pub pid: i32,
    pub proc_root: &'a Path,
}

impl ActiveLimiter {
    /// Start the limiter of `run`, if it acts while the workload runs.
    pub fn start(limiter: &Limiter, t: &Target) -> anyhow::Result<Option<ActiveLimiter>> {
        let stop = Arc::new(AtomicBool::new(false));
        let needs_cgroup = || {
            anyhow::anyhow!(
                "the {} limiter needs a cgroup, and this run has none",
                limiter.name()
            )
        };
        let usage: Box<dyn CpuUsage + Send> = match t.cgroup {
            Some(cg) => Box::new(UsageFile::open(cg)?),
            None => {
                let mut u = crate::sample::pidstat::ProcessUsage::default();
                u.arm(t.proc_root, t.pid)?;
                Box::new(u)
            }
        };
        let (duty, actuator): (DutyControl, Box<dyn Actuator + Send>) = match limiter {
            Limiter::Freezer { duty } => (
                *duty,
                Box::new(FreezerActuator {
                    handle: t.cgroup.ok_or_else(needs_cgroup)?.freezer_handle()?,
                    unconfirmed: 0,
                }),
            ),
            Limiter::Signal { by, duty, name } => {
                let name = match (by, name) {
                    (SignalBy::Name, Some(n)) => n.clone(),
                    _ => procs::read(t.proc_root, t.pid)
                        .map(|p| p.name)
                        .unwrap_or_default(),
                };
                (
                    *duty,
                    Box::new(signal::SignalActuator::new(
                        *by,
                        t.pid,
                        name,
                        t.cgroup.map(|c| c.procs_files()).unwrap_or_default(),
                        t.proc_root.to_path_buf(),
                    )),
                )
            }
            Limiter::Command { template, share } => {
                let cmd = crate::scenario::template::substitute(template, t.pid, t.pid, *share);
                return Ok(Some(ActiveLimiter {
                    stop,
                    thread: None,
                    credits: None,
                    command: Some(command::CommandLimiter::start(cmd.clone()).map_err(|e| {
                        anyhow::anyhow!("starting the limiter command `{cmd}`: {e}")
                    })?),
                }));
            }
            Limiter::Credits(model) => {
                let (model, flag) = (*model, stop.clone());
                let mut sink = CfsSink(t.cgroup.ok_or_else(needs_cgroup)?.cfs_handle());
                let mut usage = usage;
                let handle =
                    std::thread::Builder::new()
                        .name("credits".into())
                        .spawn(move || {
                            credits::run(&model, &mut RealClock, usage.as_mut(), &mut sink, &flag)
                        })?;
                return Ok(Some(ActiveLimiter {
                    stop,
                    thread: None,
                    credits: Some(handle),
                    command: None,
                }));
            }
            _ => return Ok(None),
        };
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("limiter".into())
            .spawn(move || {
                let mut actuator = actuator;
                let mut usage = usage;
                let r = duty::run(
                    &duty,
                    &mut RealClock,
                    usage.as_mut(),
                    actuator.as_mut(),
                    &flag,
                );
                let unconfirmed = actuator.unconfirmed();
                (r, unconfirmed)
            })?;
        Ok(Some(ActiveLimiter {
            stop,
            thread: Some(thread),
            credits: None,
            command: None,
        }))
    }

    /// See whether an external command has exited (call after a SIGCHLD): true the
    /// first time it has, when what it left stopped has no owner any more.
    pub fn poll(&mut self) -> bool {
        self.command.as_mut().is_some_and(|c| c.poll())
    }

    /// An external limiter command that failed at once: it exited with a failure code
    /// within `EARLY` of its start (a mistyped command, a missing program), so it never
    /// limited anything. Its status in words and when. One killed by a signal crashed
    /// rather than failed to start: that is a limiter fault, and the run goes on.
    pub fn failed_at_start(&self) -> Option<String> {
        let c = self.command.as_ref()?;
        let (st, after) = c.exited()?;
        (st.code().is_some_and(|c| c != 0) && after <= EARLY).then(|| {
            format!(
                "the limiter command `{}` {} after {:.2}s",
                c.command,
                crate::process::describe_status(Some(st)),
                after.as_secs_f64()
            )
        })
    }

    /// The session of an external limiter command (it runs in one of its own): its
    /// processes are never the workload's.
    pub fn session(&self) -> Option<i32> {
        self.command.as_ref().and_then(|c| c.pid())
    }

    /// Stop the limiter (it leaves the workload running) and report what it did.
    pub fn stop(mut self) -> LimiterReport {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> LimiterReport {
        self.stop.store(true, Ordering::SeqCst);
        let mut report = LimiterReport::default();
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok((Ok(stats), unconfirmed)) => {
                    report.duty = Some(stats);
                    report.unconfirmed_freezes = unconfirmed;
                }
                Ok((Err(e), _)) => report.error = Some(e.to_string()),
                Err(_) => report.error = Some("the limiter thread panicked".into()),
            }
        }
        if let Some(t) = self.credits.take() {
            match t.join() {
                Ok(Ok(points)) => report.credits = Some(points),
                Ok(Err(e)) => report.error = Some(e.to_string()),
                Err(_) => report.error = Some("the credits thread panicked".into()),
            }
        }
        if let Some(c) = self.command.take() {
            report.command = Some(c.stop());
        }
        report
    }
}

impl Drop for ActiveLimiter {
    fn drop(&mut self) {
        if self.thread.is_some() || self.credits.is_some() || self.command.is_some() {
            self.stop_inner();
        }
    }
}

struct CfsSink(crate::cgroup::CfsHandle);

impl credits::QuotaSink for CfsSink {
    fn set(&mut self, limit: &crate::scenario::CfsLimit) -> Result<(), CgroupError> {
        self.0.set(limit)
    }
}

struct FreezerActuator {
    handle: FreezerHandle,
    unconfirmed: u64,
}

impl Actuator for FreezerActuator {
    fn pause(&mut self) -> io::Result<()> {
        self.handle.set(true).map_err(io::Error::other)?;
        // Confirmed through freezer.state / cgroup.events, for at most 20 ms.
        let deadline = monotonic_ns() + 20_000_000;
        while !self.handle.is_frozen().map_err(io::Error::other)? {
            if monotonic_ns() > deadline {
                self.unconfirmed += 1;
                break;
            }
            std::thread::yield_now();
        }
        Ok(())
    }
    fn resume(&mut self) -> io::Result<()> {
        self.handle.set(false).map_err(io::Error::other)
    }
    fn unconfirmed(&self) -> u64 {
        self.unconfirmed
    }
}

/// CLOCK_MONOTONIC and absolute sleeps in slices of at most 20 ms, to see `stop` soon.
struct RealClock;

impl Clock for RealClock {
    fn now_ns(&mut self) -> u64 {
        monotonic_ns()
    }
    fn sleep_until(&mut self, t_ns: u64, stop: &AtomicBool) -> bool {
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let now = monotonic_ns();
            if now >= t_ns {
                return true;
            }
            sleep_until(t_ns.min(now + 20_000_000));
        }
    }
}

impl CpuUsage for crate::sample::pidstat::ProcessUsage {
    fn usage_ns(&mut self) -> io::Result<u64> {
        crate::sample::pidstat::ProcessUsage::usage_ns(self)
    }
}

/// The cgroup's CPU usage, read through one open file.
struct UsageFile {
    file: RereadFile,
    /// v2 keeps usage in cpu.stat as usage_usec.
    v2: bool,
}

impl UsageFile {
    fn open(cg: &Cgroup) -> io::Result<UsageFile> {
        let p: PathBuf = cg.usage_path();
        Ok(UsageFile {
            file: RereadFile::open(&p, 4096)?,
            v2: p.ends_with("cpu.stat"),
        })
    }
}

impl CpuUsage for UsageFile {
    fn usage_ns(&mut self) -> io::Result<u64> {
        let text = self.file.read()?;
        let v = if self.v2 {
            text.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(parse_u64)
                .map(|us| us * 1000)
        } else {
            parse_u64(text)
        };
        v.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "cannot read CPU usage"))
    }
}
