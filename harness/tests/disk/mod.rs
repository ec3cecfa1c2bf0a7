//! Results that cannot be written: a read-only folder ends the run before it measures
//! anything, a full disk stops it at the first failed write with the earlier runs kept;
//! both exit 7 with the file named, and leave no cgroup, process or empty folder.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// Six short runs: each adds about 20 KB to run.json (which holds every sample so far).
const SIX_RUNS: &str = "name = \"disk\"\nsample_interval = \"10ms\"\nrepeats = 6\n\n[limiter]\nkind = \"none\"\n\n[workload]\nkind = \"duty\"\non = \"20ms\"\noff = \"20ms\"\nduration = \"300ms\"\n";

/// A workload program that appends its pid to `pids` and then runs the real workload, so
/// a test can tell whether the workload started and whether its processes are gone.
fn recording_workload(dir: &TempDir, pids: &Path) -> PathBuf {
    let p = dir.file(
        "workload.sh",
        &format!(
            "#!/bin/sh\necho $$ >> {}\nexec {} fibtest \"$@\"\n",
            pids.display(),
            env!("CARGO_BIN_EXE_throttlebench")
        ),
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn recorded(pids: &Path) -> Vec<i32> {
    std::fs::read_to_string(pids)
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

fn run_in(cwd: &Path, workload: &Path, scenario: &Path, out: Option<&Path>) -> Output {
    let mut cmd = tb();
    cmd.current_dir(cwd)
        .env("THROTTLEBENCH_FIBTEST", workload)
        .args(["run", scenario.to_str().unwrap(), "--no-plot"]);
    if let Some(o) = out {
        cmd.arg("--out").arg(o);
    }
    cmd.output().unwrap()
}

#[test]
fn an_unwritable_results_folder_ends_the_run_before_it_starts_with_exit_7() {
    if !real_cgroups_or_skip("unwritable results folder") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("ro");
    let ro = dir.path().join("ro");
    let Some(_mount) = mount_tmpfs_or_skip("unwritable results folder", &ro, "ro,size=1m") else {
        return;
    };
    let file = dir.file("s.toml", SIX_RUNS);
    let pids = dir.path().join("pids");
    let workload = recording_workload(&dir, &pids);
    let cases: [(&Path, Option<PathBuf>, PathBuf); 3] = [
        // --out a new folder on the read-only file system,
        (dir.path(), Some(ro.join("out")), ro.join("out")),
        // --out the read-only folder itself (it exists: its first file fails),
        (dir.path(), Some(ro.clone()), ro.join("summary.csv")),
        // the default folder, results/<scenario>/<stamp>, under a read-only current folder.
        (&ro, None, PathBuf::from("results")),
    ];
    for (cwd, out, named) in cases {
        let o = run_in(cwd, &workload, &file, out.as_deref());
        assert_eq!(o.status.code(), Some(7), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("cannot write results to")
                && err.contains(named.to_str().unwrap())
                && err.contains("Read-only file system"),
            "{err}"
        );
        assert!(!err.contains("run 1/"), "a run was measured: {err}");
        assert!(recorded(&pids).is_empty(), "the workload started: {err}");
    }
    assert_eq!(std::fs::read_dir(&ro).unwrap().count(), 0);
}

#[test]
fn a_run_that_could_not_make_its_cgroups_fails_before_making_its_result_folder() {
    // A fake v1 root with cpu and cpuacct but no cpuset: a cpuset run is refused (exit 5)
    // before its folder is made. No root needed: nothing is made under the fake root.
    let dir = TempDir::new("nocpuset");
    let root = dir.path().join("cgroup");
    std::fs::create_dir_all(root.join("cpu")).unwrap();
    std::fs::write(root.join("cpu/cpu.cfs_quota_us"), "-1\n").unwrap();
    std::fs::create_dir_all(root.join("cpuacct")).unwrap();
    std::fs::write(root.join("cpuacct/cpuacct.usage"), "0\n").unwrap();
    let file = dir.file(
        "s.toml",
        &scenario(
            "nocpuset",
            "kind = \"cpuset\"\ncpus = \"0\"",
            "kind = \"duty\"\non = \"10ms\"\noff = \"0ms\"\nduration = \"10ms\"",
        ),
    );
    let out_dir = dir.path().join("out");
    let o = tb()
        .arg("--cgroup-root")
        .arg(&root)
        .args(["run", file.to_str().unwrap(), "--no-plot", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cpuset"));
    assert!(!out_dir.exists(), "an empty result folder was left");
    assert!(!root.join("cpu/throttlebench").exists());
}

#[test]
fn a_disk_full_from_the_start_fails_with_exit_7_and_leaves_no_folder() {
    if !real_cgroups_or_skip("disk full at the start") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("full0");
    let disk = dir.path().join("disk");
    let Some(_mount) = mount_tmpfs_or_skip("disk full at the start", &disk, "size=16k") else {
        return;
    };
    // Fill it: a folder and empty files can still be made, no byte written.
    let mut filler = std::fs::File::create(disk.join("filler")).unwrap();
    let chunk = [0u8; 4096];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    drop(filler);
    let file = dir.file("s.toml", SIX_RUNS);
    let pids = dir.path().join("pids");
    let workload = recording_workload(&dir, &pids);
    let out = disk.join("out");
    let o = run_in(dir.path(), &workload, &file, Some(&out));
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(out.join("summary.csv").to_str().unwrap()) && err.contains("disk is full"),
        "{err}"
    );
    assert!(recorded(&pids).is_empty(), "the workload started: {err}");
    assert!(!out.exists(), "the run left its result folder");
}

#[test]
fn a_disk_that_fills_up_stops_the_run_at_the_failed_write_keeping_earlier_runs() {
    if !real_cgroups_or_skip("disk full mid-run") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("full");
    let disk = dir.path().join("disk");
    // 64 KB: the first run's files (about 25 KB with run.json) fit; the second run's
    // run.json (about 45 KB, written next to the first's until renamed over it) does not.
    let Some(_mount) = mount_tmpfs_or_skip("disk full mid-run", &disk, "size=64k") else {
        return;
    };
    let file = dir.file("s.toml", SIX_RUNS);
    let pids = dir.path().join("pids");
    let workload = recording_workload(&dir, &pids);
    let out = disk.join("out");
    let o = run_in(dir.path(), &workload, &file, Some(&out));
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot write results to")
            && err.contains(out.to_str().unwrap())
            && err.contains("disk is full")
            && err.contains("No space left on device"),
        "{err}"
    );
    // The error names one of the folder's files, and the runs kept.
    let named = [
        "summary.csv",
        "timeseries.csv",
        "latency.csv",
        "duty.csv",
        "run.json",
    ]
    .iter()
    .any(|f| err.contains(out.join(f).to_str().unwrap()));
    assert!(named, "no file named: {err}");
    // Stopped at the first failed write: not all six ran.
    let started = recorded(&pids);
    assert!(
        (2..6).contains(&started.len()),
        "{} workloads started: {err}",
        started.len()
    );
    // What was written before is whole: summary.csv parses, with a row per run kept;
    // run.json parses, says incomplete, and holds the same runs.
    let rows = read_csv(&out.join("summary.csv"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["complete"], false);
    let kept = json["runs"].as_array().unwrap().len();
    assert!(kept >= 1, "no run kept: {err}");
    assert_eq!(rows.len(), kept, "summary.csv and run.json disagree");
    assert_eq!(
        kept,
        started.len() - 1,
        "the failed run is the last started"
    );
    assert!(
        err.contains(&format!("stopped after {kept} of 6 run(s)")),
        "{err}"
    );
    for f in ["timeseries.csv", "duty.csv"] {
        let rows = read_csv(&out.join(f));
        assert!(
            rows.iter().all(|r| num(r, "run") < kept as f64),
            "{f}: {} rows",
            rows.len()
        );
    }
    // Each kept run's on-periods are all there (the workload's 20 ms on, 20 ms off over
    // 300 ms: its count is in run.json).
    let duty = read_csv(&out.join("duty.csv"));
    for (i, run) in json["runs"].as_array().unwrap().iter().enumerate() {
        let reported = run["result"]["groups"][0]["workload"]["duty_periods"]
            .as_u64()
            .unwrap();
        let rows = duty.iter().filter(|r| num(r, "run") == i as f64).count();
        assert!(reported > 0, "run {i} reported no on-period");
        assert_eq!(rows as u64, reported, "run {i}: duty.csv rows");
    }
    assert!(!out.join("run.json.tmp").exists());
    // No process of the run is left (its cgroups are checked gone by `exclusive`).
    wait_for(
        "the run's workloads to be gone",
        Duration::from_secs(5),
        || {
            started
                .iter()
                .all(|p| !Path::new(&format!("/proc/{p}")).exists())
        },
    );
}
