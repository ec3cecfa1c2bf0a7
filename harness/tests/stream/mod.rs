//! Runs written as they run: a run killed with SIGKILL keeps its samples up to its last
//! write (at most a second back), and its folder still plots and says it is incomplete;
//! a workload's other output lands in the folder; many groups are sampled at once.

use crate::common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Data rows of a CSV file (its lines but the header), counted without parsing.
fn data_rows(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

#[test]
fn a_run_killed_with_sigkill_keeps_its_samples_and_its_folder_plots_and_says_incomplete() {
    if !real_cgroups_or_skip("sigkill stream") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("stream-kill");
    let file = dir.file(
        "s.toml",
        &scenario(
            "kill",
            "kind = \"none\"",
            "kind = \"duty\"\non = \"60s\"\noff = \"0ms\"\nduration = \"60s\"",
        ),
    );
    let out = dir.path().join("out");
    let mut child = tb()
        .args([
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The default interval is 10 ms: 150 rows are 1.5 s of samples, so at least one
    // write (at most a second apart) has reached the file.
    let ts = out.join("timeseries.csv");
    wait_for(
        "timeseries.csv to hold 1.5 s of samples",
        Duration::from_secs(30),
        || data_rows(&ts) >= 150,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // What was written stays, row by whole row.
    let rows = read_csv(&ts);
    assert!(rows.len() >= 150, "{} rows", rows.len());
    let last_t = num(rows.last().unwrap(), "t_s");
    assert!(last_t >= 1.0, "last sample at {last_t} s");
    assert!(rows.iter().all(|r| r["run"] == "0" && r["group"] == "main"));
    // run.json was written when the folder was made: the plan is there, the run is not.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["complete"], false);
    assert_eq!(json["plan"]["scenario"]["name"], "kill");
    assert_eq!(json["runs"].as_array().map(Vec::len), Some(0));
    // The folder plots, and check says it is incomplete (a tool error, 128).
    let p = tb().args(["plot", out.to_str().unwrap()]).output().unwrap();
    assert!(p.status.success(), "{}", text(&p));
    assert!(
        out.join("plots/timeseries-run0.svg").exists(),
        "{}",
        text(&p)
    );
    let c = tb()
        .args([
            "check",
            "--from",
            out.to_str().unwrap(),
            "--expect",
            "cpu_share > 0",
        ])
        .output()
        .unwrap();
    assert_eq!(c.status.code(), Some(128), "{}", text(&c));
    assert!(text(&c).contains("incomplete"), "{}", text(&c));
    // The killed run's cgroup goes with the next cleanup.
    let clean = tb().arg("cleanup").output().unwrap();
    assert!(clean.status.success(), "{}", text(&clean));
}

#[test]
fn a_workloads_own_output_is_kept_in_the_folder_line_by_line() {
    if !real_cgroups_or_skip("workload output") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("stream-out");
    // 20 000 lines on stdout and a line on stderr from a program of one's own.
    let (o, res) = run_scenario(
        &dir,
        &scenario(
            "own",
            "kind = \"none\"",
            "kind = \"command\"\ncommand = \"seq 1 20000; echo done >&2\"",
        ),
    );
    assert!(o.status.success(), "{}", text(&o));
    let stdout = std::fs::read_to_string(res.join("workload/run0-main.stdout")).unwrap();
    assert_eq!(stdout.lines().count(), 20_000);
    assert_eq!(stdout.lines().last(), Some("20000"));
    let stderr = std::fs::read_to_string(res.join("workload/run0-main.stderr")).unwrap();
    assert_eq!(stderr, "done\n");
}

#[test]
fn sixty_four_groups_are_sampled_together_from_their_first_sample() {
    if !real_cgroups_or_skip("64 groups") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("stream-groups");
    let mut s = String::from("name = \"many\"\nsample_interval = \"10ms\"\n");
    for g in 0..64 {
        s.push_str(&format!(
            "[[group]]\nname = \"g{g}\"\nworkload = {{ kind = \"duty\", on = \"10ms\", off = \"90ms\", duration = \"2s\" }}\n"
        ));
    }
    let (o, res) = run_scenario(&dir, &s);
    assert!(o.status.success(), "{}", text(&o));
    let rows = read_csv(&res.join("summary.csv"));
    assert_eq!(rows.len(), 64);
    // One sampler: every group has a row at every sample time, the first at the first
    // interval (no group joins late).
    let ts = read_csv(&res.join("timeseries.csv"));
    let first_t: Vec<f64> = (0..64)
        .map(|g| {
            ts.iter()
                .find(|r| r["group"] == format!("g{g}"))
                .map(|r| num(r, "t_s"))
                .unwrap()
        })
        .collect();
    assert!(first_t.iter().all(|&t| t == first_t[0]), "{first_t:?}");
    assert!(first_t[0] < 0.05, "first sample at {} s", first_t[0]);
    assert_eq!(ts.len() % 64, 0, "a row per group per tick");
    // Every group's workload ran: each used CPU.
    assert!(rows.iter().all(|r| num(r, "cpu_usage_s") > 0.0));
    // How the sampler kept up is reported on every row.
    assert!(rows.iter().all(|r| r.contains_key("missed_ticks")));
}

/// `bench scale` at toy sizes: every row it promises is there, with a peak RSS measured
/// for the run and for `plot` of its folder (its figures are for the README, not here).
#[test]
fn bench_scale_measures_runs_and_plots_of_every_kind() {
    if !real_cgroups_or_skip("bench_scale") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("scale");
    let csv = dir.path().join("scale.csv");
    let out = tb()
        .args([
            "bench",
            "scale",
            "--lengths",
            "2s",
            "--groups",
            "3",
            "--group-intervals",
            "100ms",
            "--group-duration",
            "1s",
            "--slow-threads",
            "4",
            "--csv",
            csv.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rows = read_csv(&csv);
    assert_eq!(
        rows.len(),
        3,
        "a length, the Fibtest units, a group count: {rows:?}"
    );
    for r in &rows {
        assert!(num(r, "run_rss_mb") > 1.0, "{r:?}");
        assert!(num(r, "plot_rss_mb") > 1.0, "{r:?}");
        assert!(num(r, "plot_s") > 0.0, "{r:?}");
    }
}
