//! The cgroup layer: v1 (a folder per controller hierarchy) and v2 (one unified tree)
//! behind one interface, with the root folder as a parameter so tests can use a fake one.
//!
//! Every cgroup this tool makes lives under a parent folder named `throttlebench`, with a
//! child per run named `run-<pid>-<starttime>-<seq>`: the owner's pid and its start time
//! (from /proc/<pid>/stat) let a later run tell a cgroup whose owner died (even by SIGKILL)
//! from one that is still in use, and remove only those. Nothing else is touched.

mod files;
mod stale;

pub use files::{read_trimmed, write_file};
pub use stale::{remove_stale, StaleCgroup};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{access, AccessFlags, Pid};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// CFS bandwidth settings in µs, as the kernel takes them (v1 cpu.cfs_quota_us,
/// cpu.cfs_period_us and cpu.cfs_burst_us; v2 cpu.max and cpu.max.burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CfsLimit {
    /// Run time per period; None is "max" (no limit).
    pub quota_us: Option<u64>,
    pub period_us: u64,
    pub burst_us: u64,
}

/// Name of the parent folder of every cgroup the tool makes.
pub const PARENT: &str = "throttlebench";

/// Default root of the cgroup file systems.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Version {
    #[serde(rename = "v1")]
    V1,
    #[serde(rename = "v2")]
    V2,
}

impl Version {
    pub fn name(&self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup hierarchy with the `{controller}` controller under {}: {hint}", root.display())]
    MissingController {
        controller: &'static str,
        root: PathBuf,
        hint: String,
    },
    #[error("permission denied on {}: making cgroups needs root, or write access to a delegated cgroup v2 subtree given with --cgroup-root (systemd: `systemd-run --user --scope -p Delegate=yes -- throttlebench ...`, then --cgroup-root set to that scope's folder); the `none`, `signal` and `command` limiters and the probes run without a cgroup", path.display())]
    Permission { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {what}", path.display())]
    Format { path: PathBuf, what: String },
}

impl CgroupError {
    pub fn io(path: &Path, source: io::Error) -> CgroupError {
        if matches!(source.kind(), io::ErrorKind::PermissionDenied)
            || source.raw_os_error() == Some(Errno::EPERM as i32)
        {
            CgroupError::Permission {
                path: path.to_path_buf(),
            }
        } else {
            CgroupError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// A controller this tool may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    Cpu,
    Cpuacct,
    Cpuset,
    Freezer,
}

impl Controller {
    pub fn name(&self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Freezer => "freezer",
        }
    }

    /// A file at the root of a v1 mount of this controller.
    fn v1_marker(&self) -> &'static str {
        match self {
            Controller::Cpu => "cpu.cfs_quota_us",
            Controller::Cpuacct => "cpuacct.usage",
            Controller::Cpuset => "cpuset.cpus",
            // The root freezer cgroup has no freezer.state; its mount is found by name.
            Controller::Freezer => "cgroup.procs",
        }
    }
}

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

/// v2: enable controllers for the children of `dir` (cgroup.subtree_control), writing
/// only those not enabled yet.
fn enable_controllers(dir: &Path, controllers: &[&str]) -> Result<(), CgroupError> {
    let f = dir.join("cgroup.subtree_control");
    let now = read_trimmed(&f).unwrap_or_default();
    for c in controllers {
        if !now.split_whitespace().any(|x| x == *c) {
            write_file(&f, &format!("+{c}"))?;
        }
    }
    Ok(())
}

/// v1 cpuset: copy cpuset.cpus and cpuset.mems from the parent folder when empty.
fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let parent = dir.parent().expect("a cgroup folder has a parent");
    for f in ["cpuset.cpus", "cpuset.mems"] {
        if read_trimmed(&dir.join(f)).unwrap_or_default().is_empty() {
            let v = read_trimmed(&parent.join(f))?;
            write_file(&dir.join(f), &v)?;
        }
    }
    Ok(())
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

/// One run's cgroup: a folder in each controller hierarchy it uses. Dropping it kills
/// whatever still runs inside and removes the folders.
#[derive(Debug)]
pub struct Cgroup {
    pub version: Version,
    /// Distinct folders, in the order made.
    dirs: Vec<PathBuf>,
    /// Each controller's folder (several controllers may share one).
    paths: Vec<(Controller, PathBuf)>,
    removed: bool,
}

impl Cgroup {
    /// The folder of controller `c`, if this cgroup has one.
    pub fn dir(&self, c: Controller) -> Option<PathBuf> {
        self.paths
            .iter()
            .find(|(x, _)| *x == c)
            .map(|(_, p)| p.clone())
    }

    /// The folder that holds the cpu controller's files.
    pub fn cpu_dir(&self) -> &Path {
        &self.paths[0].1
    }

    fn acct_dir(&self) -> &Path {
        &self.paths[1].1
    }

    /// Every folder of this cgroup (one per distinct hierarchy).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The folder name shared by all hierarchies.
    pub fn name(&self) -> String {
        self.cpu_dir()
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    }

    /// `cgroup.procs` of every hierarchy: a process must be written into each.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// The file with nr_periods, nr_throttled, throttled time and bursts.
    pub fn cpu_stat_path(&self) -> PathBuf {
        self.cpu_dir().join("cpu.stat")
    }

    /// The file with total CPU usage: v1 `cpuacct.usage` (ns), v2 `cpu.stat` (usage_usec).
    pub fn usage_path(&self) -> PathBuf {
        match self.version {
            Version::V1 => self.acct_dir().join("cpuacct.usage"),
            Version::V2 => self.cpu_dir().join("cpu.stat"),
        }
    }

    /// Make a child cgroup `name` in every hierarchy of this one (for groups that compete
    /// inside a run). v2: enables the controllers for children first.
    pub fn create_child(&self, name: &str) -> Result<Cgroup, CgroupError> {
        if self.version == Version::V2 {
            let mut enable = vec!["cpu"];
            if self.dir(Controller::Cpuset).is_some() {
                enable.push("cpuset");
            }
            enable_controllers(self.cpu_dir(), &enable)?;
        }
        let paths: Vec<(Controller, PathBuf)> =
            self.paths.iter().map(|(c, p)| (*c, p.join(name))).collect();
        // A child's parent is this cgroup, which exists while `self` does.
        Cgroup::make(self.version, paths, || Ok(()))
    }

    /// Make the folders of `paths` (one per distinct folder); if a parent vanished in
    /// between (removed by something that does not take the parents' lock),
    /// `remake_parent` and try again, a few times. A v1 cpuset folder gets its parent's
    /// CPUs and memory nodes.
    fn make(
        version: Version,
        paths: Vec<(Controller, PathBuf)>,
        remake_parent: impl Fn() -> Result<(), CgroupError>,
    ) -> Result<Cgroup, CgroupError> {
        let mut cg = Cgroup {
            version,
            dirs: Vec::new(),
            paths,
            removed: false,
        };
        let dirs: Vec<PathBuf> = cg.paths.iter().map(|(_, p)| p.clone()).collect();
        for dir in dirs {
            if cg.dirs.contains(&dir) {
                continue;
            }
            let mut made = fs::create_dir(&dir);
            // The lock keeps other throttlebench runs from removing the parent; a few
            // retries cover anything else (an older build without the lock, a person).
            for _ in 0..3 {
                if !matches!(&made, Err(e) if e.kind() == io::ErrorKind::NotFound) {
                    break;
                }
                remake_parent()?;
                made = fs::create_dir(&dir);
            }
            made.map_err(|e| CgroupError::io(&dir, e))?;
            // Pushed as soon as it exists, so a failure below still removes it (Drop).
            cg.dirs.push(dir);
        }
        if let (Version::V1, Some(d)) = (version, cg.dir(Controller::Cpuset)) {
            inherit_cpuset(&d)?;
        }
        Ok(cg)
    }

    /// CPU weight, in v2 units (1-10000, default 100). v1 has cpu.shares (default 1024):
    /// shares = weight * 1024 / 100, so ratios between groups are kept.
    pub fn set_weight(&self, weight: u32) -> Result<(), CgroupError> {
        match self.version {
            Version::V1 => write_file(
                &self.cpu_dir().join("cpu.shares"),
                &(u64::from(weight) * 1024 / 100).max(2).to_string(),
            ),
            Version::V2 => write_file(&self.cpu_dir().join("cpu.weight"), &weight.to_string()),
        }
    }

    /// Pin the cgroup to `cpus` (v1 cpuset.cpus, with cpuset.mems inherited; v2 cpuset.cpus).
    pub fn set_cpus(&self, cpus: &str) -> Result<(), CgroupError> {
        let d = self
            .dir(Controller::Cpuset)
            .ok_or_else(|| CgroupError::MissingController {
                controller: "cpuset",
                root: self.cpu_dir().to_path_buf(),
                hint: "this cgroup was made without the cpuset controller".into(),
            })?;
        write_file(&d.join("cpuset.cpus"), cpus)
    }

    /// What freezes and thaws this cgroup (can move to another thread).
    pub fn freezer_handle(&self) -> Result<FreezerHandle, CgroupError> {
        let dir = self
            .dir(Controller::Freezer)
            .ok_or_else(|| CgroupError::MissingController {
                controller: "freezer",
                root: self.cpu_dir().to_path_buf(),
                hint: "this cgroup was made without the freezer controller".into(),
            })?;
        Ok(FreezerHandle {
            version: self.version,
            dir,
        })
    }

    /// Apply CFS bandwidth settings (see `CfsHandle::set`).
    pub fn set_cfs(&self, limit: &CfsLimit) -> Result<(), CgroupError> {
        self.cfs_handle().set(limit)
    }

    /// What sets this cgroup's CFS limit (can move to another thread).
    pub fn cfs_handle(&self) -> CfsHandle {
        CfsHandle {
            version: self.version,
            dir: self.cpu_dir().to_path_buf(),
        }
    }

    /// Read back the CFS settings as the kernel holds them.
    pub fn cfs(&self) -> Result<CfsLimit, CgroupError> {
        let d = self.cpu_dir();
        let num = |p: &Path| -> Result<i64, CgroupError> {
            let t = read_trimmed(p)?;
            t.parse().map_err(|_| CgroupError::Format {
                path: p.to_path_buf(),
                what: format!("`{t}` is not a number"),
            })
        };
        match self.version {
            Version::V1 => {
                let q = num(&d.join("cpu.cfs_quota_us"))?;
                let burst = d.join("cpu.cfs_burst_us");
                Ok(CfsLimit {
                    quota_us: (q >= 0).then_some(q as u64),
                    period_us: num(&d.join("cpu.cfs_period_us"))? as u64,
                    burst_us: if burst.exists() {
                        num(&burst)? as u64
                    } else {
                        0
                    },
                })
            }
            Version::V2 => {
                let p = d.join("cpu.max");
                let t = read_trimmed(&p)?;
                let bad = || CgroupError::Format {
                    path: p.clone(),
                    what: format!("`{t}` is not `<quota|max> <period>`"),
                };
                let (q, per) = t.split_once(' ').ok_or_else(bad)?;
                let burst = d.join("cpu.max.burst");
                Ok(CfsLimit {
                    quota_us: if q == "max" {
                        None
                    } else {
                        Some(q.parse().map_err(|_| bad())?)
                    },
                    period_us: per.trim().parse().map_err(|_| bad())?,
                    burst_us: if burst.exists() {
                        num(&burst)? as u64
                    } else {
                        0
                    },
                })
            }
        }
    }

    /// Process ids in this cgroup (all hierarchies together, without repeats).
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for f in self.procs_files() {
            if let Ok(text) = fs::read_to_string(&f) {
                pids.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Process ids in this cgroup and every cgroup below it.
    pub fn pids_recursive(&self) -> Vec<i32> {
        let mut dirs = Vec::new();
        for d in &self.dirs {
            collect_subdirs(d, &mut dirs);
        }
        let mut pids: Vec<i32> = dirs
            .iter()
            .flat_map(|d| {
                fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Folders of this cgroup that still exist (after a teardown: what it left behind).
    pub fn remaining_dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().filter(|d| d.exists()).cloned().collect()
    }

    /// Kill everything in the cgroup and remove its folders. Waits (up to `timeout`) for
    /// the processes to go; a process that cannot be killed leaves the folder in place and
    /// is reported, and the next run's stale sweep retries.
    pub fn destroy(mut self, timeout: Duration) -> Result<(), CgroupError> {
        let r = self.destroy_inner(timeout);
        self.removed = true;
        r
    }

    fn destroy_inner(&mut self, timeout: Duration) -> Result<(), CgroupError> {
        kill_and_remove(&self.dirs, timeout)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = self.destroy_inner(Duration::from_secs(2)) {
                eprintln!("throttlebench: could not remove cgroup: {e}");
            }
        }
    }
}

/// Setting one cgroup's CFS bandwidth limit.
#[derive(Debug, Clone)]
pub struct CfsHandle {
    version: Version,
    dir: PathBuf,
}

impl CfsHandle {
    /// Apply CFS bandwidth settings. v1: cpu.cfs_period_us, cpu.cfs_quota_us (-1 = no
    /// limit), cpu.cfs_burst_us; v2: cpu.max ("<quota> <period>" or "max <period>") and
    /// cpu.max.burst. The burst file is only written when a burst is asked for, so kernels
    /// without burst support still run burst-less scenarios.
    pub fn set(&self, limit: &CfsLimit) -> Result<(), CgroupError> {
        let d = &self.dir;
        match self.version {
            Version::V1 => {
                // Quota first to -1 so a shorter period is never rejected against an old quota.
                write_file(&d.join("cpu.cfs_quota_us"), "-1")?;
                write_file(&d.join("cpu.cfs_period_us"), &limit.period_us.to_string())?;
                let quota = limit
                    .quota_us
                    .map(|q| q.to_string())
                    .unwrap_or_else(|| "-1".into());
                write_file(&d.join("cpu.cfs_quota_us"), &quota)?;
                if limit.burst_us > 0 {
                    write_file(&d.join("cpu.cfs_burst_us"), &limit.burst_us.to_string())?;
                }
            }
            Version::V2 => {
                let quota = limit
                    .quota_us
                    .map(|q| q.to_string())
                    .unwrap_or_else(|| "max".into());
                write_file(&d.join("cpu.max"), &format!("{quota} {}", limit.period_us))?;
                if limit.burst_us > 0 {
                    write_file(&d.join("cpu.max.burst"), &limit.burst_us.to_string())?;
                }
            }
        }
        Ok(())
    }
}

/// Freezing and thawing one cgroup.
#[derive(Debug, Clone)]
pub struct FreezerHandle {
    version: Version,
    dir: PathBuf,
}

impl FreezerHandle {
    /// Freeze (true) or thaw (false): v1 freezer.state FROZEN/THAWED, v2 cgroup.freeze.
    pub fn set(&self, frozen: bool) -> Result<(), CgroupError> {
        match self.version {
            Version::V1 => write_file(
                &self.dir.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            ),
            Version::V2 => write_file(
                &self.dir.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
            ),
        }
    }

    /// Whether the kernel reports the cgroup fully frozen (v1 freezer.state is FROZEN, not
    /// FREEZING; v2 cgroup.events has `frozen 1`).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(match self.version {
            Version::V1 => read_trimmed(&self.dir.join("freezer.state"))? == "FROZEN",
            Version::V2 => read_trimmed(&self.dir.join("cgroup.events"))?
                .lines()
                .any(|l| l.trim() == "frozen 1"),
        })
    }
}

/// SIGKILL every process in `dirs` (v2: through cgroup.kill when the kernel has it), reap
/// any that are this process's children, and remove the folders, deepest first.
pub(crate) fn kill_and_remove(dirs: &[PathBuf], timeout: Duration) -> Result<(), CgroupError> {
    let deadline = Instant::now() + timeout;
    // Children first: a folder with sub-folders cannot be removed.
    let mut all: Vec<PathBuf> = Vec::new();
    for d in dirs {
        collect_subdirs(d, &mut all);
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    // v1 freezer: a frozen task cannot die until thawed, and it is frozen in every
    // hierarchy at once: thaw all the freezer folders before killing in any folder.
    for dir in &all {
        let freezer = dir.join("freezer.state");
        if freezer.exists() {
            let _ = write_file(&freezer, "THAWED");
        }
    }
    for dir in &all {
        if !dir.exists() {
            continue;
        }
        let kill_file = dir.join("cgroup.kill");
        if kill_file.exists() {
            let _ = write_file(&kill_file, "1");
        }
        loop {
            let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<i32> = procs
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            if pids.is_empty() {
                break;
            }
            for pid in &pids {
                // A pid that is gone gives ESRCH, which is fine.
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
                let _ = kill(Pid::from_raw(*pid), Signal::SIGCONT);
                reap_if_child(*pid);
            }
            if Instant::now() > deadline {
                return Err(CgroupError::Format {
                    path: dir.clone(),
                    what: format!("processes {pids:?} are still inside after SIGKILL"),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        loop {
            match fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                // The kernel frees a cgroup shortly after its last task is released.
                Err(e)
                    if e.raw_os_error() == Some(Errno::EBUSY as i32)
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(CgroupError::io(dir, e)),
            }
        }
    }
    Ok(())
}

fn collect_subdirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    out.push(dir.to_path_buf());
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_subdirs(&e.path(), out);
            }
        }
    }
}

/// Reap `pid` if it is a child of this process and has exited; otherwise do nothing.
fn reap_if_child(pid: i32) {
    // ECHILD for non-children is ignored.
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
}

#[cfg(test)]
mod tests;
