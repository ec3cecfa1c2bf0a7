//! Running one planned run: make its cgroup, apply the limiter, start the workload inside
//! the cgroup (placed there before it execs, so none of its work escapes accounting),
//! sample until it exits, and tear down in reverse order. Teardown is done by guards
//! (`Cgroup`'s Drop, `ChildGuard`'s Drop) so every exit path, including errors and
//! panics, runs it.

use crate::cgroup::{Cgroup, Hierarchy, Version};
use crate::result::{Outcome, RunResult, WorkloadOutput};
use crate::sample::{monotonic_ns, sleep_until, Sampler, SamplerSources};
use crate::scenario::{Limiter, PlannedRun};
use crate::signals;
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

    /// Ask the process group to stop (SIGTERM: fibtest flushes what it measured), then
    /// SIGKILL it if it has not exited within `grace`.
    fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.pid();
        let child = self.child.as_mut()?;
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        // SAFETY: signalling our child's process group (the child called setsid).
        unsafe { libc::kill(-pid, libc::SIGTERM) };
        let deadline = monotonic_ns() + grace.as_nanos() as u64;
        while monotonic_ns() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: as above.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        child.wait().ok()
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

impl Runner {
    /// Run one planned run to its end (or until interrupted) and return its raw data.
    pub fn run(&self, run: &PlannedRun) -> Result<RunResult> {
        let cgroup = self.hierarchy.create_run()?;
        let result = self
            .apply_limiter(&cgroup, &run.limiter)
            .and_then(|()| self.run_in(&cgroup, run));
        let name = cgroup.name();
        cgroup
            .destroy(Duration::from_secs(5))
            .with_context(|| format!("removing cgroup {name}"))?;
        self.hierarchy.remove_parents_if_empty();
        result
    }

    fn apply_limiter(&self, cg: &Cgroup, limiter: &Limiter) -> Result<()> {
        match limiter {
            Limiter::None => Ok(()),
            Limiter::Cfs(c) => Ok(cg.set_cfs(c)?),
        }
    }

    fn run_in(&self, cg: &Cgroup, run: &PlannedRun) -> Result<RunResult> {
        let interval_ns = run.sample_interval.as_micros() * 1000;
        let expected = run.workload.expected_duration(&run.limiter);
        let expected_samples = (expected.as_nanos() as u64 / interval_ns.max(1)) as usize + 64;
        let usage = cg.usage_path();
        let mut sampler = Sampler::open(
            &SamplerSources {
                cpu_stat: &cg.cpu_stat_path(),
                usage: (cg.version == Version::V1).then_some(usage.as_path()),
                proc_root: &self.proc_root,
            },
            expected_samples,
            run.sample_interval.0,
        )?;

        // Opened before fork: the child writes "0" (itself) into each, then execs.
        let procs: Vec<std::fs::File> = cg
            .procs_files()
            .iter()
            .map(|p| {
                OpenOptions::new()
                    .write(true)
                    .open(p)
                    .map_err(|e| crate::cgroup::CgroupError::io(p, e))
            })
            .collect::<Result<_, _>>()?;
        let fds: Vec<i32> = procs.iter().map(|f| f.as_raw_fd()).collect();

        let mut cmd = Command::new(&self.workload.program);
        cmd.args(&self.workload.leading_args)
            .args(run.fibtest_args())
            .stdin(Stdio::null())
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

        // The sampler runs away from the workload's CPUs when there is a CPU to spare.
        let spare = run
            .workload
            .cpus()
            .map(|w| self.allowed.difference(&w))
            .filter(|s| !s.is_empty());
        let _pin = spare.as_ref().map(AffinityGuard::pin);

        let t0 = monotonic_ns();
        sampler.tick(0)?;
        let child = cmd.spawn().with_context(|| {
            format!(
                "starting the workload {} {:?}",
                self.workload.program.display(),
                run.fibtest_args()
            )
        })?;
        drop(procs);
        let mut guard = ChildGuard { child: Some(child) };
        let child = guard.child.as_mut().expect("just set");
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let out_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });

        let signals_installed = signals::child_events_installed();
        // Start from 0 so the first tick always looks (a fast workload may be gone already).
        let mut seen_child_events = u32::MAX;
        let limit = expected * 2 + Duration::from_secs(30);
        let limit_ns = limit.as_nanos() as u64;
        let mut next = t0;
        let (outcome, status) = loop {
            next += interval_ns;
            let now = monotonic_ns();
            if next <= now {
                // Fell behind (a stall or a slow read): skip the missed ticks, keep the grid.
                next = now + interval_ns - (now - t0) % interval_ns;
            }
            sleep_until(next);
            let now = monotonic_ns();
            sampler.tick(now - t0)?;
            // waitpid only after a SIGCHLD (or when no handler is installed).
            let events = signals::child_events();
            if !signals_installed || events != seen_child_events {
                seen_child_events = events;
                let child = guard.child.as_mut().expect("set");
                if let Some(st) = child.try_wait()? {
                    break (None, Some(st));
                }
            }
            if signals::received().is_some() {
                break (
                    Some(Outcome::Interrupted),
                    guard.stop(Duration::from_secs(2)),
                );
            }
            if now - t0 > limit_ns {
                let o = Outcome::TimedOut {
                    limit_s: limit.as_secs_f64(),
                };
                break (Some(o), guard.stop(Duration::from_secs(2)));
            }
        };
        let end = monotonic_ns();
        // One more read after the exit: the counters are final now.
        sampler.tick(end - t0)?;
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        let outcome = outcome.unwrap_or_else(|| match status {
            Some(st) if st.success() => Outcome::Completed,
            other => Outcome::Failed {
                status: describe_status(other),
                stderr_tail: tail(&String::from_utf8_lossy(&stderr), 20),
            },
        });
        Ok(RunResult {
            planned: run.clone(),
            cgroup: cg.name(),
            outcome,
            wall_s: (end - t0) as f64 / 1e9,
            t0_monotonic_ns: t0,
            samples: sampler.into_samples(),
            workload: WorkloadOutput::parse(&String::from_utf8_lossy(&stdout)),
        })
    }
}

fn describe_status(st: Option<std::process::ExitStatus>) -> String {
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
