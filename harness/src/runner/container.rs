//! A run whose limiter is a real OCI runtime (`limiter.kind = "runtime"`): the runtime
//! starts the workload (this program's `fibtest` subcommand, copied into a root file
//! system of its own) in a container whose config carries the limit, and the suite
//! measures it like its own cgroup: the sampler reads the container's `cpu.stat` and
//! usage files (found from its pid), the workload's stdout and stderr go through the
//! same output reader as a spawned workload's, and the run ends through the runtime
//! (`kill`, `delete`), which removes the container and its cgroups, on success, error and
//! Ctrl-C alike (dropping a `Container` tears it down). A harness killed outright leaves
//! a container that `throttlebench cleanup` finds by its dead owner.
//!
//! The container's main process is orphaned to this process (a child subreaper) once
//! `runc create` exits; a thread waits for it, which gives its exit status and reaps it.
//! podman's main process is conmon's child: its status is `podman run`'s.

use super::output::OutputReader;
use super::sink::RunSink;
use super::Runner;
use crate::cgroup::Version;
use crate::clock::{monotonic_ns, sleep_until};
use crate::limiter::LimiterReport;
use crate::process::describe_status;
use crate::process::leaks::{self, LeakReport};
use crate::result::{GroupResult, Outcome, RunResult, TickStats};
use crate::runtime::{
    Container, ContainerRecord, ContainerSpec, CpuResources, Runtime, RuntimeError, RuntimeKind,
    DEFAULT_BUSYBOX,
};
use crate::sample::{GroupSources, Sampler};
use crate::scenario::plan::{GroupLimit, Weight};
use crate::scenario::{Limiter, Plan, PlannedRun};
use crate::signals;
use anyhow::{Context, Result};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ChildStderr, ChildStdout, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// Check, before any run starts, that every runtime the plan names is installed and the
/// static busybox its containers' root file systems need is there. The error names the
/// scenario and field; the exit code is 5 (a missing component, like a controller).
pub fn check_runtimes(plan: &Plan, cgroup_root: &Path) -> Result<()> {
    let mut checked: Vec<&str> = Vec::new();
    for run in &plan.runs {
        let Limiter::Runtime { runtime, .. } = &run.limiter else {
            continue;
        };
        if checked.contains(&runtime.as_str()) {
            continue;
        }
        checked.push(runtime);
        let at = || format!("{}: limiter.runtime = \"{runtime}\"", plan.source);
        let kind: RuntimeKind = runtime.parse().with_context(at)?;
        Runtime::find(kind, cgroup_root).with_context(at)?;
        if !Path::new(DEFAULT_BUSYBOX).is_file() {
            return Err(RuntimeError::MissingFile {
                what: "static busybox for the container's root file system",
                path: DEFAULT_BUSYBOX.into(),
                hint: "Debian package busybox-static",
            })
            .with_context(at);
        }
    }
    Ok(())
}

/// The CPU part of the container's config from the resolved limit: quota and period,
/// and shares from a weight (v2 units × 1024 / 100, as for a v1 group) or a request.
pub fn cpu_resources(limit: &GroupLimit) -> CpuResources {
    CpuResources {
        quota_us: limit.cfs.and_then(|c| c.quota_us),
        period_us: limit.cfs.map(|c| c.period_us),
        shares: limit.weight.map(|w| match w {
            Weight::V2(w) => u64::from(w) * 1024 / 100,
            Weight::Shares(s) => s,
        }),
    }
}

/// The container's process: the workload program at `/bin/<its name>` in the root file
/// system, with the arguments a spawned workload gets.
fn container_spec(runner: &Runner, run: &PlannedRun, limit: &GroupLimit) -> ContainerSpec {
    let program = &runner.workload.program;
    let inside = format!(
        "/bin/{}",
        program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut args = vec![inside];
    args.extend(
        runner
            .workload
            .leading_args
            .iter()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    args.extend(run.fibtest_args(0));
    ContainerSpec {
        binaries: vec![program.clone()],
        args,
        cpu: cpu_resources(limit),
        ..ContainerSpec::default()
    }
}

/// Waits for the container's main process if it is this process's child (orphaned to
/// it as a subreaper): its exit status, which also reaps it. None if it is not.
fn reaper(pid: u32) -> JoinHandle<Option<ExitStatus>> {
    std::thread::spawn(move || loop {
        match waitpid(Pid::from_raw(pid as i32), None) {
            Ok(WaitStatus::Exited(_, code)) => return Some(ExitStatus::from_raw(code << 8)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(ExitStatus::from_raw(sig as i32)),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return None,
        }
    })
}

/// One tick: every source read and handed to the sink, its busy time counted.
fn tick(
    sampler: &mut Sampler,
    sink: &mut dyn RunSink,
    t0: u64,
    now: u64,
    ticks: &mut TickStats,
    busy_ns: &mut u64,
) -> Result<()> {
    sink.tick(sampler.tick(now - t0)?)?;
    let busy = monotonic_ns().saturating_sub(now);
    ticks.ticks += 1;
    *busy_ns += busy;
    ticks.busy_max_s = ticks.busy_max_s.max(busy as f64 / 1e9);
    Ok(())
}

/// Run `run` in a container of its runtime, handing samples and output to `sink`.
pub(super) fn run_in_container(
    runner: &Runner,
    run: &PlannedRun,
    sink: &mut dyn RunSink,
) -> Result<RunResult> {
    let Limiter::Runtime { runtime, limit } = &run.limiter else {
        anyhow::bail!("run {} has no runtime limiter", run.index);
    };
    let rt = Runtime::find(runtime.parse()?, &runner.hierarchy.root)?;
    let spec = container_spec(runner, run, limit);
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (out_r, out_w) = nix::unistd::pipe2(cloexec)?;
    let (err_r, err_w) = nix::unistd::pipe2(cloexec)?;
    let mut container = Container::run(
        &rt,
        Path::new(DEFAULT_BUSYBOX),
        &spec,
        Stdio::from(out_w),
        Box::new(std::fs::File::from(err_w)),
    )
    .with_context(|| format!("starting the workload in a {} container", rt.name()))?;
    let reaped = (rt.kind != RuntimeKind::Podman).then(|| reaper(container.pid()));
    let cgroups = container.cgroups().clone();
    let stat = cgroups.cpu_stat();
    let usage = cgroups
        .usage_file()
        .filter(|_| runner.hierarchy.version == Version::V1);
    let mut sampler = Sampler::open(
        &[GroupSources {
            cpu_stat: stat.as_deref(),
            usage: usage.as_deref(),
        }],
        &runner.proc_root,
        run.sample_interval.0,
    )?;
    if let Some(dir) = cgroups.folder_of("cpu") {
        sink.cgroups(&[dir]);
    }
    sink.begin(&[sampler.counters(0)], sampler.system_has())?;
    let output = OutputReader::start(
        vec![Some((ChildStdout::from(out_r), ChildStderr::from(err_r)))],
        sink.output()?,
    )?;
    sink.limit(0, run.limiter.cap_cpus())?;
    let t0 = monotonic_ns();
    sink.tick(sampler.tick(0)?)?;
    let mut ticks = TickStats {
        interval_s: run.sample_interval.as_secs_f64(),
        ticks: 1,
        ..TickStats::default()
    };
    let mut busy_ns = 0u64;
    // Sample every tick until the workload ends, the user interrupts, or it times out.
    let interval_ns = run.sample_interval.as_micros() * 1000;
    let limit = run.expected_duration() * 2 + Duration::from_secs(30);
    let mut next = t0;
    let mut last_ns = t0;
    let cut: Option<Outcome> = loop {
        next += interval_ns;
        let now = monotonic_ns();
        if next <= now {
            let skip_to = now + interval_ns - (now - t0) % interval_ns;
            ticks.missed += (skip_to - next) / interval_ns;
            next = skip_to;
        }
        sleep_until(next);
        let now = monotonic_ns();
        if now.saturating_sub(next) > interval_ns / 2 {
            ticks.late += 1;
        }
        // podman removes an ended container's cgroup itself, so a read can find it gone
        // (ENODEV): the workload has ended, and the last sample taken stands.
        match tick(&mut sampler, sink, t0, now, &mut ticks, &mut busy_ns) {
            Ok(()) => last_ns = now,
            Err(_) if !container.is_running() => break None,
            Err(e) => return Err(e),
        }
        if !container.is_running() {
            break None;
        }
        if signals::received().is_some() {
            break Some(Outcome::Interrupted);
        }
        if now - t0 > limit.as_nanos() as u64 {
            break Some(Outcome::TimedOut {
                limit_s: limit.as_secs_f64(),
            });
        }
    };
    // One more read after the end: the counters are final now (if the cgroup is still
    // there; else the run ends at the last sample taken).
    let now = monotonic_ns();
    let end = match tick(&mut sampler, sink, t0, now, &mut ticks, &mut busy_ns) {
        Ok(()) => now,
        Err(_) if !container.is_running() => last_ns,
        Err(e) => return Err(e),
    };
    ticks.busy_mean_s = busy_ns as f64 / 1e9 / ticks.ticks.max(1) as f64;
    let podman_status = container.podman_status(Duration::from_secs(5));
    let mut record = ContainerRecord {
        runtime: rt.name().into(),
        program: rt.program.display().to_string(),
        hide_unified: rt.hide_unified,
        id: container.id().into(),
        pid: container.pid(),
        cpu_stat: stat.as_ref().map(|p| p.display().to_string()),
        usage: usage.as_ref().map(|p| p.display().to_string()),
        ..ContainerRecord::default()
    };
    let cgroup = cgroups
        .folders
        .iter()
        .find(|f| f.controllers.iter().any(|c| c == "cpu"))
        .map(|f| f.path.clone())
        .unwrap_or_default();
    let mut limiter = LimiterReport::default();
    // Teardown goes through the runtime: kill if it still runs, delete, remove what
    // is left. The main process is reaped meanwhile by the reaper thread.
    let torn = container.teardown();
    let status = match torn {
        Ok(t) => {
            record.killed = t.killed;
            record.removed_cgroups = t
                .removed_cgroups
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            podman_status.or_else(|| reaped.and_then(|h| h.join().ok().flatten()))
        }
        Err(e) => {
            record.teardown_error = Some(e.to_string());
            limiter.error = Some(format!("teardown through {}: {e}", rt.name()));
            podman_status
        }
    };
    let mut leaks = LeakReport::default();
    // Whatever of the runtime's was orphaned to this process and is still here (podman's
    // conmon) is reaped; any still alive is killed and reported.
    if signals::is_subreaper() {
        leaks.escaped = leaks::reap_orphans(&runner.proc_root, &[]);
    }
    // The container's own folders only (crun, in a namespace that hides the v2 mount,
    // reports the v2 root there).
    leaks.cgroups = cgroups
        .folders
        .iter()
        .filter(|f| f.path.split('/').any(|part| part == record.id))
        .filter_map(|f| f.folder.as_ref())
        .filter(|d| d.exists())
        .map(|d| d.display().to_string())
        .collect();
    limiter.container = Some(record);
    let (mut outputs, written) = output.join();
    written?;
    let out = outputs.pop().unwrap_or_default();
    let group = &run.groups[0];
    let ok = status.is_none_or(|s| s.success());
    let exit_status = match status {
        Some(s) => describe_status(Some(s)),
        None => "ended (its exit status was not seen: not this process's child)".into(),
    };
    let outcome = cut.unwrap_or(if ok {
        Outcome::Completed
    } else {
        Outcome::Failed {
            status: format!("group {}: {exit_status}", group.name),
            stderr_tail: out.stderr_tail.clone(),
        }
    });
    Ok(RunResult {
        planned: run.clone(),
        cgroup,
        without_cgroup: None,
        outcome,
        wall_s: (end - t0) as f64 / 1e9,
        t0_monotonic_ns: t0,
        ticks,
        system: sampler.system_has(),
        groups: vec![GroupResult {
            name: group.name.clone(),
            exit_status,
            counters: sampler.counters(0),
            workload: out,
        }],
        limiter,
        leaks,
        teardown: None,
        load: None,
        changes: Vec::new(),
        // The budget columns are for the budget and window limiters, which run in a
        // cgroup of the harness's own, not in a runtime's container.
        cgroup_cpu_s: None,
        deaths: None,
    })
}
