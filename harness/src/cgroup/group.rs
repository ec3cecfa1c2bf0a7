//! One run's cgroup: a folder in each controller hierarchy it uses, its settings (CFS
//! bandwidth, weight, cpuset, freezer) and counters, and removing it with whatever still
//! runs inside.

use super::files::{enable_controllers, inherit_cpuset, read_trimmed, write_file};
use super::{CfsLimit, CgroupError, Controller, Version};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    pub(super) fn make(
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

    /// CPU weight as v1 shares (a Kubernetes request: kubelet's MilliCPUToShares). v1
    /// writes cpu.shares; v2 writes cpu.weight by kubelet's conversion of shares
    /// (`1 + (shares - 2) * 9999 / 262142`), as kubelet does for pod cgroups.
    pub fn set_shares(&self, shares: u64) -> Result<(), CgroupError> {
        match self.version {
            Version::V1 => write_file(&self.cpu_dir().join("cpu.shares"), &shares.to_string()),
            Version::V2 => write_file(
                &self.cpu_dir().join("cpu.weight"),
                &crate::units::cpu_limits::kubelet_shares_to_weight(shares).to_string(),
            ),
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
