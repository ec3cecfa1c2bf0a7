//! One container from start to teardown: its bundle (root file system and config.json in
//! a temp folder named after it), the runtime's create and start, its main pid (held as
//! a pidfd, so waiting for it needs no polling and a reused pid cannot fool it), its
//! cgroups, and a teardown through the runtime that leaves no container, cgroup,
//! process or folder. Dropping a `Container` tears it down too.

use super::bundle::{write_config, CpuResources, OciConfig};
use super::cgroups::{lock_parents, remove_empty_parents, remove_tree, ContainerCgroups};
use super::oci::{self, tail};
use super::podman::{self, PodmanRun};
use super::rootfs::RootFs;
use super::{ContainerName, Runtime, RuntimeError, RuntimeKind, PARENT};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What to run and with which limit.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// Host binaries to copy into the root file system (each lands at `/bin/<name>`,
    /// with its libraries), besides busybox (`/bin/busybox`, `/bin/sh`).
    pub binaries: Vec<PathBuf>,
    /// The process: a path inside the container, then its arguments.
    pub args: Vec<String>,
    /// Extra `NAME=value` environment entries.
    pub env: Vec<String>,
    pub cpu: CpuResources,
    /// The container's name; by default a new one owned by this process. (Tests give a
    /// name owned by another process to stand for a run that died.)
    pub name: Option<ContainerName>,
}

/// What teardown did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Teardown {
    /// The main process was still running and was killed.
    pub killed: bool,
    /// The main process had ended but its parent (the init process, since runtimes
    /// leave the container's init to it) had not yet reaped it after `REAP_WAIT`.
    pub unreaped: bool,
    /// Cgroup folders that were left after the runtime's delete and were removed here.
    pub removed_cgroups: Vec<PathBuf>,
}

/// How long teardown waits for the container's processes to end after SIGKILL.
const EXIT_WAIT: Duration = Duration::from_secs(10);
/// How long teardown waits for the ended main process to be reaped by its parent. The
/// container's init is an orphan, reaped by PID 1 (or a subreaper); an init that is not
/// systemd may take a while (about 2 s on the machines this suite runs on).
const REAP_WAIT: Duration = Duration::from_secs(10);
/// Bytes of the runtime's and workload's stderr kept for error messages.
const STDERR_TAIL: usize = 4096;

/// A started container. Torn down by `teardown` or when dropped.
pub struct Container {
    runtime: Runtime,
    id: String,
    bundle: PathBuf,
    pid: u32,
    /// The main process's start time (/proc/<pid>/stat), to tell it from a later process
    /// with the same pid.
    pid_start: Option<u64>,
    /// Readable once the main process has ended (None only while starting).
    pidfd: Option<OwnedFd>,
    cgroups: ContainerCgroups,
    /// podman: the attached `podman run`.
    podman: Option<Child>,
    /// Forwards stderr to the caller, keeping its tail; ends when the container does.
    stderr: Option<JoinHandle<Vec<u8>>>,
    done: bool,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("runtime", &self.runtime.name())
            .field("id", &self.id)
            .field("pid", &self.pid)
            .finish()
    }
}

impl Container {
    /// Assemble the bundle and start `spec` under `runtime`. The workload's stdout goes
    /// to `stdout`; its stderr (and the runtime's own messages) is copied to `stderr`.
    /// `busybox` is the static busybox to put in the root (Debian: /bin/busybox).
    pub fn run(
        runtime: &Runtime,
        busybox: &Path,
        spec: &ContainerSpec,
        stdout: Stdio,
        stderr: Box<dyn Write + Send>,
    ) -> Result<Container, RuntimeError> {
        let id = spec.name.clone().unwrap_or_default().to_string();
        let bundle = std::env::temp_dir().join(&id);
        std::fs::create_dir(&bundle).map_err(|e| RuntimeError::io(&bundle, e))?;
        let mut guard = BundleGuard(Some(bundle.clone()));
        let bins: Vec<&Path> = spec.binaries.iter().map(PathBuf::as_path).collect();
        let rootfs = RootFs::assemble(&bundle.join("rootfs"), busybox, &bins)?;
        let mut env = spec.env.clone();
        if !rootfs.library_dirs.is_empty() {
            env.push(format!("LD_LIBRARY_PATH={}", rootfs.library_dirs.join(":")));
        }
        // Close-on-exec, so no other process started meanwhile keeps a copy of the write
        // end (which would hold the forwarder open after the container ends).
        let (pipe_r, pipe_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| RuntimeError::io(&bundle, e.into()))?;
        let forward = std::thread::spawn(move || forward(pipe_r, stderr));
        let started = match runtime.kind {
            RuntimeKind::Runc | RuntimeKind::Crun => {
                create_oci(runtime, &id, &bundle, &rootfs, spec, &env, stdout, pipe_w)
                    .map(|pid| (pid, None))
            }
            RuntimeKind::Podman => {
                start_podman(runtime, &id, &bundle, &rootfs, spec, &env, stdout, pipe_w)
                    .map(|(pid, child)| (pid, Some(child)))
            }
        };
        let (pid, podman) = match started {
            Ok(s) => s,
            Err(e) => {
                clean_after_failed_start(runtime, &id);
                // Once nothing of the container holds the pipe, the forwarder ends with
                // the tail of what the runtime said.
                let tail_bytes = join_within(forward, EXIT_WAIT).unwrap_or_default();
                return Err(with_stderr(e, &tail_bytes));
            }
        };
        // From here the runtime has the container: dropping `c` on any error below
        // tears it down.
        guard.0 = None;
        let mut c = Container {
            runtime: runtime.clone(),
            id,
            bundle,
            pid,
            pid_start: super::process_start_time(Path::new("/proc"), pid),
            pidfd: None,
            cgroups: ContainerCgroups { folders: vec![] },
            podman,
            stderr: Some(forward),
            done: false,
        };
        // runc and crun: the process waits in `created` and cannot have ended, so the
        // pid is still the container's. podman: it runs already; a workload that ended
        // this soon is an error.
        c.pidfd = Some(pidfd_open(pid).map_err(|e| RuntimeError::Runtime {
            runtime: runtime.name(),
            what: format!(
                "container {} (pid {pid}) ended before it could be watched: {e}",
                c.id
            ),
        })?);
        c.cgroups = ContainerCgroups::of_pid(Path::new("/proc"), pid)?;
        if c.cgroups.ours().is_empty() {
            return Err(RuntimeError::Runtime {
                runtime: runtime.name(),
                what: format!(
                    "container {} (pid {pid}) is in no cgroup under /{PARENT}: {:?}",
                    c.id, c.cgroups.folders
                ),
            });
        }
        if runtime.kind != RuntimeKind::Podman {
            oci::run(runtime, &["start", &c.id])?;
        }
        Ok(c)
    }

    /// The container's name (`throttlebench-<pid>-<start>-<seq>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The runtime that started it.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The container's main process, as seen from the host.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The cgroups the runtime put it in.
    pub fn cgroups(&self) -> &ContainerCgroups {
        &self.cgroups
    }

    /// The bundle folder (root file system and config.json).
    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    /// Wait up to `limit` for the main process to end; whether it did.
    pub fn wait_exit(&self, limit: Duration) -> Result<bool, RuntimeError> {
        let Some(pidfd) = &self.pidfd else {
            return Ok(true);
        };
        let start = Instant::now();
        loop {
            let left = limit.saturating_sub(start.elapsed());
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(n) if n > 0 => return Ok(true),
                Ok(_) if start.elapsed() >= limit => return Ok(false),
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    return Err(RuntimeError::io(
                        Path::new(&format!("/proc/{}", self.pid)),
                        e.into(),
                    ))
                }
            }
        }
    }

    /// Whether the main process is still running.
    pub fn is_running(&self) -> bool {
        !self.wait_exit(Duration::ZERO).unwrap_or(true)
    }

    /// Stop it through the runtime and remove everything it made: SIGKILL (`kill`) if
    /// it still runs, wait for it, `delete --force` (podman: `rm -f`), then any cgroup
    /// folder of it that is left, the empty `throttlebench` parents, and the bundle.
    pub fn teardown(mut self) -> Result<Teardown, RuntimeError> {
        self.teardown_inner()
    }

    fn teardown_inner(&mut self) -> Result<Teardown, RuntimeError> {
        if self.done {
            return Ok(Teardown::default());
        }
        self.done = true;
        let rt = self.runtime.clone();
        let mut problems: Vec<String> = Vec::new();
        let mut report = Teardown {
            killed: self.is_running(),
            ..Teardown::default()
        };
        if report.killed {
            let r = match rt.kind {
                RuntimeKind::Podman => {
                    podman::run(&rt, &["kill", "--signal", "KILL", &self.id]).map(|_| ())
                }
                _ => oci::run(&rt, &["kill", &self.id, "KILL"]).map(|_| ()),
            };
            // The process may have ended in between; only a process still running after
            // the kill is a problem.
            if let Err(e) = r {
                if self.is_running() {
                    problems.push(e.to_string());
                }
            }
        }
        match self.wait_exit(EXIT_WAIT) {
            Ok(true) => {}
            Ok(false) => problems.push(format!(
                "{}: pid {} still runs {} s after SIGKILL",
                self.id,
                self.pid,
                EXIT_WAIT.as_secs()
            )),
            Err(e) => problems.push(e.to_string()),
        }
        // Gone from /proc once reaped; a zombie until then.
        let start = Instant::now();
        while self.pid_start.is_some()
            && super::process_start_time(Path::new("/proc"), self.pid) == self.pid_start
        {
            if start.elapsed() >= REAP_WAIT {
                report.unreaped = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let deleted = match rt.kind {
            RuntimeKind::Podman => podman::run(&rt, &["rm", "--force", &self.id]).map(|_| ()),
            _ => oci::run(&rt, &["delete", "--force", &self.id]).map(|_| ()),
        };
        if let Err(e) = deleted {
            problems.push(e.to_string());
        }
        if let Some(mut child) = self.podman.take() {
            if let Err(e) = wait_child(&mut child, EXIT_WAIT) {
                problems.push(format!("podman run for {}: {e}", self.id));
            }
        }
        if let Some(h) = self.stderr.take() {
            // Ends when the last holder of the pipe (the container's processes, podman's
            // conmon) is gone.
            if join_within(h, EXIT_WAIT).is_none() {
                problems.push(format!(
                    "{}: its stderr is still open {} s after it ended",
                    self.id,
                    EXIT_WAIT.as_secs()
                ));
            }
        }
        for folder in self.container_folders() {
            if folder.exists() {
                match remove_tree(&folder, EXIT_WAIT) {
                    Ok(()) => report.removed_cgroups.push(folder),
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        if let Err(e) = remove_empty_parents(&rt.cgroup_root) {
            problems.push(e.to_string());
        }
        if let Err(e) = std::fs::remove_dir_all(&self.bundle) {
            if e.kind() != std::io::ErrorKind::NotFound {
                problems.push(RuntimeError::io(&self.bundle, e).to_string());
            }
        }
        if problems.is_empty() {
            Ok(report)
        } else {
            Err(RuntimeError::Runtime {
                runtime: rt.name(),
                what: format!("teardown of {}: {}", self.id, problems.join("; ")),
            })
        }
    }

    /// `<hierarchy>/throttlebench/<id>` for every hierarchy the container is in below
    /// its own folder (podman puts `libpod-<hash>` and `conmon` beneath it).
    fn container_folders(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .cgroups
            .folders
            .iter()
            .filter_map(|f| {
                let mount = f.mount_point.as_ref()?;
                let rel = f.folder.as_ref()?.strip_prefix(mount).ok()?;
                let mut parts = rel.components().map(|c| c.as_os_str());
                (parts.next()? == PARENT && parts.next()? == self.id.as_str())
                    .then(|| mount.join(PARENT).join(&self.id))
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Err(e) = self.teardown_inner() {
            eprintln!("throttlebench: {e}");
        }
    }
}

/// Removes the bundle folder unless disarmed (a start that failed).
struct BundleGuard(Option<PathBuf>);

impl Drop for BundleGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

#[allow(clippy::too_many_arguments)]
/// `create` a runc or crun container from a new config.json; its init's pid.
fn create_oci(
    rt: &Runtime,
    id: &str,
    bundle: &Path,
    rootfs: &RootFs,
    spec: &ContainerSpec,
    env: &[String],
    stdout: Stdio,
    stderr: OwnedFd,
) -> Result<u32, RuntimeError> {
    let cgroups_path = format!("/{PARENT}/{id}");
    write_config(
        bundle,
        &OciConfig {
            rootfs: &rootfs.dir,
            args: &spec.args,
            env,
            cpu: spec.cpu,
            cgroups_path: &cgroups_path,
            hostname: "throttlebench",
        },
    )?;
    {
        // The runtime makes the `throttlebench` parents with the container's folders.
        let _lock = lock_parents(&rt.cgroup_root)?;
        oci::create(
            rt,
            id,
            bundle,
            &bundle.join("runtime.log"),
            stdout,
            Stdio::from(stderr),
        )?;
    }
    let state = oci::state(rt, id)?;
    if state.pid == 0 {
        return Err(RuntimeError::Runtime {
            runtime: rt.name(),
            what: format!("`state {id}` after create gives no pid ({})", state.status),
        });
    }
    Ok(state.pid)
}

#[allow(clippy::too_many_arguments)]
/// `podman run` attached, until the container runs; its pid and the podman child.
fn start_podman(
    rt: &Runtime,
    id: &str,
    bundle: &Path,
    rootfs: &RootFs,
    spec: &ContainerSpec,
    env: &[String],
    stdout: Stdio,
    stderr: OwnedFd,
) -> Result<(u32, Child), RuntimeError> {
    let pidfile = bundle.join("pid");
    let parent = format!("/{PARENT}/{id}");
    let run = PodmanRun {
        id,
        rootfs: &rootfs.dir,
        args: &spec.args,
        env,
        cpu: spec.cpu,
        cgroup_parent: &parent,
        pidfile: &pidfile,
    };
    let _lock = lock_parents(&rt.cgroup_root)?;
    let mut child = podman::spawn(rt, &run, stdout, Stdio::from(stderr))?;
    // Wait for the pid file (podman writes it once the container runs) or for podman to
    // end without one (it failed). Both are states; checked every few ms.
    let start = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            return Ok((pid, child));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(RuntimeError::Command {
                command: format!("podman run --name {id} ..."),
                status: status.to_string(),
                output: "it ended before the container started".into(),
            });
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RuntimeError::Runtime {
                runtime: "podman",
                what: format!("{id}: no pid file {} after 60 s", pidfile.display()),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// After a failed start: whatever the runtime made of the container, removed.
fn clean_after_failed_start(rt: &Runtime, id: &str) {
    let _ = match rt.kind {
        RuntimeKind::Podman => podman::run(rt, &["rm", "--force", id]).map(|_| ()),
        _ => oci::run(rt, &["delete", "--force", id]).map(|_| ()),
    };
    for parent in super::cgroups::parent_folders(&rt.cgroup_root) {
        let _ = remove_tree(&parent.join(id), EXIT_WAIT);
    }
    let _ = remove_empty_parents(&rt.cgroup_root);
}

/// Add the tail of what the runtime wrote on stderr to an error.
fn with_stderr(e: RuntimeError, tail_bytes: &[u8]) -> RuntimeError {
    let t = String::from_utf8_lossy(tail_bytes);
    let t = tail(&t, 1000);
    if t.is_empty() {
        return e;
    }
    match e {
        RuntimeError::Command {
            command,
            status,
            output,
        } => RuntimeError::Command {
            command,
            status,
            output: format!("{output}; stderr: {t}"),
        },
        other => RuntimeError::Runtime {
            runtime: "container",
            what: format!("{other}; stderr: {t}"),
        },
    }
}

/// Copy `from` to `to` until end of file; return the last bytes.
fn forward(from: OwnedFd, mut to: Box<dyn Write + Send>) -> Vec<u8> {
    let mut f = std::fs::File::from(from);
    let mut buf = [0u8; 8192];
    let mut last: Vec<u8> = Vec::new();
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let _ = to.write_all(&buf[..n]);
                last.extend_from_slice(&buf[..n]);
                if last.len() > 2 * STDERR_TAIL {
                    last.drain(..last.len() - STDERR_TAIL);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = to.flush();
    let keep = last.len().saturating_sub(STDERR_TAIL);
    last.drain(..keep);
    last
}

/// The forwarder's tail once it has ended, waiting up to `limit`; `None` if it has not
/// (it is left to end on its own).
fn join_within(h: JoinHandle<Vec<u8>>, limit: Duration) -> Option<Vec<u8>> {
    let start = Instant::now();
    while !h.is_finished() {
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    h.join().ok()
}

/// A pidfd for `pid` (pidfd_open(2), Linux 5.3): readable once the process has ended.
fn pidfd_open(pid: u32) -> Result<OwnedFd, RuntimeError> {
    use nix::libc;
    // nix has no pidfd_open(2) yet, hence the raw system call.
    // SAFETY: pidfd_open(2) with a pid and no flags; returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(RuntimeError::io(
            Path::new(&format!("/proc/{pid}")),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a descriptor just returned by the kernel, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Wait for a child to end, killing it if it has not after `limit`.
fn wait_child(child: &mut Child, limit: Duration) -> std::io::Result<()> {
    let start = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        if start.elapsed() > limit {
            child.kill()?;
            child.wait()?;
            return Err(std::io::Error::other(format!(
                "did not end within {} s after the container was removed; killed",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
