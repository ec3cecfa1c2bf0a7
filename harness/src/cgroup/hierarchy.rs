//! The cgroup hierarchies of a machine (v1: a folder per controller; v2: one tree),
//! found under a root folder, and the `throttlebench` parents in them, made and removed
//! under a lock so concurrent runs never race.

use super::files::{enable_controllers, inherit_cpuset, read_trimmed};
use super::group::Cgroup;
use super::{CgroupError, Controller, Version, PARENT};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{access, AccessFlags};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where the controllers are, for one root.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub version: Version,
    pub root: PathBuf,
    /// v1: each controller found and its mount folder; v2: each controller the root
    /// offers (freezing is built into v2, listed as `Freezer`), all at the root.
    mounts: Vec<(Controller, PathBuf)>,
}

impl Hierarchy {
    /// Find the cpu controller under `root`: v2 when `root/cgroup.controllers` lists
    /// `cpu`, otherwise v1 with `cpu` and `cpuacct` folders (or a joint `cpu,cpuacct`).
    /// cpuset and freezer are looked for too; a run that needs one that is missing is
    /// refused when its cgroup is made.
    pub fn detect(root: &Path) -> Result<Hierarchy, CgroupError> {
        let controllers = root.join("cgroup.controllers");
        if controllers.exists() {
            let text = read_trimmed(&controllers)?;
            let has = |c: &str| text.split_whitespace().any(|x| x == c);
            if !has("cpu") {
                return Err(CgroupError::MissingController {
                    controller: "cpu",
                    root: root.to_path_buf(),
                    hint: format!(
                        "this is a cgroup v2 root whose cgroup.controllers is `{text}` (the cpu controller is bound elsewhere or not built in)"
                    ),
                });
            }
            let mut mounts = vec![
                (Controller::Cpu, root.to_path_buf()),
                (Controller::Cpuacct, root.to_path_buf()),
            ];
            if has("cpuset") {
                mounts.push((Controller::Cpuset, root.to_path_buf()));
            }
            if root.join("cgroup.procs").exists() || root.join("cgroup.controllers").exists() {
                mounts.push((Controller::Freezer, root.to_path_buf()));
            }
            return Ok(Hierarchy {
                version: Version::V2,
                root: root.to_path_buf(),
                mounts,
            });
        }
        let cpu = find_v1_mount(root, Controller::Cpu).ok_or_else(|| {
            CgroupError::MissingController {
                controller: "cpu",
                root: root.to_path_buf(),
                hint: "neither a v2 root (cgroup.controllers) nor a v1 `cpu` folder with cpu.cfs_quota_us"
                    .into(),
            }
        })?;
        let acct = find_v1_mount(root, Controller::Cpuacct).ok_or_else(|| {
            CgroupError::MissingController {
                controller: "cpuacct",
                root: root.to_path_buf(),
                hint: "a v1 `cpu` folder exists but no `cpuacct` folder with cpuacct.usage to measure usage with".into(),
            }
        })?;
        let mut mounts = vec![(Controller::Cpu, cpu), (Controller::Cpuacct, acct)];
        for c in [Controller::Cpuset, Controller::Freezer] {
            if let Some(m) = find_v1_mount(root, c) {
                mounts.push((c, m));
            }
        }
        Ok(Hierarchy {
            version: Version::V1,
            root: root.to_path_buf(),
            mounts,
        })
    }

    fn mount(&self, c: Controller) -> Option<&PathBuf> {
        self.mounts.iter().find(|(x, _)| *x == c).map(|(_, p)| p)
    }

    /// Whether `c` can be used under this root.
    pub fn has(&self, c: Controller) -> bool {
        self.mount(c).is_some()
    }

    /// The `throttlebench` parent folders (one per distinct mount).
    pub fn parents(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = Vec::new();
        for (_, m) in &self.mounts {
            let p = m.join(PARENT);
            if !v.contains(&p) {
                v.push(p);
            }
        }
        v
    }

    /// Make a new, empty cgroup for one run under the `throttlebench` parent, in the cpu
    /// and cpuacct hierarchies and in those of `extra`.
    pub fn create_run(&self, extra: &[Controller]) -> Result<Cgroup, CgroupError> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("run-{}-{}-{seq}", std::process::id(), self_start_time());
        self.create(&name, extra)
    }

    fn create(&self, name: &str, extra: &[Controller]) -> Result<Cgroup, CgroupError> {
        let mut wanted = vec![Controller::Cpu, Controller::Cpuacct];
        for c in extra {
            if !wanted.contains(c) {
                wanted.push(*c);
            }
        }
        let mut paths = Vec::new();
        for c in &wanted {
            paths.push((*c, self.require(*c)?.join(PARENT).join(name)));
        }
        // Held while the shared parents are made and this run's folders go in, so another
        // run's `remove_parents_if_empty` cannot remove a parent in between.
        let _lock = parents_lock(&self.root)?;
        self.create_parents(&wanted)?;
        Cgroup::make(self.version, paths, || self.create_parents(&wanted))
    }

    /// Whether this process may make the cgroups of a run that uses `extra` besides cpu
    /// and cpuacct: each controller is there, and its `throttlebench` parent (or, before it
    /// exists, the hierarchy's folder) is writable. Cheap, and makes nothing: a run checks
    /// it before it makes its result folder.
    pub fn check_can_create(&self, extra: &[Controller]) -> Result<(), CgroupError> {
        let mut wanted = vec![Controller::Cpu, Controller::Cpuacct];
        wanted.extend_from_slice(extra);
        for c in wanted {
            let m = self.require(c)?;
            let parent = m.join(PARENT);
            let dir = if parent.is_dir() { parent } else { m.clone() };
            if !writable(&dir) {
                return Err(CgroupError::Permission { path: dir });
            }
        }
        Ok(())
    }

    /// The folder of controller `c`, or why it is missing.
    fn require(&self, c: Controller) -> Result<&PathBuf, CgroupError> {
        self.mount(c).ok_or_else(|| CgroupError::MissingController {
            controller: c.name(),
            root: self.root.clone(),
            hint: match self.version {
                Version::V1 => format!("no v1 `{}` hierarchy is mounted there", c.name()),
                Version::V2 => format!(
                    "the v2 root does not offer `{}` in cgroup.controllers",
                    c.name()
                ),
            },
        })
    }

    fn create_parents(&self, wanted: &[Controller]) -> Result<(), CgroupError> {
        for parent in self.parents() {
            match fs::create_dir(&parent) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(CgroupError::io(&parent, e)),
            }
        }
        match self.version {
            Version::V2 => {
                let mut enable = vec!["cpu"];
                if wanted.contains(&Controller::Cpuset) {
                    enable.push("cpuset");
                }
                for dir in [self.root.clone(), self.root.join(PARENT)] {
                    enable_controllers(&dir, &enable)?;
                }
            }
            Version::V1 => {
                // A v1 cpuset cgroup starts with no CPUs and no memory nodes.
                if let Some(m) = self.mount(Controller::Cpuset) {
                    inherit_cpuset(&m.join(PARENT))?;
                }
            }
        }
        Ok(())
    }

    /// Remove the `throttlebench` parents if no run uses them any more. A parent that
    /// still has children (another run going on) stays: its rmdir fails (EBUSY on cgroupfs,
    /// ENOTEMPTY elsewhere), which means someone else uses it and is not an error. Done
    /// under the parents' lock, so it never removes a parent that another run has just
    /// made and is about to put its folder in; when the lock cannot be had, the parents
    /// stay (an empty parent is harmless, and the next run removes it).
    pub fn remove_parents_if_empty(&self) {
        // Nothing to remove (a run without cgroups): no lock, no lock folder made.
        if !self.parents().iter().any(|p| p.exists()) {
            return;
        }
        let Ok(_lock) = parents_lock(&self.root) else {
            return;
        };
        for parent in self.parents() {
            let _ = fs::remove_dir(parent);
        }
    }
}

/// How long a run waits for another to release the parents' lock (held for a few
/// system calls) before it gives up.
const PARENTS_LOCK_WAIT: Duration = Duration::from_secs(30);

/// The lock that serialises making and removing the `throttlebench` parents between
/// processes (and threads): flock on the hierarchy's root folder. A lock changes nothing
/// in the folder and goes with the process, so no lock file is left anywhere (cgroupfs
/// holds no ordinary files anyway). Released when dropped.
struct ParentsLock(#[allow(dead_code)] Flock<fs::File>);

fn parents_lock(root: &Path) -> Result<ParentsLock, CgroupError> {
    let mut f = fs::File::open(root).map_err(|e| CgroupError::io(root, e))?;
    let start = Instant::now();
    loop {
        f = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(ParentsLock(lock)),
            Err((f, Errno::EWOULDBLOCK)) => f,
            Err((_, e)) => return Err(CgroupError::io(root, e.into())),
        };
        if start.elapsed() >= PARENTS_LOCK_WAIT {
            return Err(CgroupError::Format {
                path: root.to_path_buf(),
                what: format!(
                    "another throttlebench process has held the lock on this folder for {} s",
                    PARENTS_LOCK_WAIT.as_secs()
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether this process may make folders in `dir` (access(2), which also knows root).
fn writable(dir: &Path) -> bool {
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_ok()
}

fn find_v1_mount(root: &Path, c: Controller) -> Option<PathBuf> {
    let controller = c.name();
    let marker = c.v1_marker();
    let direct = root.join(controller);
    if direct.join(marker).exists() {
        return Some(fs::canonicalize(&direct).unwrap_or(direct));
    }
    // A joint mount such as `cpu,cpuacct`.
    let entries = fs::read_dir(root).ok()?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.split(',').any(|x| x == controller) && e.path().join(marker).exists() {
            return Some(e.path());
        }
    }
    None
}

/// This process's start time in clock ticks since boot (field 22 of /proc/self/stat).
pub fn self_start_time() -> u64 {
    process_start_time(std::process::id()).unwrap_or(0)
}

/// A process's start time in clock ticks since boot, or None if it does not exist.
pub fn process_start_time(pid: u32) -> Option<u64> {
    crate::process::procs::start_time(Path::new("/proc"), pid)
}
