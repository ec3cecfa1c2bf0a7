//! Without root: the harness run as `nobody` through `setpriv`. Cgroup limiters fail
//! with an error that says what privilege is missing and how to get it (exit 4; `check`
//! answers 125 so `git bisect run` skips); the signal limiter on the tool's own children
//! and the probes still work, measured from /proc.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

const NOBODY: u32 = 65534;

/// Whether the tests can switch to `nobody` (they need root and setpriv); under CI a
/// missing capability is a failure.
fn can_drop_privileges(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    let setpriv = std::path::Path::new("/usr/bin/setpriv").exists();
    if root && setpriv {
        return true;
    }
    let why = format!("{test}: needs root and /usr/bin/setpriv (root {root}, setpriv {setpriv})");
    assert!(!crate::common::ci(), "{why}");
    eprintln!("skipped: {why}");
    false
}

/// A temp folder `nobody` may write in.
fn shared_dir(tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

/// throttlebench as `nobody`, with no supplementary groups.
fn as_nobody(args: &[&str]) -> Output {
    Command::new("/usr/bin/setpriv")
        .arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .args(["--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_throttlebench"))
        .args(args)
        .current_dir("/")
        .output()
        .unwrap()
}

#[test]
fn a_cgroup_limiter_without_root_names_the_missing_privilege_and_check_skips_with_125() {
    if !can_drop_privileges("cgroup limiter as nobody") || !real_cgroups_or_skip("nobody cfs") {
        return;
    }
    let _x = exclusive();
    let dir = shared_dir("nobody-cfs");
    let file = dir.file(
        "s.toml",
        &scenario(
            "nobody-cfs",
            "kind = \"cfs\"\nquota = \"40ms\"",
            "kind = \"duty\"\non = \"1s\"\noff = \"0ms\"\nduration = \"1s\"",
        ),
    );
    let out_dir = dir.path().join("out");
    let args = [
        file.to_str().unwrap(),
        "--no-plot",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let run = as_nobody(&[&["run"], &args[..]].concat());
    assert_eq!(run.status.code(), Some(4), "{}", text(&run));
    let err = String::from_utf8_lossy(&run.stderr);
    for needed in [
        "`cfs` limiter needs a cgroup",
        "permission denied on /sys/fs/cgroup",
        "root",
        "Delegate=yes",
        "--cgroup-root",
    ] {
        assert!(err.contains(needed), "no `{needed}` in: {err}");
    }
    assert_eq!(
        err.lines().filter(|l| l.contains("error")).count(),
        1,
        "{err}"
    );
    let out2 = dir.path().join("out2");
    let check = as_nobody(&[
        "check",
        file.to_str().unwrap(),
        "--expect",
        "median(cpu_share) < 0.45",
        "--no-plot",
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert_eq!(check.status.code(), Some(125), "{}", text(&check));
    assert!(run_cgroups().is_empty(), "{:?}", run_cgroups());
}

#[test]
fn a_signal_duty_cycle_runs_without_root_measured_from_proc() {
    if !can_drop_privileges("signal limiter as nobody") {
        return;
    }
    let _x = exclusive();
    let dir = shared_dir("nobody-signal");
    let file = dir.file(
        "s.toml",
        &scenario(
            "nobody-signal",
            "kind = \"signal\"\nby = \"tree\"\non = \"50ms\"\noff = \"50ms\"",
            "kind = \"duty\"\non = \"2s\"\noff = \"0ms\"\nduration = \"2s\"",
        ),
    );
    let out_dir = dir.path().join("out");
    let out = as_nobody(&[
        "run",
        file.to_str().unwrap(),
        "--no-plot",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no cgroup (permission denied"),
        "{}",
        text(&out)
    );
    let rows = read_csv(&out_dir.join("summary.csv"));
    // Half of the time on, measured in clock ticks from /proc/<pid>/stat.
    let share = num(&rows[0], "cpu_share");
    assert!((0.4..=0.6).contains(&share), "cpu_share {share}");
    // No cgroup, no throttling counters: empty, not 0.
    assert_eq!(rows[0]["nr_periods"], "");
    assert_eq!(rows[0]["throttled_s"], "");
    assert_eq!(num(&rows[0], "leaked_stopped"), 0.0);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    let r = &json["runs"][0]["result"];
    assert!(r["without_cgroup"]
        .as_str()
        .unwrap()
        .contains("permission denied"));
    assert_eq!(r["cgroup"], "");
    assert_no_stopped_processes();
    assert!(run_cgroups().is_empty(), "{:?}", run_cgroups());
}

#[test]
fn the_probes_run_without_root() {
    if !can_drop_privileges("probes as nobody") {
        return;
    }
    let _x = exclusive();
    let dir = shared_dir("nobody-probes");
    let steal = dir.path().join("steal");
    let out = as_nobody(&[
        "probe",
        "steal",
        "--duration",
        "500ms",
        "--out",
        steal.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = read_csv(&steal.join("steal.csv"));
    assert!(!rows.is_empty());
    let entropy = dir.path().join("entropy");
    let out = as_nobody(&[
        "probe",
        "entropy",
        "--duration",
        "500ms",
        "--sources",
        "getrandom,urandom",
        "--fips-bytes",
        "0",
        "--out",
        entropy.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = read_csv(&entropy.join("entropy.csv"));
    assert!(rows.iter().any(|r| r["source"] == "getrandom"), "{rows:?}");
}
