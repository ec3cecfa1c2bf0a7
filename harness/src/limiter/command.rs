//! An external limiter to validate: a command template with `{pid}`, `{pgid}`,
//! `{percent}` and `{share}`, started after the workload (in its own session, outside the
//! workload's cgroup) and stopped after it: SIGTERM to its process group, then SIGKILL.
//! The template itself is checked and filled in `scenario::template`.

use nix::sys::prctl;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{setsid, Pid};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running external limiter.
pub struct CommandLimiter {
    pub command: String,
    child: Option<Child>,
    started: Instant,
    /// How and when it ended on its own, as first seen by `poll`.
    exited: Option<(std::process::ExitStatus, Duration)>,
}

/// How it ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CommandReport {
    pub command: String,
    /// "exited with code N", "killed by signal N" ...
    pub status: String,
    /// Whether it was still running when the workload ended (a limiter is expected to be).
    pub ran_to_the_end: bool,
    /// When it exited on its own, in s after it started (seen at the first SIGCHLD after;
    /// at the stop otherwise): the workload ran unlimited after that.
    pub exited_after_s: Option<f64>,
    /// Whether SIGTERM was not enough and SIGKILL was needed.
    pub needed_sigkill: bool,
    pub stderr_tail: String,
}

impl CommandLimiter {
    pub fn start(command: String) -> std::io::Result<CommandLimiter> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid and prctl are async-signal-safe; nothing allocates.
        unsafe {
            cmd.pre_exec(|| {
                setsid()?;
                prctl::set_pdeathsig(Signal::SIGKILL)?;
                Ok(())
            });
        }
        Ok(CommandLimiter {
            child: Some(cmd.spawn()?),
            command,
            started: Instant::now(),
            exited: None,
        })
    }

    /// How it ended and after how long, if it has exited on its own (seen by `poll`).
    pub fn exited(&self) -> Option<(std::process::ExitStatus, Duration)> {
        self.exited
    }

    /// Its pid, which is also its session and process group (it calls setsid).
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Look whether it has exited (call after a SIGCHLD): true the first time it has.
    pub fn poll(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(Some(st)) => {
                self.exited = Some((st, self.started.elapsed()));
                true
            }
            _ => false,
        }
    }

    /// Stop it (its whole process group) and report.
    pub fn stop(mut self) -> CommandReport {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> CommandReport {
        let Some(mut child) = self.child.take() else {
            return CommandReport {
                command: self.command.clone(),
                status: "not started".into(),
                ran_to_the_end: false,
                exited_after_s: None,
                needed_sigkill: false,
                stderr_tail: String::new(),
            };
        };
        let pid = child.id() as i32;
        let ran_to_the_end = self.exited.is_none() && matches!(child.try_wait(), Ok(None));
        let exited_after_s = (!ran_to_the_end).then(|| {
            self.exited
                .map(|(_, t)| t)
                .unwrap_or_else(|| self.started.elapsed())
                .as_secs_f64()
        });
        let mut needed_sigkill = false;
        // The limiter's own process group (it called setsid).
        let group = Pid::from_raw(pid);
        let _ = killpg(group, Signal::SIGCONT);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        let status = loop {
            if let Some((st, _)) = self.exited {
                break Some(st);
            }
            if let Ok(Some(st)) = child.try_wait() {
                break Some(st);
            }
            if Instant::now() > deadline {
                needed_sigkill = true;
                let _ = killpg(group, Signal::SIGKILL);
                break child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // Anything left in its group (a limiter's own children) goes too.
        // ESRCH when the group is empty.
        let _ = killpg(group, Signal::SIGKILL);
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let lines: Vec<&str> = err.lines().collect();
        CommandReport {
            command: self.command.clone(),
            status: crate::process::describe_status(status),
            ran_to_the_end,
            exited_after_s,
            needed_sigkill,
            stderr_tail: lines[lines.len().saturating_sub(10)..].join("\n"),
        }
    }
}

impl CommandReport {
    /// What went wrong, in words, if anything: a limiter is expected to run until the
    /// workload ends and to stop when asked.
    pub fn fault(&self) -> Option<String> {
        let mut f = Vec::new();
        if let Some(t) = self.exited_after_s.filter(|_| !self.ran_to_the_end) {
            f.push(format!(
                "exited on its own after {t:.2}s ({}): the workload ran unlimited after that",
                self.status
            ));
        }
        if self.needed_sigkill {
            f.push("ignored SIGTERM for 2s and was killed".to_string());
        }
        (!f.is_empty()).then(|| f.join("; "))
    }
}

impl Drop for CommandLimiter {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop_inner();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stubborn_limiter_is_killed() {
        let ready = std::env::temp_dir().join(format!("tb-stubborn-{}", std::process::id()));
        let _ = std::fs::remove_file(&ready);
        let l = CommandLimiter::start(format!(
            "trap '' TERM; touch {}; while :; do sleep 0.01; done",
            ready.display()
        ))
        .unwrap();
        // Stop it only once it ignores SIGTERM (the file says so), not after a guessed time.
        let t0 = Instant::now();
        while !ready.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "limiter did not start"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let r = l.stop();
        let _ = std::fs::remove_file(&ready);
        assert!(r.ran_to_the_end);
        assert!(r.needed_sigkill, "{r:?}");
        assert!(r.status.contains("signal"), "{r:?}");
    }
}
