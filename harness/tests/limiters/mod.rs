//! Limiters on real cgroups and real processes: duty cycles reach their targets, weights
//! share the CPUs, the name race of "EC2 Micro Instance Throttling" [EC2 Micro] is caught and repaired, and no limiter,
//! stopped process or cgroup is left behind.

use crate::common::*;

/// Run a scenario and read its summary rows (none if it wrote no summary).
fn run(
    dir: &TempDir,
    text: &str,
) -> (
    std::process::Output,
    Vec<std::collections::HashMap<String, String>>,
) {
    let (out, out_dir) = run_scenario(dir, text);
    let rows = if out_dir.join("summary.csv").exists() {
        read_csv(&out_dir.join("summary.csv"))
    } else {
        Vec::new()
    };
    (out, rows)
}

const SPIN_3S: &str =
    "kind = \"duty\"\non = \"3s\"\noff = \"0ms\"\nduration = \"3s\"\ncpus = \"0\"";

#[test]
fn closed_loop_freezer_and_signal_reach_40_percent() {
    if !real_cgroups_or_skip("closed_loop") {
        return;
    }
    let _x = exclusive();
    for lim in [
        "kind = \"freezer\"\nshare = 0.4",
        "kind = \"signal\"\nby = \"group\"\nshare = 0.4",
    ] {
        let dir = TempDir::new("closed");
        let (out, rows) = run(&dir, &scenario("closed", lim, SPIN_3S));
        assert!(out.status.success(), "{}", text(&out));
        let share = num(&rows[0], "cpu_share");
        assert!((0.35..=0.45).contains(&share), "{lim}: cpu_share {share}");
        assert_eq!(num(&rows[0], "target_share"), 0.4);
        assert_eq!(num(&rows[0], "leaked_stopped"), 0.0);
    }
    assert_no_stopped_processes();
}

#[test]
fn open_loop_duty_cycle_by_group_and_tree_gives_10_percent() {
    if !real_cgroups_or_skip("open_loop") {
        return;
    }
    let _x = exclusive();
    for by in ["group", "tree"] {
        let dir = TempDir::new("micro");
        let lim = format!("kind = \"signal\"\nby = \"{by}\"\non = \"100ms\"\noff = \"900ms\"");
        let (out, rows) = run(&dir, &scenario("micro", &lim, SPIN_3S));
        assert!(out.status.success(), "{}", text(&out));
        let share = num(&rows[0], "cpu_share");
        assert!((0.07..=0.13).contains(&share), "by {by}: cpu_share {share}");
    }
    assert_no_stopped_processes();
}

#[test]
fn stopping_by_name_leaves_children_stopped_but_group_and_tree_do_not() {
    if !real_cgroups_or_skip("name_race") {
        return;
    }
    let _x = exclusive();
    // The race is a matter of chance per cycle: `until_stuck` ends a run at its first
    // child left stopped, so the name run waits for it (up to 30 s) instead of hoping
    // for it within a fixed time; group and tree run their 3 s and must leave none.
    let stopped = |by: &str, duration: &str| {
        let dir = TempDir::new("race");
        let workload = format!("kind = \"command\"\ncommand = \"while :; do echo x | sed -e s/x/y/ >/dev/null; done\"\nduration = \"{duration}\"");
        let lim = format!(
            "kind = \"signal\"\nby = \"{by}\"\non = \"10ms\"\noff = \"10ms\"\nuntil_stuck = true"
        );
        let (out, rows) = run(&dir, &scenario("race", &lim, &workload));
        assert!(out.status.success(), "{}", text(&out));
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("out/run.json")).unwrap(),
        )
        .unwrap();
        let names: Vec<String> = json["runs"][0]["result"]["leaks"]["stopped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        (num(&rows[0], "leaked_stopped"), names)
    };
    let (n, names) = stopped("name", "30s");
    assert!(n >= 1.0, "by name should leave a child stopped");
    // The child was stopped as `sh` between fork and exec and is `sed` now.
    assert!(names.iter().any(|x| x == "sed"), "{names:?}");
    assert_eq!(stopped("group", "3s").0, 0.0);
    assert_eq!(stopped("tree", "3s").0, 0.0);
    // The harness continued and reaped what the name limiter left.
    assert_no_stopped_processes();
}

#[test]
fn weights_150_100_100_50_share_the_cpus_in_proportion() {
    if !real_cgroups_or_skip("weights") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("weights");
    let mut toml =
        "name = \"weights\"\nsample_interval = \"100ms\"\n[limiter]\nkind = \"weight\"\n"
            .to_string();
    for (name, w) in [
        ("site1", 150),
        ("site2", 100),
        ("site3", 100),
        ("site4", 50),
    ] {
        toml.push_str(&format!(
            "[[group]]\nname = \"{name}\"\nweight = {w}\nworkload = {{ kind = \"duty\", on = \"4s\", off = \"0s\", duration = \"4s\", threads = 2, cpus = \"0-1\" }}\n"
        ));
    }
    let (out, rows) = run(&dir, &toml);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(rows.len(), 4);
    for (row, want) in rows.iter().zip([37.5, 25.0, 25.0, 12.5]) {
        let got = num(row, "group_share_pct");
        assert!(
            (got - want).abs() <= 3.0,
            "{}: {got}% of the CPUs, want {want}%",
            row["group"]
        );
    }
}

#[test]
fn cpuset_holds_two_threads_to_one_cpu() {
    if !real_cgroups_or_skip("cpuset") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("cpuset");
    let w = "kind = \"duty\"\non = \"2s\"\noff = \"0ms\"\nduration = \"2s\"\nthreads = 2";
    let idle = crate::common::idle::IdleMeter::start();
    let (out, rows) = run(
        &dir,
        &scenario("cpuset", "kind = \"cpuset\"\ncpus = \"1\"", w),
    );
    let idle = idle.idle_cpus();
    assert!(out.status.success(), "{}", text(&out));
    // One CPU for two threads: at most 1.05, at least 0.85 when the machine had CPU to
    // spare (another process on CPU 1 takes from it).
    let share = num(&rows[0], "cpu_share");
    crate::common::idle::assert_share_within("cpuset 1", share, 0.85, 1.05, idle);
}

#[test]
fn an_external_limiter_is_measured_and_stopped() {
    if !real_cgroups_or_skip("command") {
        return;
    }
    if !std::path::Path::new("/usr/bin/cpulimit").exists() {
        assert!(!crate::common::ci(), "CI must install cpulimit");
        eprintln!("skipped: cpulimit is not installed");
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("cpulimit");
    let lim = "kind = \"command\"\ncommand = \"cpulimit -l {percent} -p {pid}\"\nshare = 0.4";
    let idle = crate::common::idle::IdleMeter::start();
    let (out, rows) = run(&dir, &scenario("cpulimit", lim, SPIN_3S));
    let idle = idle.idle_cpus();
    assert!(out.status.success(), "{}", text(&out));
    // cpulimit overshoots 40% by 3-5 points on this machine (docs/limiters.md: 44.1% and
    // 44.7%): within 0.34-0.50 of a CPU, the lower bound when the machine had CPU to spare.
    let share = num(&rows[0], "cpu_share");
    crate::common::idle::assert_share_within("cpulimit -l 40", share, 0.34, 0.50, idle);
    assert_eq!(num(&rows[0], "leaked_escaped"), 0.0);
    assert!(
        processes_named("cpulimit").is_empty(),
        "cpulimit left running"
    );
}

#[test]
fn a_limiter_that_leaves_the_workload_stopped_is_reported_and_repaired() {
    if !real_cgroups_or_skip("stopping_limiter") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("stopper");
    let lim = "kind = \"command\"\ncommand = \"kill -STOP {pid}\"";
    let w = "kind = \"command\"\ncommand = \"sleep 100\"\nduration = \"1s\"";
    let (out, rows) = run(&dir, &scenario("stopper", lim, w));
    assert!(out.status.success(), "{}", text(&out));
    assert!(num(&rows[0], "leaked_stopped") >= 1.0, "{:?}", rows[0]);
    // A limiter is expected to run as long as the workload: exiting at once is a fault.
    assert_eq!(num(&rows[0], "limiter_faults"), 1.0, "{:?}", rows[0]);
    assert_no_stopped_processes();
}

fn run_json(dir: &TempDir) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/run.json")).unwrap())
        .unwrap()
}

#[test]
fn an_external_limiter_that_crashes_holding_the_workload_stopped_is_reported_and_the_run_goes_on() {
    if !real_cgroups_or_skip("crashing limiter") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("crasher");
    // It stops the workload, then dies of SIGSEGV: nothing else would ever continue it.
    let lim = "kind = \"command\"\ncommand = \"kill -STOP {pid}; kill -SEGV $$\"";
    let w = "kind = \"duty\"\non = \"1s\"\noff = \"0ms\"\nduration = \"1s\"";
    let (out, rows) = run(&dir, &scenario("crasher", lim, w));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(rows[0]["outcome"], "completed");
    assert_eq!(num(&rows[0], "limiter_faults"), 1.0, "{:?}", rows[0]);
    assert_eq!(num(&rows[0], "leaked_stopped"), 1.0, "{:?}", rows[0]);
    assert!(text(&out).contains("LIMITER FAULT"), "{}", text(&out));
    let cmd = &run_json(&dir)["runs"][0]["result"]["limiter"]["command"];
    assert_eq!(cmd["status"], "was killed by signal 11", "{cmd}");
    assert_eq!(cmd["ran_to_the_end"], false, "{cmd}");
    // Seen when it died (at its SIGCHLD), not at the end of the 1 s run.
    let t = cmd["exited_after_s"].as_f64().unwrap();
    assert!(t < 0.8, "exited_after_s {t}");
    // Continued as soon as the limiter was gone, so the workload did its second of work.
    assert!(num(&rows[0], "wall_s") < 5.0, "{:?}", rows[0]);
    assert_no_stopped_processes();
}

#[test]
fn an_external_limiter_that_ignores_sigterm_is_killed_and_reported() {
    if !real_cgroups_or_skip("hanging limiter") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("hanger");
    let marker = dir.path().join("limiter-ran");
    let lim = format!(
        "kind = \"command\"\ncommand = \"trap '' TERM; touch {}; while :; do sleep 0.05; done\"",
        marker.display()
    );
    let w = "kind = \"duty\"\non = \"500ms\"\noff = \"0ms\"\nduration = \"500ms\"";
    let (out, rows) = run(&dir, &scenario("hanger", &lim, w));
    assert!(out.status.success(), "{}", text(&out));
    assert!(marker.exists(), "the limiter never ran");
    assert_eq!(num(&rows[0], "limiter_faults"), 1.0, "{:?}", rows[0]);
    let cmd = &run_json(&dir)["runs"][0]["result"]["limiter"]["command"];
    assert_eq!(cmd["needed_sigkill"], true, "{cmd}");
    assert_eq!(cmd["ran_to_the_end"], true, "{cmd}");
    assert!(text(&out).contains("ignored SIGTERM"), "{}", text(&out));
    // Its loop's `sleep` children went with it.
    let mine = |p: &i32| {
        std::fs::read_to_string(format!("/proc/{p}/cmdline"))
            .is_ok_and(|c| c.contains(marker.to_str().unwrap()))
    };
    let left: Vec<i32> = processes_named("sh").into_iter().filter(mine).collect();
    assert!(left.is_empty(), "limiter processes left: {left:?}");
}

/// cpulimit's path, or why the test cannot run (a failure in CI, which installs it).
fn cpulimit_or_skip() -> bool {
    if std::path::Path::new("/usr/bin/cpulimit").exists() {
        return true;
    }
    assert!(!ci(), "CI must install cpulimit");
    eprintln!("skipped: cpulimit is not installed");
    false
}

#[test]
fn a_limiter_wrapped_in_sh_c_is_never_counted_as_the_workloads_escape() {
    // `sh -c` exits before its cpulimit has finished exiting; the harness (a child
    // subreaper) adopts the dying cpulimit. That is the limiter's own process, never the
    // workload's leak. Twenty short runs: it happened in about one of twenty before.
    if !real_cgroups_or_skip("sh -c limiter") || !cpulimit_or_skip() {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("shlimit");
    let lim =
        "kind = \"command\"\ncommand = \"sh -c 'cpulimit -l {percent} -p {pid}'\"\nshare = 0.5";
    let toml = scenario(
        "shlimit",
        lim,
        "kind = \"duty\"\non = \"300ms\"\noff = \"0ms\"\nduration = \"300ms\"",
    )
    .replace("name = \"shlimit\"", "name = \"shlimit\"\nrepeats = 20");
    let (out, rows) = run(&dir, &toml);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(rows.len(), 20);
    for r in &rows {
        assert_eq!(num(r, "leaked_escaped"), 0.0, "{r:?}");
        assert_eq!(num(r, "limiter_faults"), 0.0, "{r:?}");
    }
    assert!(
        processes_named("cpulimit").is_empty(),
        "cpulimit left running"
    );
}

#[test]
fn a_mistyped_limiter_command_fails_the_run_and_says_why() {
    if !real_cgroups_or_skip("mistyped limiter") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("typo");
    let lim = "kind = \"command\"\ncommand = \"cpulimt -l {percent} -p {pid}\"\nshare = 0.4";
    let (out, rows) = run(&dir, &scenario("typo", lim, SPIN_3S));
    // A failed run (6), with the shell's own words, not a run that went on unlimited.
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cpulimt") && err.contains("not found") && err.contains("code 127"),
        "{err}"
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["outcome"], "limiter_failed");
}
