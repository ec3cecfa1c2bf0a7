//! `watch` on real cgroups (v1 here) that the test makes and runs a workload in itself:
//! what it writes, that it changes nothing, Ctrl-C, children that come and go, and a
//! watch killed with SIGKILL.

use crate::common::cgroup::{duty, spawn_tb, v1, TestCgroup};
use crate::common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

fn ready(test: &str) -> bool {
    if !real_cgroups_or_skip(test) {
        return false;
    }
    if !v1() {
        // The test makes v1 cgroup pairs; v2 is tested in a guest (tests/vm). A CI
        // machine without them cannot pass by skipping it.
        assert!(
            !ci(),
            "{test}: written for cgroup v1 (cpu and cpuacct hierarchies)"
        );
        eprintln!("skipped: {test}: written for cgroup v1 (cpu and cpuacct hierarchies)");
        return false;
    }
    true
}

/// Rows of timeseries.csv so far (0 while the file is missing or has only its header).
fn rows_of(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("timeseries.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// Rows of timeseries.csv of group `group`.
fn rows_of_group(dir: &Path, group: &str) -> usize {
    std::fs::read_to_string(dir.join("timeseries.csv"))
        .map(|t| {
            t.lines()
                .filter(|l| l.split(',').nth(1) == Some(group))
                .count()
        })
        .unwrap_or(0)
}

fn interrupt(child: &Child, sig: Signal) {
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
}

fn run_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_watch_of_a_throttled_cgroup_and_its_process_writes_a_runs_files_and_changes_nothing() {
    let test = "a_watch_of_a_throttled_cgroup";
    if !ready(test) {
        return;
    }
    let _x = exclusive();
    let mut cg = TestCgroup::new(&format!("tb-watch-{}", std::process::id()));
    cg.limit(20_000, 100_000);
    // 0.5 s on, 0.5 s off under 20 ms per 100 ms: throttled in every period of each
    // on-phase, an episode of about 0.5 s a second.
    let pid = cg.start(duty("500ms", "500ms", "60s"));
    let before = std::fs::read_to_string(cg.cpu().join("cpu.cfs_quota_us")).unwrap();
    let dir = TempDir::new("watch");
    let out = dir.path().join("out");
    let target = format!("pid:{pid}");
    let w = spawn_tb(&[
        "watch",
        &cg.rel,
        &target,
        "--duration",
        "4s",
        "--interval",
        "10ms",
        "--out",
        out.to_str().unwrap(),
    ]);
    // Read only: while it runs, no cgroup of its own (the tool names them after its pid).
    let watcher = format!("-{}-", w.id());
    let mine = || {
        run_cgroups()
            .into_iter()
            .filter(|c| c.to_string_lossy().contains(&watcher))
            .collect::<Vec<_>>()
    };
    wait_for("rows", Duration::from_secs(30), || rows_of(&out) >= 10);
    assert!(mine().is_empty(), "the watch made cgroups: {:?}", mine());
    let o = w.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // And the limit is as it was.
    assert_eq!(
        std::fs::read_to_string(cg.cpu().join("cpu.cfs_quota_us")).unwrap(),
        before
    );
    for f in [
        "timeseries.csv",
        "summary.csv",
        "latency.csv",
        "duty.csv",
        "episodes.csv",
        "run.json",
        "plots/timeseries-run0.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing: {}", text(&o));
    }
    // The path and pid:N are the same cgroup: one group.
    let rows = read_csv(&out.join("summary.csv"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(r["group"], cg.rel);
    assert_eq!(r["outcome"], "completed");
    assert_eq!(r["limiter"], "cfs");
    assert_eq!(num(r, "quota_s"), 0.02);
    let wall = num(r, "wall_s");
    assert!((3.9..5.0).contains(&wall), "wall {wall}");
    let share = num(r, "cpu_share");
    assert!(
        (0.05..=0.21).contains(&share),
        "cpu share {share} under a 0.2 CPU quota"
    );
    assert!(num(r, "nr_periods") >= 20.0, "{r:?}");
    assert!(num(r, "throttled_pct") > 40.0, "{r:?}");
    // Every 10 ms a row, flushed as they come.
    let n = rows_of(&out);
    assert!((300..=420).contains(&n), "{n} rows in {wall} s");
    // Episodes of about the on-phase, every period throttled.
    let eps = read_csv(&out.join("episodes.csv"));
    let whole: Vec<_> = eps.iter().filter(|e| e["cut_off"] == "false").collect();
    assert!(whole.len() >= 2, "{eps:?}");
    for e in &whole {
        let l = num(e, "length_s");
        assert!((0.2..=0.9).contains(&l), "episode of {l} s: {e:?}");
        assert_eq!(e["exact"], "true", "{e:?}");
    }
    // The quota as read, on every row.
    let ts = read_csv(&out.join("timeseries.csv"));
    assert!(
        ts.iter().all(|r| num(r, "limit_cpus") == 0.2),
        "{:?}",
        ts.iter().find(|r| num(r, "limit_cpus") != 0.2)
    );
    let j = run_json(&out);
    assert_eq!(j["kind"], "watch");
    assert_eq!(j["complete"], true);
    assert_eq!(j["end"], "completed");
    assert_eq!(
        j["groups"][0]["usage"].as_str().unwrap(),
        cg.cpuacct().join("cpuacct.usage").to_str().unwrap()
    );
    // The workload ran on, untouched.
    assert!(crate::common::cgroup::alive(pid));
    drop(cg);
}

#[test]
fn ctrl_c_ends_a_watch_with_130_and_its_results_written() {
    let test = "ctrl_c_ends_a_watch";
    if !ready(test) {
        return;
    }
    let _x = exclusive();
    let mut cg = TestCgroup::new(&format!("tb-watch-int-{}", std::process::id()));
    cg.limit(20_000, 100_000);
    cg.start(duty("300ms", "300ms", "60s"));
    let dir = TempDir::new("watch-int");
    let out = dir.path().join("out");
    let mut w = spawn_tb(&[
        "watch",
        &cg.rel,
        "--no-plot",
        "--out",
        out.to_str().unwrap(),
    ]);
    wait_for("50 rows", Duration::from_secs(30), || rows_of(&out) >= 50);
    // A quota changed while watched: the rows after it carry the new one (limit_cpus,
    // the last column), the rows before the old.
    cg.limit(50_000, 100_000);
    let limits = || -> Vec<String> {
        let t = std::fs::read_to_string(out.join("timeseries.csv")).unwrap_or_default();
        let whole = &t[..t.rfind('\n').map_or(0, |i| i + 1)];
        whole
            .lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap_or("").to_string())
            .collect()
    };
    wait_for("a row with the new quota", Duration::from_secs(10), || {
        limits().iter().any(|l| l == "0.5")
    });
    let seen = limits();
    let first_new = seen.iter().position(|l| l == "0.5").unwrap();
    assert!(first_new >= 50, "{seen:?}");
    assert!(seen[..first_new].iter().all(|l| l == "0.2"), "{seen:?}");
    assert!(seen[first_new..].iter().all(|l| l == "0.5"), "{seen:?}");
    interrupt(&w, Signal::SIGINT);
    let o = std::mem::replace(&mut w, spawn_tb(&["--version"]))
        .wait_with_output()
        .unwrap();
    let _ = w.wait();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let rows = read_csv(&out.join("summary.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["outcome"], "interrupted");
    assert!(num(&rows[0], "nr_periods") > 0.0);
    let j = run_json(&out);
    assert_eq!(j["complete"], true);
    assert_eq!(j["end"]["interrupted"]["signal"], 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted by SIGINT"));
}

#[test]
fn children_are_taken_in_as_they_come_and_ended_as_they_go() {
    let test = "children_come_and_go";
    if !ready(test) {
        return;
    }
    let _x = exclusive();
    let parent_name = format!("tb-watch-kids-{}", std::process::id());
    let parent = TestCgroup::new(&parent_name);
    let mut a = TestCgroup::new(&format!("{parent_name}/a"));
    a.limit(20_000, 100_000);
    a.start(duty("200ms", "200ms", "60s"));
    let dir = TempDir::new("watch-kids");
    let out = dir.path().join("out");
    let mut w = spawn_tb(&[
        "watch",
        "--children",
        &parent.rel,
        "--no-plot",
        "--out",
        out.to_str().unwrap(),
    ]);
    let ga = format!("{}/a", parent.rel);
    let gb = format!("{}/b", parent.rel);
    wait_for("rows of a", Duration::from_secs(30), || {
        rows_of_group(&out, &ga) >= 20
    });
    // b comes, with a workload.
    let mut b = TestCgroup::new(&format!("{parent_name}/b"));
    b.start(duty("200ms", "200ms", "60s"));
    wait_for("rows of b", Duration::from_secs(30), || {
        rows_of_group(&out, &gb) >= 20
    });
    // a goes: its rows stop, the watch goes on.
    a.remove();
    wait_for("a to be ended in run.json", Duration::from_secs(30), || {
        std::fs::read_to_string(out.join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|j| j["groups"][0]["ended"] == "removed")
    });
    let a_rows = rows_of_group(&out, &ga);
    let b_rows = rows_of_group(&out, &gb);
    wait_for("more rows of b", Duration::from_secs(30), || {
        rows_of_group(&out, &gb) >= b_rows + 20
    });
    assert_eq!(rows_of_group(&out, &ga), a_rows, "rows of a removed cgroup");
    interrupt(&w, Signal::SIGTERM);
    let o = std::mem::replace(&mut w, spawn_tb(&["--version"]))
        .wait_with_output()
        .unwrap();
    let _ = w.wait();
    assert_eq!(o.status.code(), Some(143), "{}", text(&o));
    let rows = read_csv(&out.join("summary.csv"));
    let row = |g: &str| {
        rows.iter()
            .find(|r| r["group"] == g)
            .unwrap_or_else(|| panic!("{g}: {rows:?}"))
    };
    assert_eq!(row(&ga)["outcome"], "removed");
    assert_eq!(row(&gb)["outcome"], "interrupted");
    let j = run_json(&out);
    let first_b = j["groups"][1]["first_s"].as_f64().unwrap();
    let last_a = j["groups"][0]["last_s"].as_f64().unwrap();
    assert!(first_b > 0.1, "b came later: {first_b}");
    // b's window starts when it came, so its share is of its own time.
    assert!(
        (num(row(&gb), "wall_s") - (j["groups"][1]["last_s"].as_f64().unwrap() - first_b)).abs()
            < 1e-6
    );
    assert!((num(row(&ga), "wall_s") - last_a).abs() < 1e-6);
    drop(b);
    drop(a);
    drop(parent);
}

#[test]
fn a_watch_killed_with_sigkill_keeps_whole_rows_up_to_its_last_tick() {
    let test = "a_watch_killed_with_sigkill";
    if !ready(test) {
        return;
    }
    let _x = exclusive();
    let mut cg = TestCgroup::new(&format!("tb-watch-kill-{}", std::process::id()));
    cg.start(duty("100ms", "100ms", "60s"));
    let dir = TempDir::new("watch-kill");
    let out = dir.path().join("out");
    let mut w = spawn_tb(&[
        "watch",
        &cg.rel,
        "--no-plot",
        "--out",
        out.to_str().unwrap(),
    ]);
    wait_for("100 rows", Duration::from_secs(30), || rows_of(&out) >= 100);
    interrupt(&w, Signal::SIGKILL);
    let _ = w.wait();
    // Every line whole, every row a number; rows follow one another without a hole.
    let text = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    assert!(text.ends_with('\n'), "a torn last line");
    let rows = read_csv(&out.join("timeseries.csv"));
    assert!(rows.len() >= 100);
    let mut last = 0.0;
    for r in &rows {
        let (t, dt) = (num(r, "t_s"), num(r, "dt_s"));
        assert!((t - dt - last).abs() < 1e-6, "a hole before {t}");
        last = t;
    }
    let j = run_json(&out);
    assert_eq!(j["complete"], false);
    assert_eq!(j["end"], "running");
}

#[test]
fn a_watch_ends_by_itself_when_every_cgroup_it_watched_went() {
    let test = "a_watch_ends_when_its_cgroups_went";
    if !ready(test) {
        return;
    }
    let _x = exclusive();
    let mut cg = TestCgroup::new(&format!("tb-watch-gone-{}", std::process::id()));
    cg.limit(20_000, 100_000);
    cg.start(duty("100ms", "100ms", "60s"));
    let dir = TempDir::new("watch-gone");
    let out = dir.path().join("out");
    let mut w = spawn_tb(&[
        "watch",
        &cg.rel,
        "--no-plot",
        "--out",
        out.to_str().unwrap(),
    ]);
    wait_for("20 rows", Duration::from_secs(30), || rows_of(&out) >= 20);
    cg.remove();
    let start = std::time::Instant::now();
    while w.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = w.kill();
            panic!("the watch went on after its cgroup went");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = w.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("removed"),
        "{}",
        text(&o)
    );
    let rows = read_csv(&out.join("summary.csv"));
    assert_eq!(rows[0]["outcome"], "removed");
    assert!(num(&rows[0], "nr_periods") > 0.0);
}

#[test]
fn bad_targets_are_named_with_their_exit_codes() {
    let d = TempDir::new("watch-bad");
    let run = |args: &[&str]| {
        let o = tb()
            .current_dir(d.path())
            .arg("watch")
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (code, err) = run(&["--duration", "1s"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("nothing to watch"), "{err}");
    let (code, err) = run(&["pid:x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("pid:N takes a process id"), "{err}");
    // A root without a cpu controller: exit 5, naming it.
    let root = d.path().to_str().unwrap();
    let (code, err) = run(&["--cgroup-root", root, "x"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains(root), "{err}");
    // A fake v2 root: a missing folder and a process that is not there are named.
    std::fs::write(d.path().join("cgroup.controllers"), "cpu\n").unwrap();
    let (code, err) = run(&["--cgroup-root", root, "no/such"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no/such"), "{err}");
    let (code, err) = run(&["--cgroup-root", root, "pid:999999999"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("pid:999999999"), "{err}");
    // No result folder was made for them (a watch's default is results/watch/<time>).
    assert!(!d.path().join("results").exists());
}

#[test]
fn a_full_disk_ends_a_watch_with_7_naming_the_file() {
    let test = "a_full_disk_ends_a_watch";
    if !ready(test) {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("watch-full");
    let disk = dir.path().join("disk");
    // 64 kB: the headers and run.json fit, then about 600 rows of 100 bytes.
    let Some(_mount) = mount_tmpfs_or_skip("a watch on a full disk", &disk, "size=64k") else {
        return;
    };
    let mut cg = TestCgroup::new(&format!("tb-watch-full-{}", std::process::id()));
    cg.start(duty("100ms", "100ms", "60s"));
    let out = disk.join("out");
    let mut w = spawn_tb(&[
        "watch",
        &cg.rel,
        "--no-plot",
        "--out",
        out.to_str().unwrap(),
    ]);
    let start = std::time::Instant::now();
    while w.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = w.kill();
            panic!("the watch went on with its disk full");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = w.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("disk is full") && err.contains(out.to_str().unwrap()),
        "{err}"
    );
    drop(cg);
}
