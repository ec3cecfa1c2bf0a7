//! What a watch reads: its targets (`PATH`, `pid:N`, the children of `--children PATH`)
//! resolved into cgroup folders, by reading the file system only.
//!
//! cgroup v1 keeps each controller in its own hierarchy, so a v1 cgroup is a folder in
//! the cpu hierarchy (cpu.stat: periods, throttling, burst) and its twin at the same
//! path in the cpuacct hierarchy (cpuacct.usage: CPU time); with a joint `cpu,cpuacct`
//! mount both are one folder. A v2 cgroup is one folder whose cpu.stat holds everything
//! (usage_usec always; the bandwidth counters only where the cpu controller is enabled).

use crate::cgroup::{CgroupError, Hierarchy};
use crate::sample::GroupSources;
use std::fs;
use std::path::{Path, PathBuf};

/// A target as the command line gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A cgroup folder: absolute, or relative to the cgroup root (or, v1, to the cpu
    /// hierarchy).
    Path(PathBuf),
    /// The cgroup of a process (`pid:N`).
    Pid(u32),
}

impl std::str::FromStr for TargetSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<TargetSpec, String> {
        match s.strip_prefix("pid:") {
            Some(n) => n
                .trim()
                .parse()
                .map(TargetSpec::Pid)
                .map_err(|_| format!("`{s}`: pid:N takes a process id, like pid:1234")),
            None if s.is_empty() => Err("an empty target".into()),
            None => Ok(TargetSpec::Path(PathBuf::from(s))),
        }
    }
}

impl std::fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetSpec::Path(p) => write!(f, "{}", p.display()),
            TargetSpec::Pid(n) => write!(f, "pid:{n}"),
        }
    }
}

/// A target that cannot be watched, with the path or process it concerns.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{}: not a cgroup folder with cpu.stat{hint}", path.display())]
    NotACgroup { path: PathBuf, hint: String },
    #[error("{}: no cpuacct twin at {} to read the cgroup's CPU time from (cgroup v1 keeps it in the cpuacct hierarchy)", cpu.display(), cpuacct.display())]
    NoUsage { cpu: PathBuf, cpuacct: PathBuf },
    #[error("pid:{pid}: {what}")]
    Process { pid: u32, what: String },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

/// How cgroups are laid out under the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Controller hierarchies; `cpu` and `cpuacct` are the same folder on a joint mount.
    V1 { cpu: PathBuf, cpuacct: PathBuf },
    /// One tree.
    V2 { root: PathBuf },
}

/// One cgroup a watch reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// Its path from the hierarchy's root, without the leading `/` (`/` for the root
    /// itself): the `group` of its rows.
    pub name: String,
    /// The folder with cpu.stat (v1: in the cpu hierarchy).
    pub cpu_dir: PathBuf,
    /// Its cpu.stat.
    pub cpu_stat: PathBuf,
    /// v1: cpuacct.usage of its twin in the cpuacct hierarchy; v2: None (cpu.stat).
    pub usage: Option<PathBuf>,
    /// A v2 folder.
    pub v2: bool,
}

impl Watched {
    /// The `cgroup` label: its path as /proc/<pid>/cgroup shows it.
    pub fn cgroup(&self) -> String {
        if self.name == "/" {
            "/".into()
        } else {
            format!("/{}", self.name)
        }
    }

    /// Where the sampler reads it.
    pub fn sources(&self) -> GroupSources<'_> {
        GroupSources {
            cpu_stat: Some(&self.cpu_stat),
            usage: self.usage.as_deref(),
        }
    }
}

fn rel_name(rel: &Path) -> String {
    let s = rel.to_string_lossy().trim_matches('/').to_string();
    if s.is_empty() {
        "/".into()
    } else {
        s
    }
}

impl Layout {
    /// The layout under `root`: v2 when it has `cgroup.controllers`, else v1 with cpu and
    /// cpuacct hierarchies (separate or joint). Without them, the error is the cgroup
    /// layer's (exit 5, a missing controller).
    pub fn detect(root: &Path) -> Result<Layout, CgroupError> {
        if root.join("cgroup.controllers").exists() {
            return Ok(Layout::V2 {
                root: root.to_path_buf(),
            });
        }
        let h = Hierarchy::detect(root)?;
        let mount = |c| {
            h.mount_of(c)
                .map(Path::to_path_buf)
                .expect("detect found cpu and cpuacct")
        };
        Ok(Layout::V1 {
            cpu: mount(crate::cgroup::Controller::Cpu),
            cpuacct: mount(crate::cgroup::Controller::Cpuacct),
        })
    }

    /// The version's name.
    pub fn version(&self) -> &'static str {
        match self {
            Layout::V1 { .. } => "v1",
            Layout::V2 { .. } => "v2",
        }
    }

    /// The cgroup at `rel` from the hierarchy's root (a path /proc/<pid>/cgroup gives).
    pub fn at(&self, rel: &Path) -> Result<Watched, TargetError> {
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        match self {
            Layout::V2 { root } => {
                let dir = root.join(rel);
                if !dir.join("cpu.stat").is_file() {
                    return Err(TargetError::NotACgroup {
                        path: dir,
                        hint: String::new(),
                    });
                }
                Ok(Watched {
                    name: rel_name(rel),
                    cpu_stat: dir.join("cpu.stat"),
                    cpu_dir: dir,
                    usage: None,
                    v2: true,
                })
            }
            Layout::V1 { cpu, cpuacct } => {
                let dir = cpu.join(rel);
                if !dir.join("cpu.stat").is_file() {
                    return Err(TargetError::NotACgroup {
                        path: dir,
                        hint: format!(" in the cpu hierarchy ({})", cpu.display()),
                    });
                }
                let usage = cpuacct.join(rel).join("cpuacct.usage");
                if !usage.is_file() {
                    return Err(TargetError::NoUsage {
                        cpu: dir,
                        cpuacct: usage,
                    });
                }
                Ok(Watched {
                    name: rel_name(rel),
                    cpu_stat: dir.join("cpu.stat"),
                    cpu_dir: dir,
                    usage: Some(usage),
                    v2: false,
                })
            }
        }
    }

    /// A cgroup folder given as a path: absolute, or relative to `root` (v1: or to the
    /// cpu hierarchy). v1 accepts the folder in the cpu or the cpuacct hierarchy; a v2
    /// folder (with cgroup.controllers) elsewhere, such as the v2 tree of a hybrid
    /// machine, is read as v2.
    pub fn resolve(&self, root: &Path, path: &Path) -> Result<Watched, TargetError> {
        let mut candidates = vec![if path.is_absolute() {
            path.to_path_buf()
        } else {
            root.join(path)
        }];
        if let (false, Layout::V1 { cpu, .. }) = (path.is_absolute(), self) {
            candidates.push(cpu.join(path));
        }
        let Some(dir) = candidates.iter().find(|d| d.is_dir()) else {
            return Err(TargetError::NotACgroup {
                path: candidates[0].clone(),
                hint: " (no such folder)".into(),
            });
        };
        let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        let canon = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        match self {
            Layout::V2 { root } => match dir.strip_prefix(canon(root)) {
                Ok(rel) => self.at(rel),
                Err(_) => Err(TargetError::NotACgroup {
                    path: dir,
                    hint: format!(" under the cgroup root {}", root.display()),
                }),
            },
            Layout::V1 { cpu, cpuacct } => {
                for mount in [cpu, cpuacct] {
                    if let Ok(rel) = dir.strip_prefix(canon(mount)) {
                        return self.at(rel);
                    }
                }
                if dir.join("cgroup.controllers").exists() && dir.join("cpu.stat").is_file() {
                    return Ok(Watched {
                        name: rel_name(dir.strip_prefix(canon(root)).unwrap_or(&dir)),
                        cpu_stat: dir.join("cpu.stat"),
                        cpu_dir: dir,
                        usage: None,
                        v2: true,
                    });
                }
                Err(TargetError::NotACgroup {
                    path: dir,
                    hint: format!(
                        " in the cpu hierarchy ({}) or the cpuacct one ({})",
                        cpu.display(),
                        cpuacct.display()
                    ),
                })
            }
        }
    }

    /// The cgroup of process `pid`, from `proc_root/<pid>/cgroup`: v2's `0::` line, or
    /// v1's line of the cpu controller.
    pub fn of_process(&self, proc_root: &Path, pid: u32) -> Result<Watched, TargetError> {
        let file = proc_root.join(pid.to_string()).join("cgroup");
        let text = fs::read_to_string(&file).map_err(|e| TargetError::Process {
            pid,
            what: format!("{}: {e} (no such process?)", file.display()),
        })?;
        let rel = text.lines().find_map(|line| {
            let mut f = line.splitn(3, ':');
            let (id, controllers, path) = (f.next()?, f.next()?, f.next()?);
            let wanted = match self {
                Layout::V2 { .. } => id == "0" && controllers.is_empty(),
                Layout::V1 { .. } => controllers.split(',').any(|c| c == "cpu"),
            };
            wanted.then(|| path.to_string())
        });
        let Some(rel) = rel else {
            return Err(TargetError::Process {
                pid,
                what: format!(
                    "{} has no line for the {} cpu controller",
                    file.display(),
                    self.version()
                ),
            });
        };
        self.at(Path::new(&rel))
    }

    /// The child cgroups of `parent`, by name. A v1 child without its cpuacct twin is
    /// skipped, with the reason returned beside.
    pub fn children(
        &self,
        parent: &Watched,
    ) -> Result<(Vec<Watched>, Vec<TargetError>), TargetError> {
        let entries =
            fs::read_dir(&parent.cpu_dir).map_err(|e| CgroupError::io(&parent.cpu_dir, e))?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        let base = if parent.name == "/" {
            PathBuf::new()
        } else {
            PathBuf::from(&parent.name)
        };
        let (mut found, mut skipped) = (Vec::new(), Vec::new());
        for n in names {
            let rel = base.join(&n);
            let got = if parent.v2 && matches!(self, Layout::V1 { .. }) {
                // A v2 folder on a v1 machine (its unified tree): children are v2 too.
                let dir = parent.cpu_dir.join(&n);
                if dir.join("cpu.stat").is_file() {
                    Ok(Watched {
                        name: rel_name(&rel),
                        cpu_stat: dir.join("cpu.stat"),
                        cpu_dir: dir,
                        usage: None,
                        v2: true,
                    })
                } else {
                    continue;
                }
            } else {
                self.at(&rel)
            };
            match got {
                Ok(w) => found.push(w),
                Err(e @ TargetError::NoUsage { .. }) => skipped.push(e),
                // A folder that went between the listing and the look: not a child now.
                Err(TargetError::NotACgroup { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((found, skipped))
    }
}
