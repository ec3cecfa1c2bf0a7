//! The cgroup folders a runtime put a container in, found from the container's pid
//! (`/proc/<pid>/cgroup`) and the cgroup mounts (`/proc/self/mountinfo`), so the suite
//! can sample them like its own (`cpu.stat`, `cpuacct.usage`). Also the clean-up of what
//! runtimes leave: a container's folders that remain, and the empty `throttlebench`
//! parents runtimes make in hierarchies the suite never uses (memory, pids, ...), removed
//! under the same lock the cgroup layer takes (flock on the cgroup root folder).

use super::{RuntimeError, PARENT};
use nix::fcntl::{Flock, FlockArg};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One line of /proc/<pid>/cgroup, with the folder it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupFolder {
    /// The hierarchy's controllers (`["cpu"]`, `["cpu", "cpuacct"]`, `["name=systemd"]`;
    /// for v2, those of the v2 root's `cgroup.controllers` read by the caller, or none).
    pub controllers: Vec<String>,
    /// The cgroup's path inside its hierarchy (`/throttlebench/<name>`).
    pub path: String,
    /// The folder on the host, if the hierarchy is mounted.
    pub folder: Option<PathBuf>,
    /// Where the hierarchy is mounted.
    pub mount_point: Option<PathBuf>,
    /// A v2 (unified) hierarchy.
    pub v2: bool,
}

/// The cgroups of a container's main process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroups {
    pub folders: Vec<CgroupFolder>,
}

impl ContainerCgroups {
    /// Read the cgroups of `pid` under `proc_root`, placing them with the mounts of
    /// `proc_root/self/mountinfo`. v2 controllers come from `cgroup.controllers` of the
    /// v2 mount.
    pub fn of_pid(proc_root: &Path, pid: u32) -> Result<ContainerCgroups, RuntimeError> {
        let cg = proc_root.join(pid.to_string()).join("cgroup");
        let text = fs::read_to_string(&cg).map_err(|e| RuntimeError::io(&cg, e))?;
        let mi = proc_root.join("self/mountinfo");
        let mounts = fs::read_to_string(&mi).map_err(|e| RuntimeError::io(&mi, e))?;
        Ok(ContainerCgroups::from_texts(&text, &mounts))
    }

    /// The same from the two files' texts.
    pub fn from_texts(proc_cgroup: &str, mountinfo: &str) -> ContainerCgroups {
        let mounts = parse_mountinfo(mountinfo);
        let mut folders = parse_proc_cgroup(proc_cgroup);
        for f in &mut folders {
            let mount = mounts.iter().find(|m| {
                if f.v2 {
                    m.v2
                } else {
                    !m.v2 && f.controllers.iter().all(|c| m.options.contains(c))
                }
            });
            if let Some(m) = mount {
                // A mount of a sub-tree (mount root not "/") holds paths below its root.
                let rel = f
                    .path
                    .strip_prefix(m.root.trim_end_matches('/'))
                    .unwrap_or(&f.path);
                f.folder = Some(m.mount_point.join(rel.trim_start_matches('/')));
                f.mount_point = Some(m.mount_point.clone());
                if f.v2 {
                    f.controllers = fs::read_to_string(m.mount_point.join("cgroup.controllers"))
                        .map(|t| t.split_whitespace().map(String::from).collect())
                        .unwrap_or_default();
                }
            }
        }
        ContainerCgroups { folders }
    }

    /// The folder of the hierarchy that holds `controller` (v1 first, then a v2 root
    /// that offers it).
    pub fn folder_of(&self, controller: &str) -> Option<&Path> {
        self.folders
            .iter()
            .filter(|f| f.controllers.iter().any(|c| c == controller))
            .find_map(|f| f.folder.as_deref())
    }

    /// Where `cpu.stat` (nr_periods, nr_throttled, throttled time) is.
    pub fn cpu_stat(&self) -> Option<PathBuf> {
        self.folder_of("cpu").map(|d| d.join("cpu.stat"))
    }

    /// Where the CPU usage is: v1 `cpuacct.usage` (ns), v2 `cpu.stat` (`usage_usec`).
    pub fn usage_file(&self) -> Option<PathBuf> {
        if let Some(d) = self.folder_of("cpuacct") {
            return Some(d.join("cpuacct.usage"));
        }
        self.folders
            .iter()
            .find(|f| f.v2 && f.controllers.iter().any(|c| c == "cpu"))
            .and_then(|f| f.folder.as_ref())
            .map(|d| d.join("cpu.stat"))
    }

    /// The CPU time used so far, ns (v1 `cpuacct.usage`; v2 `usage_usec` × 1000).
    pub fn usage_ns(&self) -> Result<u64, RuntimeError> {
        let path = self.usage_file().ok_or_else(|| RuntimeError::Runtime {
            runtime: "cgroup",
            what: "the container has no cpuacct or v2 cpu cgroup to read usage from".into(),
        })?;
        let text = fs::read_to_string(&path).map_err(|e| RuntimeError::io(&path, e))?;
        let bad = || RuntimeError::Runtime {
            runtime: "cgroup",
            what: format!("{}: no usage in `{}`", path.display(), text.trim()),
        };
        if path.ends_with("cpuacct.usage") {
            text.trim().parse().map_err(|_| bad())
        } else {
            text.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|us| us * 1000)
                .ok_or_else(bad)
        }
    }

    /// The folders below the `throttlebench` parent of their hierarchy (the mount point's
    /// `throttlebench/...`): the ones this suite may remove. A folder elsewhere (the root
    /// of a hierarchy the runtime did not move the container in) is never touched.
    pub fn ours(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .folders
            .iter()
            .filter_map(|f| {
                let folder = f.folder.as_ref()?;
                let rel = folder.strip_prefix(f.mount_point.as_ref()?).ok()?;
                let mut parts = rel.components();
                let first = parts.next()?;
                (first.as_os_str() == PARENT && parts.next().is_some()).then(|| folder.clone())
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// The lines of /proc/<pid>/cgroup: `id:controllers:path`; `0::path` is v2.
pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupFolder> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let v2 = id == "0" && controllers.is_empty();
            Some(CgroupFolder {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect(),
                path: path.to_string(),
                folder: None,
                mount_point: None,
                v2,
            })
        })
        .collect()
}

/// A cgroup file system mount from /proc/self/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// The cgroup path at the mount's root (`/` for a whole hierarchy).
    pub root: String,
    pub mount_point: PathBuf,
    /// v1: the super options (`rw`, `cpu`, `cpuacct`, `name=systemd`, ...).
    pub options: Vec<String>,
    pub v2: bool,
}

/// The `cgroup` and `cgroup2` mounts in a mountinfo text (fields: id, parent, dev, root,
/// mount point, options, optional fields, `-`, type, source, super options).
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split_whitespace().collect();
            let r: Vec<&str> = right.split_whitespace().collect();
            let fstype = *r.first()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            Some(CgroupMount {
                root: unescape(l.get(3)?),
                mount_point: PathBuf::from(unescape(l.get(4)?)),
                options: r
                    .get(2)
                    .map(|o| o.split(',').map(String::from).collect())
                    .unwrap_or_default(),
                v2: fstype == "cgroup2",
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How long to wait for another process's hold on the parents' lock.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The lock that the cgroup layer takes while it makes and removes `throttlebench`
/// parents: flock on the cgroup root folder. Held while a runtime makes a container's
/// cgroups (it makes the parents too) and while empty parents are removed.
pub struct ParentsLock(#[allow(dead_code)] Flock<fs::File>);

pub fn lock_parents(cgroup_root: &Path) -> Result<ParentsLock, RuntimeError> {
    let start = Instant::now();
    let mut file = fs::File::open(cgroup_root).map_err(|e| RuntimeError::io(cgroup_root, e))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(ParentsLock(lock)),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => file = f,
            Err((_, e)) => return Err(RuntimeError::io(cgroup_root, io::Error::from(e))),
        }
        if start.elapsed() >= LOCK_WAIT {
            return Err(RuntimeError::Runtime {
                runtime: "cgroup",
                what: format!(
                    "{}: another process has held the cgroup parents' lock for {} s",
                    cgroup_root.display(),
                    LOCK_WAIT.as_secs()
                ),
            });
        }
        // The lock is held for a few system calls (or one runtime start): try again soon.
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every `throttlebench` parent folder under `cgroup_root`: `<root>/throttlebench` and
/// `<root>/<hierarchy>/throttlebench` for each mounted hierarchy.
pub fn parent_folders(cgroup_root: &Path) -> Vec<PathBuf> {
    let mut v = vec![cgroup_root.join(PARENT)];
    if let Ok(entries) = fs::read_dir(cgroup_root) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) && e.file_name() != PARENT {
                v.push(e.path().join(PARENT));
            }
        }
    }
    v.retain(|p| p.is_dir());
    v.sort();
    v
}

/// Remove the `throttlebench` parents under `cgroup_root` that are empty, under the
/// parents' lock. One that still has children (another run) stays.
pub fn remove_empty_parents(cgroup_root: &Path) -> Result<(), RuntimeError> {
    let parents = parent_folders(cgroup_root);
    if parents.is_empty() {
        return Ok(());
    }
    let _lock = lock_parents(cgroup_root)?;
    for p in parents {
        let _ = fs::remove_dir(p);
    }
    Ok(())
}

/// Remove a cgroup folder and the folders below it, deepest first, once no process is
/// left in them (waits up to `limit` for processes that are exiting). Processes still
/// there are killed first.
pub fn remove_tree(folder: &Path, limit: Duration) -> Result<(), RuntimeError> {
    if !folder.is_dir() {
        return Ok(());
    }
    let mut dirs = Vec::new();
    collect_dirs(folder, &mut dirs);
    // Deepest first.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let start = Instant::now();
    for d in &dirs {
        loop {
            match fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) => {
                    let procs = pids_in(d);
                    for pid in &procs {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(*pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                    if start.elapsed() >= limit {
                        return Err(RuntimeError::io(d, e));
                    }
                    // Waits for exiting processes to leave the cgroup (a state).
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    Ok(())
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// The pids in a cgroup folder (`cgroup.procs`).
pub fn pids_in(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| {
            t.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
