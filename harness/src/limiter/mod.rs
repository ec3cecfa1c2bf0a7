//! Limiters: what holds a workload back. Kernel settings (cfs, weight, cpuset) are applied
//! to the cgroup before the workload starts (`apply`); duty cycles (freezer, signal) run
//! as a control loop on their own thread while it runs, and an external command runs
//! beside it (`ActiveLimiter`). CPU-time budgets (budget, window) poll on a thread of
//! their own and may end the workload. `leaks` checks what a limiter left behind.

pub mod budget;
pub mod command;
pub mod credits;
pub mod duty;
pub mod signal;
pub mod usage;
pub mod window;

use crate::cgroup::{Cgroup, CgroupError, FreezerHandle};
use crate::clock::{monotonic_ns, sleep_until};
use crate::process::procs;
use crate::scenario::plan::{
    BudgetLimit, DutyControl, GroupLimit, Limiter, PlannedRun, Weight, WindowLimit,
};
use crate::scenario::schema::{BudgetTrack, SignalBy};
use budget::track::{By, CgroupTracker, ProcTracker, Tracker};
use budget::BudgetReport;
use duty::{Actuator, Clock, CpuUsage, DutyStats};
use signal::{StuckReport, StuckWatch};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use usage::UsageFile;
use window::WindowReport;

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
    /// Budget: what it counted, when it acted, how it ended the workload.
    pub budget: Option<BudgetReport>,
    /// Window: the window's usage, its throttles or the end.
    pub window: Option<WindowReport>,
    /// Signal with until_stuck: the cycles until a process was left stopped.
    pub stuck: Option<StuckReport>,
    /// An error of the control loop, if it failed.
    pub error: Option<String>,
    /// Runtime limiters: the container the runtime started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<crate::runtime::ContainerRecord>,
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

/// Why a limiter ended the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimiterEnd {
    /// A budget (or a window with action = "stop") was spent and the workload ended.
    Budget,
    /// A signal limiter with until_stuck left a process stopped.
    Stuck,
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
    budget: Option<JoinHandle<io::Result<BudgetReport>>>,
    window: Option<JoinHandle<io::Result<WindowReport>>>,
    stuck: Option<Arc<Mutex<StuckReport>>>,
    /// Set by the limiter when it ends the run (`end` says why).
    ended: Arc<AtomicBool>,
    end: LimiterEnd,
    /// The quota a limiter that sets one as it runs (credits, window) last set.
    quota: Arc<QuotaNow>,
}

/// The CFS quota a limiter last put on the run's cgroup, for the time series'
/// `limit_cpus`: written by the limiter's thread when it sets one, read by the sampler's
/// loop every tick (atomics: no lock in the tick).
#[derive(Debug, Default)]
pub struct QuotaNow {
    /// The quota in CPUs as f64 bits (NaN: none).
    bits: AtomicU64,
    /// How many times it was set.
    sets: AtomicU64,
}

impl QuotaNow {
    fn set(&self, cpus: Option<f64>) {
        self.bits
            .store(cpus.unwrap_or(f64::NAN).to_bits(), Ordering::Release);
        self.sets.fetch_add(1, Ordering::AcqRel);
    }

    /// The quota last set, in CPUs (None inside: no quota), with the count of sets so
    /// far, when it was set since `seen` sets.
    fn since(&self, seen: u64) -> Option<(u64, Option<f64>)> {
        let n = self.sets.load(Ordering::Acquire);
        (n != seen).then(|| {
            let cpus = f64::from_bits(self.bits.load(Ordering::Acquire));
            (n, (!cpus.is_nan()).then_some(cpus))
        })
    }
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
        let mut active = ActiveLimiter {
            stop: stop.clone(),
            thread: None,
            credits: None,
            command: None,
            budget: None,
            window: None,
            stuck: None,
            ended: Arc::new(AtomicBool::new(false)),
            end: LimiterEnd::Budget,
            quota: Arc::new(QuotaNow::default()),
        };
        match limiter {
            Limiter::Budget(b) => {
                active.budget = Some(start_budget(*b, t, active.ended.clone(), stop)?);
                return Ok(Some(active));
            }
            Limiter::Window(w) => {
                let sink = CfsSink::new(t, &active.quota, limiter.name())?;
                active.window = Some(start_window(*w, t, sink, active.ended.clone(), stop)?);
                return Ok(Some(active));
            }
            // Wrapped around the workload's command: nothing runs beside it.
            Limiter::Command { wraps: true, .. } => return Ok(None),
            _ => {}
        }
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
            Limiter::Signal {
                by,
                duty,
                name,
                until_stuck,
            } => {
                let name = match (by, name) {
                    (SignalBy::Name, Some(n)) => n.clone(),
                    _ => procs::read(t.proc_root, t.pid)
                        .map(|p| p.name)
                        .unwrap_or_default(),
                };
                let mut a = signal::SignalActuator::new(
                    *by,
                    t.pid,
                    name,
                    t.cgroup.map(|c| c.procs_files()).unwrap_or_default(),
                    t.proc_root.to_path_buf(),
                );
                if *until_stuck {
                    let report = Arc::new(Mutex::new(StuckReport::default()));
                    a.watch = Some(StuckWatch::new(report.clone(), active.ended.clone()));
                    active.stuck = Some(report);
                    active.end = LimiterEnd::Stuck;
                }
                (*duty, Box::new(a))
            }
            Limiter::Command {
                template,
                share,
                cpu,
                ..
            } => {
                let cmd =
                    crate::scenario::template::substitute(template, t.pid, t.pid, *share, *cpu);
                active.command =
                    Some(command::CommandLimiter::start(cmd.clone()).map_err(|e| {
                        anyhow::anyhow!("starting the limiter command `{cmd}`: {e}")
                    })?);
                return Ok(Some(active));
            }
            Limiter::Credits(model) => {
                let (model, flag) = (*model, stop.clone());
                let mut sink = CfsSink::new(t, &active.quota, limiter.name())?;
                let mut usage = usage;
                let handle =
                    std::thread::Builder::new()
                        .name("credits".into())
                        .spawn(move || {
                            credits::run(&model, &mut RealClock, usage.as_mut(), &mut sink, &flag)
                        })?;
                active.credits = Some(handle);
                return Ok(Some(active));
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
        active.thread = Some(thread);
        Ok(Some(active))
    }

    /// Whether the limiter has ended the run (a spent budget, a process left stopped).
    pub fn ended(&self) -> Option<LimiterEnd> {
        self.ended.load(Ordering::SeqCst).then_some(self.end)
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

    /// The quota a limiter that sets one as it runs (credits, window) last put on the
    /// run's cgroup, in CPUs (None inside: no quota), with the count of sets so far, when
    /// it set one since `seen` sets.
    pub fn quota_since(&self, seen: u64) -> Option<(u64, Option<f64>)> {
        self.quota.since(seen)
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
        // A budget in the middle of ending the workload finishes that first.
        if let Some(t) = self.budget.take() {
            match t.join() {
                Ok(Ok(r)) => report.budget = Some(r),
                Ok(Err(e)) => report.error = Some(e.to_string()),
                Err(_) => report.error = Some("the budget thread panicked".into()),
            }
        }
        if let Some(t) = self.window.take() {
            match t.join() {
                Ok(Ok(r)) => report.window = Some(r),
                Ok(Err(e)) => report.error = Some(e.to_string()),
                Err(_) => report.error = Some("the window thread panicked".into()),
            }
        }
        if let Some(s) = self.stuck.take() {
            report.stuck = Some(s.lock().unwrap_or_else(|p| p.into_inner()).clone());
        }
        report
    }
}

impl Drop for ActiveLimiter {
    fn drop(&mut self) {
        if self.thread.is_some()
            || self.credits.is_some()
            || self.command.is_some()
            || self.budget.is_some()
            || self.window.is_some()
        {
            self.stop_inner();
        }
    }
}

/// The budget's thread: its tracker, the cgroup's counter as the truth, and the end.
fn start_budget(
    plan: BudgetLimit,
    t: &Target,
    ended: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<io::Result<BudgetReport>>> {
    let ticks = crate::sample::procstat::clock_ticks_per_s();
    let mut tracker: Box<dyn Tracker + Send> = match (plan.track, t.cgroup) {
        (BudgetTrack::Tree, _) => Box::new(ProcTracker::new(t.proc_root, By::Tree, t.pid, ticks)),
        (BudgetTrack::Group, _) => Box::new(ProcTracker::new(t.proc_root, By::Group, t.pid, ticks)),
        (BudgetTrack::Cgroup, Some(cg)) => Box::new(CgroupTracker {
            usage: UsageFile::open(cg)?,
            dir: cg.cpu_dir().to_path_buf(),
            proc_root: t.proc_root.to_path_buf(),
        }),
        // Resolving refuses a cgroup budget without a cgroup.
        (BudgetTrack::Cgroup, None) => anyhow::bail!("track = \"cgroup\" needs a cgroup"),
    };
    let mut truth = t.cgroup.map(UsageFile::open).transpose()?;
    let (proc_root, main) = (t.proc_root.to_path_buf(), t.pid);
    Ok(std::thread::Builder::new()
        .name("budget".into())
        .spawn(move || {
            let mut end =
                |tr: &mut dyn Tracker| budget::end::end_tracked(&plan.end, tr, &proc_root, main);
            budget::run(
                &plan,
                &mut RealClock,
                tracker.as_mut(),
                &mut truth,
                &mut end,
                &ended,
                &stop,
            )
        })?)
}

/// The window's thread: the cgroup's counter, its quota, and the end for action = "stop".
fn start_window(
    plan: WindowLimit,
    t: &Target,
    mut sink: CfsSink,
    ended: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<io::Result<WindowReport>>> {
    let cg = t.cgroup.ok_or_else(|| {
        anyhow::anyhow!("the window limiter needs a cgroup, and this run has none")
    })?;
    let mut usage = UsageFile::open(cg)?;
    let mut tracker = CgroupTracker {
        usage: UsageFile::open(cg)?,
        dir: cg.cpu_dir().to_path_buf(),
        proc_root: t.proc_root.to_path_buf(),
    };
    let (proc_root, main) = (t.proc_root.to_path_buf(), t.pid);
    Ok(std::thread::Builder::new()
        .name("window".into())
        .spawn(move || {
            let mut end = || budget::end::end_tracked(&plan.end, &mut tracker, &proc_root, main);
            window::run(
                &plan,
                &mut RealClock,
                &mut usage,
                &mut sink,
                &mut end,
                &ended,
                &stop,
            )
        })?)
}

/// The run's cgroup's CFS settings, as a limiter changes them, each change told to the
/// time series.
struct CfsSink {
    handle: crate::cgroup::CfsHandle,
    now: Arc<QuotaNow>,
}

impl CfsSink {
    fn new(t: &Target, now: &Arc<QuotaNow>, limiter: &str) -> anyhow::Result<CfsSink> {
        let cg = t.cgroup.ok_or_else(|| {
            anyhow::anyhow!("the {limiter} limiter needs a cgroup, and this run has none")
        })?;
        Ok(CfsSink {
            handle: cg.cfs_handle(),
            now: now.clone(),
        })
    }
}

impl credits::QuotaSink for CfsSink {
    fn set(&mut self, limit: &crate::scenario::CfsLimit) -> Result<(), CgroupError> {
        self.handle.set(limit)?;
        self.now
            .set(limit.quota_us.map(|q| q as f64 / limit.period_us as f64));
        Ok(())
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
