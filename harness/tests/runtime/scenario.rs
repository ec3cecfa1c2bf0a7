//! `limiter.kind = "runtime"` through `throttlebench run`: a scenario whose workload
//! (fibtest, one fast thread) a real runtime starts in a container at 40% of a CPU. The
//! share measured from the container's cgroup stays under the limit and near it, the
//! workload's records reach the summary (its fast thread's rate), run.json names the
//! container, and nothing of it is left: not listed by the runtime, no cgroup, no bundle.
//! A runtime not installed is exit 5 naming `limiter.runtime`; Ctrl-C mid-run is exit 130
//! with nothing left.

use super::{leftovers_of, runtime_or_skip};
use crate::common::*;
use std::time::Duration;
use throttlebench::runtime::RuntimeKind;

/// A fibtest of one fast thread for `secs` under `runtime` at 40 ms per 100 ms.
fn runtime_scenario(runtime: &str, secs: u32) -> String {
    scenario(
        "rt",
        &format!(
            "kind = \"runtime\"\nruntime = \"{runtime}\"\nquota = \"40ms\"\nperiod = \"100ms\""
        ),
        &format!("kind = \"fibtest\"\nfast = 1\nslow = 0\nduration = \"{secs}s\""),
    )
}

fn run_json(out: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap()
}

fn runs_under_a_runtime(kind: RuntimeKind) {
    let test = format!("runtime_scenario_{}", kind.name());
    let Some(rt) = runtime_or_skip(&test, kind) else {
        return;
    };
    let _x = exclusive();
    let dir = TempDir::new("rt-scenario");
    let (out, res) = run_scenario(&dir, &runtime_scenario(kind.name(), 3));
    assert!(out.status.success(), "{}", text(&out));
    let rows = read_csv(&res.join("summary.csv"));
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["limiter"], "runtime", "{row:?}");
    let share = num(row, "cpu_share");
    // A cap of 0.4 CPU: never above it (plus the sampler's edges), and near it for a
    // thread that always runs (a busy shared machine can hold it a little lower).
    assert!((0.30..=0.42).contains(&share), "cpu_share {share}");
    assert!(num(row, "nr_throttled") > 0.0, "{row:?}");
    assert_eq!(num(row, "quota_s"), 0.04, "{row:?}");
    // The workload's own records came through its stdout.
    assert!(num(row, "fast_iters_per_s") > 0.0, "{row:?}");
    let json = run_json(&res);
    let r = &json["runs"][0]["result"];
    let c = &r["limiter"]["container"];
    assert_eq!(c["runtime"], kind.name(), "{c}");
    let id = c["id"].as_str().unwrap();
    assert!(id.starts_with("throttlebench-"), "{c}");
    assert!(
        c["cpu_stat"].as_str().unwrap().contains(id),
        "sampled the container's own cpu.stat: {c}"
    );
    assert_eq!(r["planned"]["limiter"]["runtime"], kind.name());
    assert_eq!(r["leaks"]["cgroups"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["leaks"]["escaped"].as_array().unwrap().len(), 0, "{r}");
    let left = leftovers_of(&rt, id, c["pid"].as_u64().unwrap() as u32, None);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_runtime_scenario_runs_under_runc() {
    runs_under_a_runtime(RuntimeKind::Runc);
}

#[test]
fn a_runtime_scenario_runs_under_crun() {
    runs_under_a_runtime(RuntimeKind::Crun);
}

#[test]
fn a_runtime_scenario_runs_under_podman() {
    runs_under_a_runtime(RuntimeKind::Podman);
}

#[test]
fn a_runtime_that_is_not_installed_is_exit_5_naming_the_field() {
    if !real_cgroups_or_skip("a_runtime_that_is_not_installed_is_exit_5_naming_the_field") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("rt-missing");
    let file = dir.file("s.toml", &runtime_scenario("crun", 1));
    let empty = dir.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let out = tb()
        .args(["run", file.to_str().unwrap(), "--out"])
        .arg(dir.path().join("out"))
        .env("PATH", &empty)
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(t.contains("limiter.runtime"), "{t}");
    assert!(t.contains("crun is not installed"), "{t}");
    assert!(
        !dir.path().join("out").exists(),
        "no result folder for a run that cannot start"
    );
}

#[test]
fn ctrl_c_in_a_runtime_run_leaves_no_container() {
    let Some(rt) = runtime_or_skip(
        "ctrl_c_in_a_runtime_run_leaves_no_container",
        RuntimeKind::Runc,
    ) else {
        return;
    };
    let _x = exclusive();
    let dir = TempDir::new("rt-ctrl-c");
    let file = dir.file("s.toml", &runtime_scenario("runc", 60));
    let child = tb()
        .args(["run", file.to_str().unwrap(), "--out"])
        .arg(dir.path().join("out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The container's cgroup appears once the runtime has made it.
    let prefix = format!("throttlebench-{}-", child.id());
    let cpu_parent = std::path::Path::new(CGROUP_ROOT).join("cpu/throttlebench");
    let container = || -> Option<String> {
        std::fs::read_dir(&cpu_parent)
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with(&prefix))
    };
    wait_for("the container's cgroup", Duration::from_secs(60), || {
        container().is_some()
    });
    let id = container().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let left = leftovers_of(&rt, &id, 0, None);
    assert!(left.is_empty(), "left behind: {left:?}");
}
