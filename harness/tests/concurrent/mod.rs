//! Two runs at once on one machine: their cgroups, result folders and the shared
//! `throttlebench` parents must not collide.

use crate::common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// Two short runs (two repeats each, so each makes and removes its cgroup twice).
const PAIR: &str = "name = \"pair\"\nsample_interval = \"10ms\"\nrepeats = 2\n\n[limiter]\nkind = \"none\"\n\n[workload]\nkind = \"duty\"\non = \"20ms\"\noff = \"20ms\"\nduration = \"150ms\"\n";

fn start_default_folder_run(cwd: &Path, scenario: &Path) -> Child {
    tb().current_dir(cwd)
        .args(["run", scenario.to_str().unwrap(), "--no-plot"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The run.json of a finished run: complete, with its planned runs, each in a cgroup
/// named after the harness `pid`; returns the cgroup names.
fn check_folder(dir: &Path, pid: u32) -> Vec<String> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["complete"], true, "{}", dir.display());
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{}: {runs:?}", dir.display());
    let rows = read_csv(&dir.join("summary.csv"));
    assert_eq!(rows.len(), 2, "{}: {rows:?}", dir.display());
    for f in ["timeseries.csv", "latency.csv"] {
        assert!(dir.join(f).is_file(), "{}/{f} missing", dir.display());
    }
    runs.iter()
        .map(|r| {
            let cg = r["result"]["cgroup"].as_str().unwrap().to_string();
            assert!(
                cg.starts_with(&format!("run-{pid}-")),
                "{}: cgroup {cg} is not of harness {pid}",
                dir.display()
            );
            cg
        })
        .collect()
}

#[test]
fn two_runs_started_at_once_get_their_own_cgroups_and_result_folders() {
    if !real_cgroups_or_skip("two runs at once") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("pair");
    let file = dir.file("s.toml", PAIR);
    let mut folders: HashSet<PathBuf> = HashSet::new();
    let mut cgroups: HashSet<String> = HashSet::new();
    for pair in 0..10 {
        // Started back to back: well within one second, the resolution of the default
        // folder's time stamp.
        let a = start_default_folder_run(dir.path(), &file);
        let b = start_default_folder_run(dir.path(), &file);
        for child in [a, b] {
            let pid = child.id();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "pair {pair}: {}", text(&out));
            let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let folder = dir.path().join(&printed);
            assert!(
                folders.insert(folder.clone()),
                "pair {pair}: two runs wrote to one folder {printed}"
            );
            for cg in check_folder(&folder, pid) {
                assert!(cgroups.insert(cg.clone()), "cgroup {cg} used twice");
            }
        }
    }
    assert_eq!(folders.len(), 20);
    // Every folder under results/pair is one of the runs' (none half-made or extra).
    let made: HashSet<PathBuf> = std::fs::read_dir(dir.path().join("results/pair"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(made, folders);
}

/// Threads that each make and remove a run cgroup in a loop, and then the parents when
/// empty, as runs of several processes do: no thread may fail to make its cgroup because
/// another removed a parent under it. (The tool's lock serialises across processes and
/// threads alike: each holder has its own open file.)
#[test]
fn making_and_removing_the_shared_parents_at_once_never_fails() {
    if !real_cgroups_or_skip("parents churn") {
        return;
    }
    let _x = exclusive();
    let h = throttlebench::cgroup::Hierarchy::detect(Path::new(CGROUP_ROOT)).unwrap();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let h = h.clone();
            std::thread::spawn(move || {
                let mut errors = Vec::new();
                for _ in 0..300 {
                    match h.create_run(&[]) {
                        Ok(cg) => {
                            if let Err(e) = cg.destroy(std::time::Duration::from_secs(2)) {
                                errors.push(format!("destroy: {e}"));
                            }
                        }
                        Err(e) => errors.push(format!("create: {e}")),
                    }
                    h.remove_parents_if_empty();
                }
                errors
            })
        })
        .collect();
    let errors: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(
        errors.is_empty(),
        "{} of 900 failed, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
}

/// A run that is interrupted (SIGINT) and waited for if the test ends before it.
struct Interrupting(Option<Child>);

impl Drop for Interrupting {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGINT);
            let _ = c.wait();
        }
    }
}

/// `--out` a folder that another run is writing: refused, naming the folder, and the
/// other run goes on unharmed.
#[test]
fn a_second_run_into_the_folder_of_a_live_run_is_refused_with_exit_7() {
    if !real_cgroups_or_skip("--out of a live run") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("inuse");
    let long = dir.file(
        "long.toml",
        &scenario(
            "long",
            "kind = \"none\"",
            "kind = \"duty\"\non = \"60s\"\noff = \"0ms\"\nduration = \"60s\"",
        ),
    );
    let short = dir.file("short.toml", PAIR);
    let out = dir.path().join("out");
    let mut first = Interrupting(Some(
        tb().args(["run", long.to_str().unwrap(), "--no-plot", "--out"])
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // It has its folder (locked before its first file) once summary.csv exists.
    wait_for(
        "the first run's summary.csv",
        Duration::from_secs(20),
        || out.join("summary.csv").exists(),
    );
    let second = tb()
        .args(["run", short.to_str().unwrap(), "--no-plot", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(7), "{}", text(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(out.to_str().unwrap()) && err.contains("another throttlebench run"),
        "{err}"
    );
    assert!(!err.contains("run 1/"), "the second run measured: {err}");
    // The first run's folder is its own: stop it, and find its one interrupted row.
    let first = first.0.take().unwrap();
    let _ = kill(Pid::from_raw(first.id() as i32), Signal::SIGINT);
    let o = first.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let rows = read_csv(&out.join("summary.csv"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["scenario"], "long");
    assert_eq!(rows[0]["outcome"], "interrupted");
}

#[test]
fn two_probes_started_at_once_get_their_own_result_folders() {
    let _x = exclusive();
    let dir = TempDir::new("probe-pair");
    let start = || {
        tb().current_dir(dir.path())
            .args(["probe", "steal", "--duration", "200ms", "--cpus", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let folders: Vec<PathBuf> = std::fs::read_dir(dir.path().join("results/probe-steal"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(folders.len(), 2, "{folders:?}");
    for f in &folders {
        let rows = read_csv(&f.join("steal.csv"));
        assert_eq!(rows.len(), 2, "{}: {rows:?}", f.display());
    }
}
