//! podman through its command line, as it runs on a host without systemd: the cgroupfs
//! manager, runc as the OCI runtime, no network, the file events backend, and explicit
//! ulimits (podman lowers its own RLIMIT_NPROC to 32768 and would ask runc for
//! RLIMIT_NOFILE 1048576, which fails without CAP_SYS_RESOURCE). The container runs
//! attached (`podman run` without `-d`), so its stdout and stderr reach the caller's
//! pipes as they are written; `--pidfile` says when it has started and which pid it has.

use super::bundle::CpuResources;
use super::{Runtime, RuntimeError};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// podman's global flags for this machine kind.
fn base(rt: &Runtime) -> Command {
    let mut cmd = Command::new(&rt.program);
    cmd.args([
        "--cgroup-manager=cgroupfs",
        "--runtime=runc",
        "--events-backend=file",
        "--log-level=error",
    ]);
    cmd
}

/// What `podman run` is given.
pub struct PodmanRun<'a> {
    pub id: &'a str,
    pub rootfs: &'a Path,
    pub args: &'a [String],
    pub env: &'a [String],
    pub cpu: CpuResources,
    /// `--cgroup-parent`: the container's cgroup and conmon's go below it.
    pub cgroup_parent: &'a str,
    /// Where podman writes the container's pid once it runs.
    pub pidfile: &'a Path,
}

/// The arguments of `podman run` for `r` (after the global flags).
pub fn run_args(r: &PodmanRun) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "run".into(),
        "--name".into(),
        r.id.into(),
        "--pidfile".into(),
        r.pidfile.to_string_lossy().into_owned(),
        "--network=none".into(),
        "--read-only".into(),
        "--ulimit=nofile=1024:1024".into(),
        "--ulimit=nproc=4096:4096".into(),
        "--cgroup-parent".into(),
        r.cgroup_parent.into(),
        "--hostname=throttlebench".into(),
    ];
    if let Some(q) = r.cpu.quota_us {
        a.push(format!("--cpu-quota={q}"));
    }
    if let Some(p) = r.cpu.period_us {
        a.push(format!("--cpu-period={p}"));
    }
    if let Some(s) = r.cpu.shares {
        a.push(format!("--cpu-shares={s}"));
    }
    for e in r.env {
        a.push("--env".into());
        a.push(e.clone());
    }
    a.push("--rootfs".into());
    a.push(r.rootfs.to_string_lossy().into_owned());
    a.extend(r.args.iter().cloned());
    a
}

/// Start `podman run` for `r` as a child, attached: the container's stdout and stderr
/// are the child's.
pub fn spawn(
    rt: &Runtime,
    r: &PodmanRun,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<Child, RuntimeError> {
    base(rt)
        .args(run_args(r))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| RuntimeError::io(&rt.program, e))
}

/// Run a podman command to its end; an error names it and its output.
pub fn run(rt: &Runtime, args: &[&str]) -> Result<String, RuntimeError> {
    let out = base(rt)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| RuntimeError::io(&rt.program, e))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(RuntimeError::Command {
            command: format!("podman {}", args.join(" ")),
            status: out.status.to_string(),
            output: (stdout + &String::from_utf8_lossy(&out.stderr))
                .trim()
                .to_string(),
        })
    }
}

/// The names of all containers podman knows (`ps -a --format json`).
pub fn names(rt: &Runtime) -> Result<Vec<String>, RuntimeError> {
    let text = run(rt, &["ps", "-a", "--format", "json"])?;
    parse_ps(&text).ok_or_else(|| RuntimeError::Runtime {
        runtime: "podman",
        what: format!("`ps -a --format json` printed no list: {}", text.trim()),
    })
}

/// The container names in a `podman ps --format json` text.
pub fn parse_ps(text: &str) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    let mut names = Vec::new();
    for item in v.as_array()? {
        for n in item.get("Names")?.as_array()? {
            names.push(n.as_str()?.to_string());
        }
    }
    Some(names)
}
