//! Helpers shared by the integration tests: the binary, temp folders, scenario files,
//! reading result files, and the real-cgroup guard with its leftovers check.
#![allow(dead_code)]

pub mod prometheus;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The throttlebench binary under test.
pub fn tb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_throttlebench"))
}

/// A folder removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("tb-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// Write a file in the folder and return its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Rows of a CSV file as column -> value maps.
pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

pub fn num(row: &HashMap<String, String>, col: &str) -> f64 {
    let v = row
        .get(col)
        .unwrap_or_else(|| panic!("no column {col} in {row:?}"));
    v.parse()
        .unwrap_or_else(|_| panic!("column {col} = `{v}` is not a number"))
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether this is CI, where a test must not skip: any value of CI other than empty,
/// `false` or `0` (CI=1 and CI=yes count, as CI=true does).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "false" | "0"))
}

/// Whether this machine can run real-cgroup tests (root, a v1 or v2 cpu controller).
/// Outside CI a test without them prints why and passes; in CI (`ci()`) it fails, so a
/// CI machine that lost its cgroups cannot turn the suite green by skipping.
pub fn real_cgroups_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    let cpu = Path::new(CGROUP_ROOT).join("cpu/cpu.cfs_quota_us").exists()
        || std::fs::read_to_string(Path::new(CGROUP_ROOT).join("cgroup.controllers"))
            .map(|c| c.split_whitespace().any(|x| x == "cpu"))
            .unwrap_or(false);
    if root && cpu {
        return true;
    }
    let why = format!(
        "{test}: needs root and a cgroup cpu controller (root: {root}, cpu controller: {cpu})"
    );
    if ci() {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    false
}

/// Where the cgroup parents this tool makes can be: `throttlebench` at the root (v2) and
/// in every folder of it (each v1 hierarchy: cpu, cpuacct, cpuset, freezer, ...).
pub fn parents() -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    let mut v = vec![root.join("throttlebench")];
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && e.file_name() != "throttlebench" {
                v.push(p.join("throttlebench"));
            }
        }
    }
    v
}

/// Run cgroups currently under the throttlebench parents.
pub fn run_cgroups() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for p in parents() {
        if let Ok(entries) = std::fs::read_dir(&p) {
            v.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
    }
    v
}

/// Held by every test that makes real cgroups or loads the CPUs, so measurements do not
/// disturb each other and the leftovers check sees only its own test's cgroups.
pub struct Exclusive {
    _guard: MutexGuard<'static, ()>,
}

static EXCLUSIVE: Mutex<()> = Mutex::new(());

pub fn exclusive() -> Exclusive {
    let g = EXCLUSIVE.lock().unwrap_or_else(|p| p.into_inner());
    Exclusive { _guard: g }
}

/// Whether the cgroup at `path` belongs to a live process other than this test process:
/// a run of another test suite on this shared machine (`run-<pid>-<starttime>-<seq>`,
/// `throttlebench-<pid>-<starttime>-<seq>` of an OCI runtime's container, a test's own
/// `tb-<tag>-<pid>[-<n>]`), not one of ours, whose harnesses have ended by the check. A
/// name is foreign when a number in it is the pid of another live process (and, when the
/// number after it is a start time, that process started then).
fn foreign_live(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let parts: Vec<&str> = name.split('-').collect();
    let me = std::process::id();
    parts.iter().enumerate().any(|(i, p)| {
        let Ok(pid) = p.parse::<u32>() else {
            return false;
        };
        if pid <= 1 || pid == me || !Path::new(&format!("/proc/{pid}")).exists() {
            return false;
        }
        match parts.get(i + 1).and_then(|s| s.parse::<u64>().ok()) {
            // `<pid>-<starttime>`: the same process, not a reused pid.
            Some(start) if start > 1000 => {
                throttlebench::cgroup::process_start_time(pid) == Some(start)
            }
            _ => true,
        }
    })
}

impl Drop for Exclusive {
    /// The leftovers check: nothing of ours under the throttlebench parents, and no
    /// parent unless a live run of another suite is in it. Waited for a little, since a
    /// run of another suite may be between removing its cgroup and its parents.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let ours = || -> Vec<PathBuf> {
            run_cgroups()
                .into_iter()
                .filter(|c| !foreign_live(c))
                .collect()
        };
        let left = ours();
        assert!(left.is_empty(), "cgroups left behind: {left:?}");
        let stray = || -> Vec<PathBuf> {
            parents()
                .into_iter()
                .filter(|p| p.exists())
                .filter(|p| {
                    !std::fs::read_dir(p)
                        .map(|e| e.flatten().any(|e| foreign_live(&e.path())))
                        .unwrap_or(false)
                })
                .collect()
        };
        if !stray().is_empty() {
            let shown = stray();
            wait_for(
                &format!("parents {shown:?} to be removed"),
                Duration::from_secs(5),
                || stray().is_empty(),
            );
        }
    }
}

/// Wait for `cond` to hold, checking every few ms, up to `limit`. This waits on an event
/// (a file appearing, a process ending), not for a guessed time.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Write `text` as a scenario file in `dir`, run it into `dir/out`; the output and the
/// result folder.
pub fn run_scenario(dir: &TempDir, text: &str) -> (Output, PathBuf) {
    let file = dir.file("s.toml", text);
    let out_dir = dir.path().join("out");
    let out = tb()
        .args([
            "run",
            file.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    (out, out_dir)
}

/// A scenario file text with the given limiter and workload tables.
pub fn scenario(name: &str, limiter: &str, workload: &str) -> String {
    format!("name = \"{name}\"\nsample_interval = \"10ms\"\n\n[limiter]\n{limiter}\n\n[workload]\n{workload}\n")
}

/// Pids of the processes whose name (comm) is `name`.
pub fn processes_named(name: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_to_string(e.path().join("comm"))
            .map(|c| c.trim() == name)
            .unwrap_or(false)
        {
            v.push(pid);
        }
    }
    v
}

/// No process on the machine is stopped (state T): one that a test or the tool made and
/// forgot would hang forever. (The machine's own processes are not expected stopped
/// either; the project's before-stop hook checks the same.)
pub fn assert_no_stopped_processes() {
    let mut stopped = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(text) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(close) = text.rfind(')') else {
            continue;
        };
        let mut f = text[close + 1..].split_whitespace();
        if matches!(f.next(), Some("T") | Some("t")) {
            stopped.push(text[..close + 1].to_string());
        }
    }
    assert!(stopped.is_empty(), "processes left stopped: {stopped:?}");
}

/// A tmpfs mounted by a test, unmounted when dropped (declare it after the `TempDir`
/// that holds its mount point, so it goes first).
pub struct TmpfsMount(pub PathBuf);

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        use nix::mount::{umount2, MntFlags};
        // A lazy unmount if it is busy.
        if umount2(&self.0, MntFlags::empty()).is_err() {
            let _ = umount2(&self.0, MntFlags::MNT_DETACH);
        }
    }
}

/// Mount a tmpfs with `options` (`ro,size=1m`) at `dir` (made if missing). If this
/// machine cannot (no root, no mount(8), a container without the capability), the test
/// prints why and passes, except in CI (`ci()`), where it fails (as `real_cgroups_or_skip`).
pub fn mount_tmpfs_or_skip(test: &str, dir: &Path, options: &str) -> Option<TmpfsMount> {
    std::fs::create_dir_all(dir).unwrap();
    let why = match Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(dir)
        .output()
    {
        Ok(out) if out.status.success() => return Some(TmpfsMount(dir.to_path_buf())),
        Ok(out) => format!(
            "mount -t tmpfs -o {options} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("cannot run mount(8): {e}"),
    };
    let why = format!("{test}: needs to mount a tmpfs at {}: {why}", dir.display());
    if ci() {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    None
}
