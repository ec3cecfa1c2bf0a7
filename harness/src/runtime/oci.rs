//! runc and crun through their command lines (`create`, `start`, `state`, `kill`,
//! `delete`, `list`), which both take alike. crun on a hybrid host whose v2 root lists
//! controllers runs in a private mount namespace with the v2 mount hidden (see mod.rs).

use super::{Runtime, RuntimeError};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// A container as `state` or `list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciState {
    pub id: String,
    /// The container's init process (0 once it is gone, for some runtimes).
    pub pid: u32,
    /// `created`, `running`, `paused` or `stopped`.
    pub status: String,
}

/// A command of `rt`, in the private mount namespace when `rt.hide_unified`.
pub fn command(rt: &Runtime) -> Command {
    let mut cmd = Command::new(&rt.program);
    if rt.hide_unified {
        let target = CString::new(rt.cgroup_root.join("unified").as_os_str().as_bytes())
            .expect("no NUL in a path");
        // SAFETY: between fork and exec only unshare(2) and mount(2), on C strings made
        // before the fork (nix passes a &CStr through without allocating).
        unsafe {
            cmd.pre_exec(move || {
                use nix::mount::{mount, MsFlags};
                use nix::sched::{unshare, CloneFlags};
                unshare(CloneFlags::CLONE_NEWNS)?;
                // Private, so the tmpfs below is seen by nobody outside.
                mount(
                    None::<&std::ffi::CStr>,
                    c"/",
                    None::<&std::ffi::CStr>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&std::ffi::CStr>,
                )?;
                // Writable: crun still makes the container's folder in what it takes
                // for the v2 mount; on this tmpfs it lands nowhere and goes with it.
                mount(
                    Some(c"tb-hide-unified"),
                    target.as_c_str(),
                    Some(c"tmpfs"),
                    MsFlags::empty(),
                    None::<&std::ffi::CStr>,
                )?;
                Ok(())
            });
        }
    }
    cmd
}

/// Run `rt` with `args`, its output captured; an error names the command and its output.
pub fn run(rt: &Runtime, args: &[&str]) -> Result<String, RuntimeError> {
    let out = command(rt)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| RuntimeError::io(&rt.program, e))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(RuntimeError::Command {
            command: format!("{} {}", rt.name(), args.join(" ")),
            status: out.status.to_string(),
            output: (stdout + &String::from_utf8_lossy(&out.stderr))
                .trim()
                .to_string(),
        })
    }
}

/// `create --bundle B ID`: the container's init waits for `start`. Its stdout and stderr
/// are the given ones (passed through: the runtime exits, the container keeps them). The
/// runtime's own log goes to `log`.
pub fn create(
    rt: &Runtime,
    id: &str,
    bundle: &Path,
    log: &Path,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<(), RuntimeError> {
    let status = command(rt)
        .arg("--log")
        .arg(log)
        .arg("create")
        .arg("--bundle")
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .map_err(|e| RuntimeError::io(&rt.program, e))?;
    if status.success() {
        return Ok(());
    }
    let log_text = std::fs::read_to_string(log).unwrap_or_default();
    Err(RuntimeError::Command {
        command: format!("{} create --bundle {} {id}", rt.name(), bundle.display()),
        status: status.to_string(),
        output: tail(&log_text, 2000),
    })
}

/// `state ID`.
pub fn state(rt: &Runtime, id: &str) -> Result<OciState, RuntimeError> {
    let text = run(rt, &["state", id])?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| RuntimeError::Runtime {
        runtime: rt.name(),
        what: format!("`state {id}` printed no JSON ({e}): {}", tail(&text, 300)),
    })?;
    parse_state(&v).ok_or_else(|| RuntimeError::Runtime {
        runtime: rt.name(),
        what: format!("`state {id}` lacks id, pid or status: {}", tail(&text, 300)),
    })
}

fn parse_state(v: &serde_json::Value) -> Option<OciState> {
    Some(OciState {
        id: v.get("id")?.as_str()?.to_string(),
        pid: v.get("pid")?.as_u64()? as u32,
        status: v.get("status")?.as_str()?.to_string(),
    })
}

/// The containers `list --format json` shows (runc prints `null` for none).
pub fn list(rt: &Runtime) -> Result<Vec<OciState>, RuntimeError> {
    let text = run(rt, &["list", "--format", "json"])?;
    parse_list(&text).ok_or_else(|| RuntimeError::Runtime {
        runtime: rt.name(),
        what: format!("`list --format json` printed no list: {}", tail(&text, 300)),
    })
}

/// The entries of a `list --format json` text.
pub fn parse_list(text: &str) -> Option<Vec<OciState>> {
    let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    match v {
        serde_json::Value::Null => Some(Vec::new()),
        serde_json::Value::Array(items) => items.iter().map(parse_state).collect(),
        _ => None,
    }
}

/// The last `max` bytes of `text` (at a character boundary), trimmed.
pub fn tail(text: &str, max: usize) -> String {
    let t = text.trim();
    let mut start = t.len().saturating_sub(max);
    while !t.is_char_boundary(start) {
        start += 1;
    }
    t[start..].to_string()
}
