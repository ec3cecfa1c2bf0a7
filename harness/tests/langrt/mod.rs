//! A language runtime under a CPU limit: the Go service of scenarios/services/go/, built
//! by scripts/build-services.sh and run by scenarios/gomaxprocs.toml. Go 1.19 (Debian's
//! golang-go) sizes GOMAXPROCS from the CPUs the process may run on, whatever the cgroup's
//! quota; the environment variable overrides it. A test that needs `go` skips without it,
//! except under CI, where it fails (`.ci/run` installs golang-go).

use crate::common::prometheus::program_or_skip;
use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped scenario with `edits` made, written beside it (so `{dir}` finds the
/// services) under a name of this process; removed by `run_copy`.
fn shipped_copy(edits: &[(&str, &str)]) -> PathBuf {
    let path = repo().join("scenarios/gomaxprocs.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "gomaxprocs.toml has no `{from}`");
        text = text.replace(from, to);
    }
    let copy = path.with_file_name(format!(".test-gomaxprocs-{}.toml", std::process::id()));
    std::fs::write(&copy, text).unwrap();
    copy
}

fn run_copy(dir: &TempDir, file: &Path) -> (std::process::Output, PathBuf) {
    let out_dir = dir.path().join("out");
    let out = tb()
        .arg("run")
        .arg(file)
        .arg("--out")
        .arg(&out_dir)
        .arg("--no-plot")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(file);
    (out, out_dir)
}

/// CPUs this process may run on: what Go 1.19's runtime.NumCPU counts.
fn allowed_cpus() -> usize {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    (0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .count()
}

#[test]
fn a_service_that_is_not_built_is_refused_naming_the_build_script() {
    let cache = TempDir::new("gocache");
    let run_sh = repo().join("scenarios/services/go/run.sh");
    let path = Command::new(&run_sh)
        .args(["--path", "gomaxprocs-server"])
        .env("THROTTLEBENCH_CACHE", cache.path())
        .output()
        .unwrap();
    assert!(path.status.success(), "{}", text(&path));
    let bin = String::from_utf8_lossy(&path.stdout).trim().to_string();
    let services = cache.path().join("services");
    assert!(
        bin.starts_with(services.to_str().unwrap()) && bin.contains("/gomaxprocs-server-"),
        "{bin}"
    );
    let out = Command::new(&run_sh)
        .args(["gomaxprocs-server", "-port", "1"])
        .env("THROTTLEBENCH_CACHE", cache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scripts/build-services.sh"), "{err}");
    let none = Command::new(&run_sh)
        .arg("no-such-service")
        .env("THROTTLEBENCH_CACHE", cache.path())
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
}

#[test]
fn the_gomaxprocs_scenario_plans_both_settings_with_and_without_a_quota() {
    let out = tb()
        .arg("run")
        .arg(repo().join("scenarios/gomaxprocs.toml"))
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs: Vec<(String, String)> = plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["repeat"] == 0)
        .map(|r| {
            let command = r["groups"][0]["workload"]["command"].as_str().unwrap();
            let procs = if command.contains("GOMAXPROCS=1 exec") {
                "1"
            } else {
                "cpus"
            };
            (
                r["limiter"]["kind"].as_str().unwrap().to_string(),
                procs.to_string(),
            )
        })
        .collect();
    let want = [
        ("cfs", "cpus"),
        ("cfs", "1"),
        ("none", "cpus"),
        ("none", "1"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(runs, want);
}

#[test]
fn go_sizes_gomaxprocs_from_the_cpus_not_the_quota_and_is_throttled() {
    if !real_cgroups_or_skip("go_gomaxprocs")
        || !program_or_skip("go_gomaxprocs", "go", "golang-go")
    {
        return;
    }
    // The build runs here, outside any measured cgroup; the scenario's own call of the
    // script then only checks.
    let build = Command::new(repo().join("scripts/build-services.sh"))
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", text(&build));
    let _x = exclusive();
    let dir = TempDir::new("gomaxprocs");
    // A quota of 0.05 CPU under a demand of about 0.1: throttled whatever GOMAXPROCS is.
    let file = shipped_copy(&[
        ("repeats = 3", "repeats = 1"),
        ("duration = \"20s\"", "duration = \"3s\""),
        ("warmup = \"2s\"", "warmup = \"500ms\""),
        (
            "limiter = [{ kind = \"cfs\", quota = \"20ms\", period = \"100ms\" }, { kind = \"none\" }]",
            "limiter = [{ kind = \"cfs\", quota = \"5ms\", period = \"100ms\" }]",
        ),
    ]);
    let (out, res) = run_copy(&dir, &file);
    assert!(out.status.success(), "{}", text(&out));
    let rows = read_csv(&res.join("summary.csv"));
    assert_eq!(rows.len(), 2);
    let cpus = allowed_cpus();
    for (run, procs) in [(0, cpus), (1, 1)] {
        let row = &rows[run];
        let said =
            std::fs::read_to_string(res.join(format!("workload/run{run}-main.stderr"))).unwrap();
        assert!(
            said.contains(&format!("GOMAXPROCS={procs} NumCPU={cpus} ")),
            "run {run}: {said}"
        );
        assert!(said.contains("go1."), "{said}");
        assert!(num(row, "nr_throttled") > 0.0, "run {run}: {row:?}");
        assert!(num(row, "requests") > 0.0, "run {run}: {row:?}");
        assert_eq!(num(row, "non_2xx"), 0.0, "run {run}: {row:?}");
    }
}
