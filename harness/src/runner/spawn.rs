//! Starting one group's workload: the program (this binary's `fibtest` subcommand, a
//! probe, or `sh -c` for a command), placed into the group's cgroups before it execs so
//! none of its work escapes accounting, in a session of its own, and killed if the
//! harness dies. Its stdout and stderr are pipes for `output` to read.

use crate::cgroup::{Cgroup, CgroupError};
use crate::scenario::{PlannedRun, Workload};
use anyhow::{Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};

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

/// Kills the workload's process group if it is still running when dropped, and reaps it.
pub(super) struct ChildGuard {
    pub(super) child: Option<Child>,
}

impl ChildGuard {
    pub(super) fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(None) = child.try_wait() {
                // Our own child's process group (it called setsid).
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let _ = child.wait();
            }
        }
    }
}

/// One group's workload while it runs.
pub(super) struct Running {
    pub(super) guard: ChildGuard,
    pub(super) status: Option<ExitStatus>,
    /// When the harness stops it (command workloads with a duration), in ns after t0.
    pub(super) stop_at_ns: Option<u64>,
}

impl Running {
    /// A group that runs nothing (it holds others in a tree): never live.
    pub(super) fn nothing() -> Running {
        use std::os::unix::process::ExitStatusExt;
        Running {
            guard: ChildGuard { child: None },
            status: Some(ExitStatus::from_raw(0)),
            stop_at_ns: None,
        }
    }

    /// Whether its main process has not been waited for yet.
    pub(super) fn live(&self) -> bool {
        self.status.is_none()
    }
}

/// Start group `g` of `run`, in `cg` when there is one, listening on `port` when its
/// load picked one (`--port` of a server, `{port}` of a command); its output pipes come
/// back too.
pub(super) fn spawn(
    program: &WorkloadProgram,
    proc_root: &Path,
    cg: Option<&Cgroup>,
    run: &PlannedRun,
    g: usize,
    port: Option<u16>,
) -> Result<(Running, (ChildStdout, ChildStderr))> {
    // Opened before fork: the child writes "0" (itself) into each, then execs.
    let procs: Vec<File> = cg
        .map(|c| c.procs_files())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            OpenOptions::new()
                .write(true)
                .open(p)
                .map_err(|e| CgroupError::io(p, e))
        })
        .collect::<Result<_, _>>()?;
    let workload = &run.groups[g].workload;
    let mut cmd = match workload {
        Workload::Command { command, .. } => {
            let mut c = Command::new("sh");
            match port {
                Some(p) => c.arg("-c").arg(command.replace("{port}", &p.to_string())),
                None => c.arg("-c").arg(command),
            };
            c
        }
        w if w.is_probe() => {
            // This program's own probe, told which cgroup it is in so it can tell
            // throttling stalls apart.
            let mut c = Command::new(
                std::env::current_exe().context("cannot find this program's own path")?,
            );
            c.arg("--proc-root")
                .arg(proc_root)
                .args(run.fibtest_args(g));
            if let (Workload::Steal { .. }, Some(cg)) = (w, cg) {
                c.arg("--cgroup-stat").arg(cg.cpu_stat_path());
            }
            c
        }
        _ => {
            let mut c = Command::new(&program.program);
            c.args(&program.leading_args).args(run.fibtest_args(g));
            if let (Workload::Serve { .. }, Some(p)) = (workload, port) {
                c.arg("--port").arg(p.to_string());
            }
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls (setsid, write, prctl,
    // getppid) on memory prepared before the fork; nothing allocates.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid()?;
            for mut f in &procs {
                f.write_all(b"0")?;
            }
            // If the harness dies (even by SIGKILL), the workload dies with it.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            if nix::unistd::getppid() == Pid::from_raw(1) {
                return Err(std::io::Error::other("harness exited during start"));
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting the workload of group {}", run.groups[g].name))?;
    // The cgroup files the closure held are closed with the command.
    drop(cmd);
    let pipes = (
        child.stdout.take().expect("piped"),
        child.stderr.take().expect("piped"),
    );
    let stop_at_ns = match workload {
        Workload::Command {
            duration: Some(d), ..
        } => Some(d.0.as_nanos() as u64),
        _ => None,
    };
    Ok((
        Running {
            guard: ChildGuard { child: Some(child) },
            status: None,
            stop_at_ns,
        },
        pipes,
    ))
}
