//! Running one planned run: make its cgroup, apply the limiter, start the workload inside
//! the cgroup (placed there before it execs, so none of its work escapes accounting),
//! sample until it exits, and tear down in reverse order. Teardown is done by guards
//! (`Cgroup`'s Drop, `ChildGuard`'s Drop) so every exit path, including errors and
//! panics, runs it.

use crate::cgroup::{Cgroup, CgroupError, Controller, Hierarchy, Version};
use crate::limiter::{self, leaks};
use crate::result::{GroupResult, Outcome, RunResult, WorkloadOutput};
use crate::sample::{monotonic_ns, sleep_until, Sampler, SamplerSources};
use crate::scenario::{Limiter, PlannedRun, Workload};
use crate::signals;
use crate::teardown;
use anyhow::{Context, Result};
use fibtest::cpulist::CpuList;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The program that generates the workload: by default this very binary's `fibtest`
/// subcommand (so `cargo run` always has a workload generator of the same build; the
/// loops still run in a child process, never in the harness), or the path in the
/// THROTTLEBENCH_FIBTEST environment variable (e.g. to test a given fibtest build).
#[derive(Debug, Clone)]
pub struct WorkloadProgram {
    pub program: PathBuf,
    pub leading_args: Vec<OsString>,
}

impl WorkloadProgram {
    pub fn locate() -> Result<WorkloadProgram> {
        if let Some(p) = std::env::var_os("THROTTLEBENCH_FIBTEST") {
            return Ok(WorkloadProgram {
                program: PathBuf::from(p),
                leading_args: Vec::new(),
            });
        }
        Ok(WorkloadProgram {
            program: std::env::current_exe().context("cannot find this program's own path")?,
            leading_args: vec!["fibtest".into()],
        })
    }
}

pub struct Runner {
    pub hierarchy: Hierarchy,
    pub proc_root: PathBuf,
    pub workload: WorkloadProgram,
    /// CPUs this process may use.
    pub allowed: CpuList,
}

/// Kills the workload's process group if it is still running when dropped, and reaps it.
struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(None) = child.try_wait() {
                let pid = child.id() as i32;
                // SAFETY: killing our own child's process group.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                let _ = child.wait();
            }
        }
    }
}

/// The controllers a run needs besides cpu and cpuacct.
pub fn extra_controllers(run: &PlannedRun) -> &'static [Controller] {
    match run.limiter {
        Limiter::Cpuset { .. } => &[Controller::Cpuset],
        Limiter::Freezer { .. } => &[Controller::Freezer],
        _ => &[],
    }
}

/// Pins the calling thread to `cpus` until dropped, then restores its old affinity.
struct AffinityGuard {
    old: Option<libc::cpu_set_t>,
}

impl AffinityGuard {
    fn pin(cpus: &CpuList) -> AffinityGuard {
        // SAFETY: sched_{get,set}affinity on this thread with sets we own.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old) != 0 {
                return AffinityGuard { old: None };
            }
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for c in cpus.iter() {
                libc::CPU_SET(c as usize, &mut set);
            }
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return AffinityGuard { old: None };
            }
            AffinityGuard { old: Some(old) }
        }
    }
}

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        if let Some(old) = self.old {
            // SAFETY: restoring the set read in `pin`.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &old) };
        }
    }
}

impl Drop for Runner {
    /// The `throttlebench` parent folders go when the last run is done, whatever the
    /// way out (another tool run still using them keeps them).
    fn drop(&mut self) {
        self.hierarchy.remove_parents_if_empty();
    }
}

/// One group's workload while it runs.
struct Running {
    guard: ChildGuard,
    out: std::thread::JoinHandle<Vec<u8>>,
    err: std::thread::JoinHandle<Vec<u8>>,
    status: Option<std::process::ExitStatus>,
    /// When the harness stops it (command workloads with a duration), in ns after t0.
    stop_at_ns: Option<u64>,
}

impl Runner {
    /// Run the first group's workload of `run` in an existing cgroup `cg` (no sampling,
    /// no limiter: the caller owns both) until it exits; on a signal to stop, stop it and
    /// return what it wrote. Used by searches that run many short workloads in one cgroup.
    pub fn run_workload_in(
        &self,
        cg: &Cgroup,
        run: &PlannedRun,
    ) -> Result<(Outcome, WorkloadOutput)> {
        let mut r = self.spawn(Some(cg), run, 0)?;
        let outcome = loop {
            if let Some(st) = r.guard.child.as_mut().expect("set").try_wait()? {
                break if st.success() {
                    Outcome::Completed
                } else {
                    Outcome::Failed {
                        status: describe_status(Some(st)),
                        stderr_tail: String::new(),
                    }
                };
            }
            if signals::received().is_some() {
                let mut status = None;
                teardown::stop_term_cont(
                    &mut RunProcs {
                        cgroup: Some(cg),
                        proc_root: &self.proc_root,
                        mains: vec![(&mut r.guard, &mut status)],
                    },
                    Duration::from_secs(2),
                );
                break Outcome::Interrupted;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = r.out.join().unwrap_or_default();
        let stderr = r.err.join().unwrap_or_default();
        let outcome = match outcome {
            Outcome::Failed { status, .. } => Outcome::Failed {
                status,
                stderr_tail: tail(&String::from_utf8_lossy(&stderr), 20),
            },
            o => o,
        };
        Ok((
            outcome,
            WorkloadOutput::parse(&String::from_utf8_lossy(&stdout)),
        ))
    }

    /// Run one planned run to its end (or until interrupted) and return its raw data.
    pub fn run(&self, run: &PlannedRun) -> Result<RunResult> {
        let top = match self.hierarchy.create_run(extra_controllers(run)) {
            Ok(top) => top,
            Err(e @ CgroupError::Permission { .. }) if runs_without_cgroup(run) => {
                let why = e.to_string();
                static SAID: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    eprintln!(
                        "throttlebench: no cgroup ({why}); measuring the workload's processes \
                         from /proc instead: CPU time in clock ticks, no throttling counters"
                    );
                }
                let mut r = self.run_in(None, &[], run)?;
                r.without_cgroup = Some(why);
                return Ok(r);
            }
            Err(e) => {
                return Err(anyhow::Error::from(e).context(format!(
                    "the `{}` limiter needs a cgroup of its own",
                    run.limiter.name()
                )))
            }
        };
        // Limits that groups inherit (a cpuset) go on before the groups are made.
        let result = (|| {
            if !matches!(run.limiter, Limiter::Weight) {
                limiter::apply(run, &top, &[])?;
            }
            let children: Vec<Cgroup> = if run.groups.len() > 1 {
                run.groups
                    .iter()
                    .map(|g| top.create_child(&g.name))
                    .collect::<Result<_, _>>()?
            } else {
                Vec::new()
            };
            let cgs: Vec<&Cgroup> = if children.is_empty() {
                vec![&top]
            } else {
                children.iter().collect()
            };
            if matches!(run.limiter, Limiter::Weight) {
                limiter::apply(run, &top, &cgs)?;
            }
            let r = self.run_in(Some(&top), &cgs, run);
            drop(cgs);
            for c in children {
                let _ = c.destroy(Duration::from_secs(5));
            }
            r
        })();
        let name = top.name();
        let dirs = top.dirs().to_vec();
        let removed = top.destroy(Duration::from_secs(5));
        self.hierarchy.remove_parents_if_empty();
        let mut result = result?;
        result.leaks.cgroups = dirs
            .iter()
            .filter(|d| d.exists())
            .map(|d| d.display().to_string())
            .collect();
        removed.with_context(|| format!("removing cgroup {name}"))?;
        Ok(result)
    }

    fn spawn(&self, cg: Option<&Cgroup>, run: &PlannedRun, g: usize) -> Result<Running> {
        // Opened before fork: the child writes "0" (itself) into each, then execs.
        let procs: Vec<std::fs::File> = cg
            .map(|c| c.procs_files())
            .unwrap_or_default()
            .iter()
            .map(|p| {
                OpenOptions::new()
                    .write(true)
                    .open(p)
                    .map_err(|e| crate::cgroup::CgroupError::io(p, e))
            })
            .collect::<Result<_, _>>()?;
        let fds: Vec<i32> = procs.iter().map(|f| f.as_raw_fd()).collect();
        let workload = &run.groups[g].workload;
        let mut cmd = match workload {
            Workload::Command { command, .. } => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(command);
                c
            }
            w if w.is_probe() => {
                // This program's own probe, told which cgroup it is in so it can tell
                // throttling stalls apart.
                let mut c = Command::new(
                    std::env::current_exe().context("cannot find this program's own path")?,
                );
                c.arg("--proc-root")
                    .arg(&self.proc_root)
                    .args(run.fibtest_args(g));
                if let (Workload::Steal { .. }, Some(cg)) = (w, cg) {
                    c.arg("--cgroup-stat").arg(cg.cpu_stat_path());
                }
                c
            }
            _ => {
                let mut c = Command::new(&self.workload.program);
                c.args(&self.workload.leading_args)
                    .args(run.fibtest_args(g));
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: between fork and exec only async-signal-safe calls (setsid, write,
        // prctl, getppid) on memory prepared before the fork; nothing allocates.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for fd in &fds {
                    if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // If the harness dies (even by SIGKILL), the workload dies with it.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                if libc::getppid() == 1 {
                    return Err(std::io::Error::other("harness exited during start"));
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting the workload of group {}", run.groups[g].name))?;
        drop(procs);
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let out = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let err = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });
        let stop_at_ns = match workload {
            Workload::Command {
                duration: Some(d), ..
            } => Some(d.0.as_nanos() as u64),
            _ => None,
        };
        Ok(Running {
            guard: ChildGuard { child: Some(child) },
            out,
            err,
            status: None,
            stop_at_ns,
        })
    }

    /// Run the workloads of `run`, group g in `cgs[g]` under `top`; with no cgroup (`top`
    /// None, `cgs` empty: one group), as plain children measured from /proc.
    fn run_in(&self, top: Option<&Cgroup>, cgs: &[&Cgroup], run: &PlannedRun) -> Result<RunResult> {
        let interval_ns = run.sample_interval.as_micros() * 1000;
        let expected = run.expected_duration();
        let expected_samples = (expected.as_nanos() as u64 / interval_ns.max(1)) as usize + 64;
        let mut samplers: Vec<Sampler> = (0..run.groups.len())
            .map(|g| {
                let cg = cgs.get(g);
                let stat = cg.map(|c| c.cpu_stat_path());
                let usage = cg
                    .filter(|c| c.version == Version::V1)
                    .map(|c| c.usage_path());
                Sampler::open(
                    &SamplerSources {
                        cpu_stat: stat.as_deref(),
                        usage: usage.as_deref(),
                        proc_root: &self.proc_root,
                    },
                    expected_samples,
                    run.sample_interval.0,
                )
            })
            .collect::<Result<_, _>>()?;

        let t0 = monotonic_ns();
        for s in samplers.iter_mut() {
            s.tick(0)?;
        }
        let mut running: Vec<Running> = Vec::new();
        for g in 0..run.groups.len() {
            running.push(self.spawn(cgs.get(g).copied(), run, g)?);
        }
        if top.is_none() {
            for (s, r) in samplers.iter_mut().zip(&running) {
                s.arm_process(&self.proc_root, r.guard.pid())?;
            }
        }
        // Only main processes not yet waited for are roots: a reaped one's pid may be
        // reused by a process that is none of the run's.
        let live = |running: &[Running]| -> Vec<i32> {
            running
                .iter()
                .filter(|r| r.status.is_none())
                .map(|r| r.guard.pid())
                .collect()
        };
        let mut active = limiter::ActiveLimiter::start(
            &run.limiter,
            &limiter::Target {
                cgroup: top,
                pid: running[0].guard.pid(),
                proc_root: &self.proc_root,
            },
        )?;

        // The sampler runs away from the workloads' CPUs when there is a CPU to spare. It
        // is pinned only now: threads and processes started before inherit no pinning.
        let used = run
            .groups
            .iter()
            .map(|g| g.workload.cpus())
            .try_fold(CpuList::default(), |acc, c| c.map(|c| acc.union(&c)));
        let spare = used
            .map(|w| self.allowed.difference(&w))
            .filter(|s| !s.is_empty());
        let _pin = spare.as_ref().map(AffinityGuard::pin);

        let signals_installed = signals::child_events_installed();
        // Start from MAX so the first tick always looks (a fast workload may be gone already).
        let mut seen_child_events = u32::MAX;
        // The workload starts and exits under its limit too: below a tenth of a CPU that
        // takes longer (an emulated guest took over 30 s to start and stop a 1 s job at
        // 1 ms per 100 ms), so the grace grows with it, up to ten times.
        let cap = run.limiter.cap_cpus().unwrap_or(1.0).max(1e-3);
        let grace = Duration::from_secs(30).mul_f64((0.1 / cap).clamp(1.0, 10.0));
        let limit = expected * 2 + grace;
        let limit_ns = limit.as_nanos() as u64;
        let mut next = t0;
        // Processes a limiter that died mid-run had left stopped (continued at once).
        let mut left_stopped = Vec::new();
        let outcome: Option<Outcome> = loop {
            next += interval_ns;
            let now = monotonic_ns();
            if next <= now {
                // Fell behind (a stall or a slow read): skip the missed ticks, keep the grid.
                next = now + interval_ns - (now - t0) % interval_ns;
            }
            sleep_until(next);
            let now = monotonic_ns();
            for s in samplers.iter_mut() {
                s.tick(now - t0)?;
            }
            // waitpid only after a SIGCHLD (or when no handler is installed).
            let events = signals::child_events();
            if !signals_installed || events != seen_child_events {
                seen_child_events = events;
                if active.as_mut().is_some_and(|a| a.poll()) {
                    // The external limiter died: nothing would continue what it stopped.
                    let orphaned = leaks::check(
                        &scope_pids(&self.proc_root, top, &live(&running)),
                        &self.proc_root,
                    );
                    leaks::repair(&orphaned);
                    left_stopped.extend(orphaned.stopped);
                }
                for r in running.iter_mut().filter(|r| r.status.is_none()) {
                    if let Some(child) = r.guard.child.as_mut() {
                        r.status = child.try_wait()?;
                    }
                }
            }
            if running.iter().all(|r| r.status.is_some()) {
                break None;
            }
            // Workloads that run until the harness stops them.
            let due: Vec<usize> = running
                .iter()
                .enumerate()
                .filter(|(_, r)| r.status.is_none() && r.stop_at_ns.is_some_and(|t| now - t0 >= t))
                .map(|(i, _)| i)
                .collect();
            if !due.is_empty() && due.len() == running.iter().filter(|r| r.status.is_none()).count()
            {
                break None;
            }
            if signals::received().is_some() {
                break Some(Outcome::Interrupted);
            }
            if now - t0 > limit_ns {
                break Some(Outcome::TimedOut {
                    limit_s: limit.as_secs_f64(),
                });
            }
        };
        let end = monotonic_ns();
        for s in samplers.iter_mut() {
            // One more read after the end: the counters are final now.
            s.tick(end - t0)?;
        }
        // The limiter goes first (it leaves the workload running). What it left stopped
        // is recorded before anything else touches the processes.
        let limiter_report = active.map(|a| a.stop()).unwrap_or_default();
        let mut leaks = leaks::check(
            &scope_pids(&self.proc_root, top, &live(&running)),
            &self.proc_root,
        );
        leaks.escaped.clear();
        leaks.stopped.extend(left_stopped);
        // Repair: continue what the limiter left stopped, so it can end.
        leaks::repair(&leaks);
        // Processes alive after every main process exited on its own outlived the
        // workload: reported as escaped (then ended like the rest).
        let workload_running = running.iter().any(|r| r.status.is_none());
        if !workload_running {
            let after = leaks::check(
                &scope_pids(&self.proc_root, top, &live(&running)),
                &self.proc_root,
            );
            leaks.escaped = after
                .escaped
                .into_iter()
                .filter(|p| !leaks.stopped.iter().any(|q| q.pid == p.pid))
                .collect();
        }
        // Then whatever still runs ends, in seed 004's order: stop all, SIGTERM all,
        // continue all (the workloads the harness stops at their duration, all of them
        // after an interrupt or a time-out, and what outlived them).
        let teardown = (!scope_pids(&self.proc_root, top, &live(&running)).is_empty()
            || workload_running)
            .then(|| {
                teardown::stop_term_cont(
                    &mut RunProcs {
                        cgroup: top,
                        proc_root: &self.proc_root,
                        mains: running
                            .iter_mut()
                            .map(|r| (&mut r.guard, &mut r.status))
                            .collect(),
                    },
                    Duration::from_secs(2),
                )
            });
        // Descendants of the workload or the limiter that outlived them were orphaned to
        // this process (a child subreaper): reap them, and kill and report the live ones.
        if signals::is_subreaper() {
            leaks.escaped.extend(leaks::reap_orphans(&self.proc_root));
        }
        let mut groups = Vec::new();
        let mut failure: Option<Outcome> = None;
        for ((r, s), g) in running.into_iter().zip(samplers).zip(&run.groups) {
            let stdout = r.out.join().unwrap_or_default();
            let stderr = r.err.join().unwrap_or_default();
            let harness_stopped = r.stop_at_ns.is_some();
            let ok = harness_stopped || r.status.map(|s| s.success()).unwrap_or(false);
            if !ok && failure.is_none() {
                failure = Some(Outcome::Failed {
                    status: format!("group {}: {}", g.name, describe_status(r.status)),
                    stderr_tail: tail(&String::from_utf8_lossy(&stderr), 20),
                });
            }
            groups.push(GroupResult {
                name: g.name.clone(),
                exit_status: describe_status(r.status),
                counters: s.counters(),
                samples: s.into_samples(),
                workload: WorkloadOutput::parse(&String::from_utf8_lossy(&stdout)),
            });
        }
        Ok(RunResult {
            planned: run.clone(),
            cgroup: top.map(|t| t.name()).unwrap_or_default(),
            without_cgroup: None,
            outcome: outcome.or(failure).unwrap_or(Outcome::Completed),
            wall_s: (end - t0) as f64 / 1e9,
            t0_monotonic_ns: t0,
            groups,
            limiter: limiter_report,
            leaks,
            teardown,
        })
    }
}

/// Whether a run can go without a cgroup of its own: one group, and a limiter that acts
/// on processes (or none).
pub fn runs_without_cgroup(run: &PlannedRun) -> bool {
    run.groups.len() == 1
        && matches!(
            run.limiter,
            Limiter::None | Limiter::Signal { .. } | Limiter::Command { .. }
        )
}

/// The run's processes: those in its cgroups; without one, the trees below its main
/// processes and below the orphans this process adopted (as a child subreaper), which
/// are the workload's descendants whose parents exited.
fn scope_pids(proc_root: &std::path::Path, top: Option<&Cgroup>, mains: &[i32]) -> Vec<i32> {
    if let Some(cg) = top {
        return cg.pids_recursive();
    }
    let all = crate::limiter::procs::all(proc_root);
    let me = std::process::id() as i32;
    let mut roots: Vec<i32> = mains.to_vec();
    roots.extend(
        all.iter()
            .filter(|p| p.ppid == me && !mains.contains(&p.pid))
            .map(|p| p.pid),
    );
    let mut pids: Vec<i32> = roots
        .iter()
        .flat_map(|r| crate::limiter::procs::tree(&all, *r))
        .filter(|p| all.iter().any(|i| i.pid == *p))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The run's processes, for `teardown`: those in its cgroups, and its main processes.
struct RunProcs<'a> {
    cgroup: Option<&'a Cgroup>,
    proc_root: &'a std::path::Path,
    mains: Vec<(&'a mut ChildGuard, &'a mut Option<std::process::ExitStatus>)>,
}

impl teardown::Procs for RunProcs<'_> {
    fn list(&mut self) -> Vec<i32> {
        // Only those not yet waited for (a reaped one's pid may belong to another now).
        let mains: Vec<i32> = self
            .mains
            .iter()
            .filter(|(_, st)| st.is_none())
            .map(|(g, _)| g.pid())
            .collect();
        let mut pids = scope_pids(self.proc_root, self.cgroup, &mains);
        pids.retain(|&p| {
            crate::limiter::procs::read(self.proc_root, p).is_some_and(|i| i.state != 'Z')
        });
        pids
    }
    fn stopped_or_gone(&mut self, pid: i32) -> bool {
        crate::limiter::procs::read(self.proc_root, pid)
            .is_none_or(|i| i.is_stopped() || i.state == 'Z' || i.exiting)
    }
    fn signal(&mut self, pid: i32, sig: i32) {
        // SAFETY: kill(2) on a process listed in the run's own cgroups.
        unsafe { libc::kill(pid, sig) };
    }
    fn mains_exited(&mut self) -> bool {
        let mut all = true;
        for (guard, status) in self.mains.iter_mut() {
            if status.is_none() {
                if let Some(child) = guard.child.as_mut() {
                    **status = child.try_wait().ok().flatten();
                }
            }
            all &= status.is_some();
        }
        all
    }
    fn now_ns(&mut self) -> u64 {
        monotonic_ns()
    }
    fn pause(&mut self) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn describe_status(st: Option<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match st {
        None => "no exit status".into(),
        Some(st) => match (st.code(), st.signal()) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(s)) => format!("was killed by signal {s}"),
            _ => format!("ended with status {st}"),
        },
    }
}

fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}
