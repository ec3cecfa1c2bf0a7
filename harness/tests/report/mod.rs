//! `plot`, `check` and `compare` end to end through the binary, on synthetic result
//! folders written here (no root needed), plus the bisect exit codes: 0 good, 1 bad,
//! 125 skip (a cgroup root without controllers), 128 the tool's own error. One test runs
//! `check` for real on cgroups (root, under the exclusive lock).

use crate::common::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A small xorshift generator: fixed seeds give the same "noise" on every run.
struct XorShift(u64);

impl XorShift {
    fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform noise in [-1, 1).
    fn noise(&mut self) -> f64 {
        self.next_f64() * 2.0 - 1.0
    }
}

/// One synthetic run of a requests scenario under a CFS quota.
struct Run {
    param: Option<String>,
    group: &'static str,
    limiter: &'static str,
    target: Option<f64>,
    throttled_pct: f64,
    p99: f64,
    fast: Option<f64>,
}

const HEADER: &str = "scenario,run,{params}group,config,repeat,limiter,quota_s,period_s,burst_s,workload,outcome,wall_s,cpu_usage_s,cpu_share,target_share,share_error,group_share_pct,nr_periods,nr_throttled,throttled_pct,throttled_s,nr_bursts,burst_time_s,steal_s,psi_some_s,latency_p50_s,latency_p90_s,latency_p99_s,latency_p999_s,latency_max_s,fast_iters_per_s,slow_units,requests,duty_end_rate_pct,throttled_per_request,throttled_s_per_request,leaked_stopped,leaked_escaped,leaked_cgroups";

/// Write a result folder: summary.csv, timeseries.csv, latency.csv and run.json.
fn write_folder(
    dir: &Path,
    scenario: &str,
    swept: Option<&str>,
    runs: &[Run],
    expect: &[(&str, &str)],
) {
    std::fs::create_dir_all(dir).unwrap();
    let header = HEADER.replace(
        "{params}",
        &swept.map(|s| format!("param_{s},")).unwrap_or_default(),
    );
    let mut summary = format!("{header}\n");
    let mut ts = String::from("run,group,t_s,dt_s,usage_s,cpu_share,nr_periods,nr_throttled,throttled_s,throttled_share,nr_bursts,burst_time_s,steal_s,busy_s,psi_some_s,psi_full_s\n");
    let mut lat = String::from("run,kind,index,due_s,latency_s,thread,start_s,end_s,group\n");
    let mut plan_runs = Vec::new();
    let mut configs: Vec<String> = Vec::new();
    let mut run = 0;
    for (j, r) in runs.iter().enumerate() {
        // Groups of one run follow each other with the same parameters.
        if j > 0 {
            let prev = &runs[j - 1];
            if !(prev.param == r.param && prev.group != r.group && r.group != "main") {
                run += 1;
            }
        }
        let i = run;
        let key = r.param.clone().unwrap_or_default();
        if !configs.contains(&key) {
            configs.push(key.clone());
        }
        let config = configs.iter().position(|c| *c == key).unwrap();
        let repeat = runs[..j]
            .iter()
            .filter(|x| x.param == r.param && x.group == r.group)
            .count();
        let (quota, period) = if r.limiter == "cfs" {
            ("0.04", "0.1")
        } else {
            ("", "")
        };
        let cpu = r.target.unwrap_or(0.21);
        let target = r.target.map(|t| t.to_string()).unwrap_or_default();
        let err = r.target.map(|t| (cpu - t).to_string()).unwrap_or_default();
        let param = r
            .param
            .as_ref()
            .map(|p| format!("{p},"))
            .unwrap_or_default();
        let fast = r.fast.map(|f| f.to_string()).unwrap_or_default();
        let workload = if r.fast.is_some() {
            "fibtest"
        } else {
            "requests"
        };
        let _ = writeln!(
            summary,
            "{scenario},{i},{param}{},{config},{repeat},{},{quota},{period},0,{workload},completed,9.4,2.0,{cpu},{target},{err},,62,41,{},2.37,0,0,0.04,2.4,{},{},{},{},{},{fast},,10,,4.1,0.237,0,0,0",
            r.group, r.limiter, r.throttled_pct, r.p99 * 0.99, r.p99, r.p99, r.p99, r.p99
        );
        for k in 0..200 {
            let t = (k + 1) as f64 * 0.01;
            let busy = k % 10 < 4;
            let _ = writeln!(
                ts,
                "{i},{},{t},0.01,{},{},{},{},{},{},0,0,0,0.01,{},0",
                r.group,
                if busy { 0.01 } else { 0.0 },
                if busy { 1.0 } else { 0.0 },
                u8::from(k % 10 == 0),
                u8::from(k % 10 == 3),
                if busy { 0.0 } else { 0.006 },
                if busy { 0.0 } else { 0.6 },
                if busy { 0.0 } else { 0.006 }
            );
        }
        let kind = if r.fast.is_some() { "slow" } else { "request" };
        for k in 0..10 {
            let l = r.p99 * (0.995 + 0.0005 * k as f64);
            let _ = writeln!(
                lat,
                "{i},{kind},{k},{k},{l},0,{k},{},{}",
                k as f64 + l,
                r.group
            );
        }
        plan_runs.push(serde_json::json!({
            "index": i, "config": config, "repeat": repeat,
            "params": r.param.as_ref().map(|p| vec![[swept.unwrap(), p.as_str()]]).unwrap_or_default(),
            "groups": [{"name": r.group, "workload": {"kind": workload, "work": "200ms", "count": 10, "interval": "1s"}}],
            "phase": {"period_us": 100000, "phase_us": 0, "sync_gap_us": 30000},
        }));
    }
    let expect: serde_json::Map<String, serde_json::Value> = expect
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect();
    let json = serde_json::json!({
        "schema_version": 1, "tool": "throttlebench", "tool_version": "0.1.0",
        "created": "2026-11-22T13:06:58Z", "complete": true,
        "host": {"hostname": "vm", "kernel_release": "6.18.44", "cpus": 2, "cpu_model": "AMD EPYC", "cgroup_version": "v1"},
        "plan": {"scenario": {"name": scenario, "expect": expect}, "source": "synthetic", "swept": swept.map(|s| vec![s]).unwrap_or_default(), "runs": plan_runs},
        "runs": [],
    });
    std::fs::write(dir.join("summary.csv"), summary).unwrap();
    std::fs::write(dir.join("timeseries.csv"), ts).unwrap();
    std::fs::write(dir.join("latency.csv"), lat).unwrap();
    std::fs::write(
        dir.join("run.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
}

fn requests_run(p99: f64, throttled_pct: f64) -> Run {
    Run {
        param: None,
        group: "main",
        limiter: "cfs",
        target: None,
        throttled_pct,
        p99,
        fast: None,
    }
}

/// The run of Indeed's conceptual model [Unthrottled]: one run, p99 439 ms, 66% of periods throttled.
fn model_folder(tmp: &TempDir, expect: &[(&str, &str)]) -> PathBuf {
    let d = tmp.path().join("model");
    write_folder(
        &d,
        "indeed-model",
        None,
        &[requests_run(0.439, 66.1)],
        expect,
    );
    d
}

/// Runs of a sweep over two quotas, `n` repeats each, with noise from `seed`; latencies
/// and throttling of the 40ms configuration multiplied by `shift`.
fn sweep_folder(dir: &Path, n: usize, seed: u64, shift: f64) {
    let mut rng = XorShift(seed);
    let mut runs = Vec::new();
    for (q, p99, thr) in [("40ms", 0.44, 66.0), ("80ms", 0.2, 20.0)] {
        for _ in 0..n {
            let s = if q == "40ms" { shift } else { 1.0 };
            runs.push(Run {
                param: Some(q.to_string()),
                group: "main",
                limiter: "cfs",
                target: None,
                throttled_pct: thr * s * (1.0 + 0.02 * rng.noise()),
                p99: p99 * s * (1.0 + 0.02 * rng.noise()),
                fast: Some(3.5e9 * (1.0 + 0.01 * rng.noise())),
            });
        }
    }
    write_folder(dir, "sweep", Some("limiter.quota"), &runs, &[]);
}

fn check(args: &[&str]) -> std::process::Output {
    tb().arg("check").args(args).output().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn check_from_a_folder_exits_0_when_every_expectation_holds() {
    let tmp = TempDir::new("check0");
    let d = model_folder(&tmp, &[]);
    let out = check(&[
        "--from",
        d.to_str().unwrap(),
        "--expect",
        "latency_p99_s <= 500ms",
        "--expect",
        "throttled_per_request < 5",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = stdout(&out);
    assert!(s.contains("PASS") && !s.contains("FAIL"), "{s}");
    // The margin, absolute and relative to the limit: 500 − 439 = 61 ms, 12.2%.
    assert!(
        s.contains("+61.00 ms") && s.contains("+12.2% of the limit"),
        "{s}"
    );
}

#[test]
fn check_from_a_folder_exits_1_when_one_fails_and_says_by_how_much() {
    let tmp = TempDir::new("check1");
    let d = model_folder(&tmp, &[]);
    let out = check(&[
        "--from",
        d.to_str().unwrap(),
        "--expect",
        "latency_p99_s <= 500ms",
        "--expect",
        "throttled_pct < 20",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = stdout(&out);
    assert!(s.contains("FAIL  throttled_pct < 20"), "{s}");
    assert!(s.contains("margin -46.10 points"), "{s}");
    assert!(s.contains("1 of 2 expectation(s) failed"), "{s}");
}

#[test]
fn check_uses_the_expect_table_the_folder_was_made_with() {
    let tmp = TempDir::new("checkt");
    let d = model_folder(
        &tmp,
        &[
            ("p99", "latency_p99_s < 450ms"),
            ("throttling", "throttled_pct < 50"),
        ],
    );
    let out = check(&["--from", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = stdout(&out);
    assert!(s.contains("PASS  p99: latency_p99_s < 450ms"), "{s}");
    assert!(s.contains("FAIL  throttling: throttled_pct < 50"), "{s}");
    // A scenario file's table is used instead when one is given.
    let sc = tmp.file(
        "s.toml",
        "name = \"indeed-model\"\n[limiter]\nkind = \"cfs\"\nquota = \"40ms\"\n[workload]\nkind = \"requests\"\nwork = \"200ms\"\ncount = 10\ninterval = \"1s\"\n[expect]\np99 = \"median(latency_p99_s) < 0.45\"\n",
    );
    let out = check(&[sc.to_str().unwrap(), "--from", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn check_selects_runs_of_a_sweep_and_aggregates_repeats() {
    let tmp = TempDir::new("checksel");
    let d = tmp.path().join("sweep");
    sweep_folder(&d, 5, 7, 1.0);
    let dir = d.to_str().unwrap();
    let ok = check(&[
        "--from",
        dir,
        "--expect",
        "[limiter.quota=80ms] median(latency_p99_s) < 250ms",
        "--expect",
        "[param_limiter.quota=40ms] upper95(throttled_pct) < 70",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        stdout(&ok).contains("upper95(throttled_pct)"),
        "{}",
        text(&ok)
    );
    // Every run by default: the 40ms runs fail a limit the 80ms runs meet.
    let bad = check(&["--from", dir, "--expect", "latency_p99_s < 250ms"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let narrowed = check(&[
        "--from",
        dir,
        "--where",
        "param_limiter.quota=80ms",
        "--expect",
        "latency_p99_s < 250ms",
    ]);
    assert_eq!(narrowed.status.code(), Some(0), "{}", text(&narrowed));
}

#[test]
fn check_skips_with_125_when_the_machine_has_no_controller() {
    let tmp = TempDir::new("check125");
    let empty = tmp.path().join("cgroup");
    std::fs::create_dir_all(&empty).unwrap();
    let sc = tmp.file(
        "s.toml",
        &scenario(
            "skip",
            "kind = \"cfs\"\nquota = \"40ms\"",
            "kind = \"requests\"\nwork = \"20ms\"\ncount = 1\ninterval = \"100ms\"",
        ),
    );
    let out = tb()
        .args([
            "--cgroup-root",
            empty.to_str().unwrap(),
            "check",
            sc.to_str().unwrap(),
            "--out",
        ])
        .arg(tmp.path().join("out"))
        .args(["--expect", "throttled_pct < 100"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("controller"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_errors_of_its_own_exit_128() {
    let tmp = TempDir::new("check128");
    let d = model_folder(&tmp, &[]);
    let dir = d.to_str().unwrap();
    for (args, says) in [
        (vec!["--from", dir, "--expect", "throttled_pct = 3"], "=="),
        (
            vec!["--from", dir, "--expect", "nope < 3"],
            "no column `nope`",
        ),
        (
            vec!["--from", dir, "--expect", "fast_iters_per_s > 3"],
            "is empty",
        ),
        (
            vec!["--from", dir, "--expect", "upper95(throttled_pct) < 3"],
            "at least 2 runs",
        ),
        (vec!["--from", dir], "nothing to check"),
        (
            vec!["--from", "/nonexistent/folder", "--expect", "x < 1"],
            "not a folder",
        ),
        (vec![], "give a scenario"),
    ] {
        let out = check(&args);
        assert_eq!(out.status.code(), Some(128), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out)
        );
    }
    // A bad expression in a scenario's [expect] table names the file and line.
    let sc = tmp.file("bad.toml", "name = \"x\"\n[workload]\nkind = \"duty\"\non = \"1s\"\noff = \"0s\"\nduration = \"1s\"\n[expect]\nok = \"cpu_share < 1\"\nbad = \"cpu_share <\"\n");
    let out = check(&[sc.to_str().unwrap(), "--from", dir]);
    assert_eq!(out.status.code(), Some(128), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:9") && err.contains("expect.bad"),
        "{err}"
    );
}

#[test]
fn check_of_a_failed_run_answers_as_the_run_did() {
    let tmp = TempDir::new("checkfail");
    let d = model_folder(&tmp, &[]);
    let s = std::fs::read_to_string(d.join("summary.csv"))
        .unwrap()
        .replace(",completed,", ",failed,");
    std::fs::write(d.join("summary.csv"), s).unwrap();
    let out = check(&[
        "--from",
        d.to_str().unwrap(),
        "--expect",
        "throttled_pct < 100",
    ]);
    assert_eq!(out.status.code(), Some(129), "{}", text(&out));
}

fn compare(base: &Path, new: &Path, extra: &[&str]) -> std::process::Output {
    tb().arg("compare")
        .arg(base)
        .arg(new)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn compare_detects_a_known_shift() {
    let tmp = TempDir::new("cmpshift");
    let (base, new) = (tmp.path().join("base"), tmp.path().join("new"));
    sweep_folder(&base, 8, 11, 1.0);
    sweep_folder(&new, 8, 12, 1.2);
    let out = compare(
        &base,
        &new,
        &[
            "--fail-on",
            "latency_p99_s:+10%",
            "--fail-on",
            "throttled_pct:+5",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = stdout(&out);
    assert!(
        s.contains("REGRESSED latency_p99_s:+10%: limiter.quota=40ms:"),
        "{s}"
    );
    assert!(
        s.contains("REGRESSED throttled_pct:+5: limiter.quota=40ms:"),
        "{s}"
    );
    assert!(
        !s.contains("REGRESSED latency_p99_s:+10%: limiter.quota=80ms:"),
        "{s}"
    );
    let rows = read_csv(&new.join("compare.csv"));
    let row = rows
        .iter()
        .find(|r| r["config"] == "limiter.quota=40ms" && r["metric"] == "latency_p99_s")
        .expect("a compare.csv row");
    assert_eq!(row["verdict"], "worse");
    assert_eq!(row["significant"], "yes");
    assert_eq!(row["regressed"], "true");
    let shift = num(row, "shift");
    assert!((num(row, "ci_low")..=num(row, "ci_high")).contains(&shift));
    assert!((0.07..0.11).contains(&shift), "shift {shift}");
    assert!(num(row, "p_value") < 0.01);
}

#[test]
fn compare_two_configurations_of_one_sweep() {
    let tmp = TempDir::new("cmpwhere");
    let d = tmp.path().join("sweep");
    sweep_folder(&d, 8, 21, 1.0);
    let out = compare(
        &d,
        &d,
        &[
            "--base-where",
            "limiter.quota=80ms",
            "--new-where",
            "limiter.quota=40ms",
            "--metrics",
            "latency_p99_s",
            "--fail-on",
            "latency_p99_s:+10%",
            "--out",
            tmp.path().to_str().unwrap(),
        ],
    );
    // 40ms has twice 80ms's p99: a regression, found on the runs the selections picked.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = stdout(&out);
    assert!(
        s.contains("[limiter.quota=80ms]") && s.contains("[limiter.quota=40ms]"),
        "{s}"
    );
    assert!(s.contains("REGRESSED latency_p99_s:+10%"), "{s}");
    let bad = compare(&d, &d, &["--base-where", "limiter.quota=1ms"]);
    assert_eq!(bad.status.code(), Some(128), "{}", text(&bad));
    assert!(text(&bad).contains("selects no row"), "{}", text(&bad));
}

#[test]
fn compare_without_a_shift_raises_no_alarm() {
    let tmp = TempDir::new("cmpsame");
    let (base, new) = (tmp.path().join("base"), tmp.path().join("new"));
    sweep_folder(&base, 8, 21, 1.0);
    sweep_folder(&new, 8, 22, 1.0);
    let csv = tmp.path().join("out.csv");
    let out = compare(
        &base,
        &new,
        &[
            "--fail-on",
            "latency_p99_s:+10%",
            "--fail-on",
            "fast_iters_per_s:-5%",
            "--out",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("no regression past --fail-on"),
        "{}",
        text(&out)
    );
    let rows = read_csv(&csv);
    assert!(rows.iter().all(|r| r["regressed"] != "true"), "{rows:?}");
    let fast = rows
        .iter()
        .find(|r| r["metric"] == "fast_iters_per_s")
        .unwrap();
    assert_eq!(fast["worse_when"], "lower");
}

#[test]
fn compare_with_one_run_a_side_says_there_is_no_test() {
    let tmp = TempDir::new("cmpone");
    let base = model_folder(&tmp, &[]);
    let new = tmp.path().join("new");
    write_folder(&new, "indeed-model", None, &[requests_run(0.5, 70.0)], &[]);
    let out = compare(&base, &new, &["--fail-on", "latency_p99_s:+10%"]);
    let s = stdout(&out);
    assert!(s.contains("no test: 1 run(s) against 1"), "{s}");
    // +13.9%: past the threshold, decided by the median change alone, and said so.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        s.contains("no test possible: the median change decided"),
        "{s}"
    );
    let out = compare(&base, &new, &["--fail-on", "nope:+1"]);
    assert_eq!(out.status.code(), Some(128), "{}", text(&out));
}

fn plot(dir: &Path) -> Vec<PathBuf> {
    let out = tb().arg("plot").arg(dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let files: Vec<PathBuf> = stdout(&out).lines().map(PathBuf::from).collect();
    for f in &files {
        let len = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{} is {len} bytes", f.display());
    }
    files
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().to_string())
        .collect()
}

#[test]
fn plots_of_a_requests_run_show_the_model() {
    let tmp = TempDir::new("plotmodel");
    let d = model_folder(&tmp, &[]);
    let files = names(&plot(&d));
    for f in [
        "latency.svg",
        "latency.png",
        "timeseries-run0.svg",
        "timeseries-run0.png",
    ] {
        assert!(files.contains(&f.to_string()), "{f} not in {files:?}");
    }
    let svg = std::fs::read_to_string(d.join("plots/latency.svg")).unwrap();
    assert!(
        svg.contains("conceptual model [Unthrottled]: 440 ms"),
        "no model line"
    );
    assert!(
        svg.contains("scenario indeed-model"),
        "no scenario in the legend"
    );
    assert!(std::fs::read(d.join("plots/latency.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));
}

#[test]
fn plots_of_a_sweep_of_fibtest_runs() {
    let tmp = TempDir::new("plotsweep");
    let d = tmp.path().join("sweep");
    sweep_folder(&d, 2, 3, 1.0);
    let files = names(&plot(&d));
    assert!(files.contains(&"sweep.png".to_string()), "{files:?}");
    assert!(files.contains(&"latency.png".to_string()), "{files:?}");
    assert!(
        files.contains(&"timeseries-run3.svg".to_string()),
        "{files:?}"
    );
    let svg = std::fs::read_to_string(d.join("plots/sweep.svg")).unwrap();
    assert!(svg.contains("fast_iters_per_s (per s)") && svg.contains("latency_p99_s (s)"));
}

#[test]
fn plots_of_a_limiter_comparison_with_groups() {
    let tmp = TempDir::new("plotlim");
    let d = tmp.path().join("lim");
    let mut runs = Vec::new();
    for (i, (kind, share)) in [
        ("cfs", 0.1),
        ("cfs", 0.4),
        ("freezer", 0.1),
        ("freezer", 0.4),
    ]
    .iter()
    .enumerate()
    {
        for group in ["a", "b"] {
            runs.push(Run {
                param: Some(format!("kind={kind} share={share}")),
                group,
                limiter: kind,
                target: Some(*share),
                throttled_pct: 10.0 * i as f64,
                p99: 0.01,
                fast: None,
            });
        }
    }
    write_folder(&d, "limiters", Some("limiter"), &runs, &[]);
    let files = names(&plot(&d));
    assert!(files.contains(&"sweep.svg".to_string()), "{files:?}");
    let svg = std::fs::read_to_string(d.join("plots/sweep.svg")).unwrap();
    assert!(
        svg.contains("target share (CPUs)"),
        "x is not the target share"
    );
    assert!(svg.contains("freezer b"), "no line per limiter and group");
    let ts = std::fs::read_to_string(d.join("plots/timeseries-run0.svg")).unwrap();
    assert!(
        ts.contains("a: CPU usage") && ts.contains("b: CPU usage"),
        "groups missing"
    );
}

#[test]
fn plots_of_a_threshold_search_and_of_an_old_folder() {
    let tmp = TempDir::new("plotthr");
    let d = tmp.path().join("thr");
    std::fs::create_dir_all(&d).unwrap();
    let mut probes = String::from("probe,phase,duty_share,on_s,off_s,duration_s,rate_median,rate_end,throttled,nr_throttled,throttled_s,elapsed_s\n");
    for (i, (phase, duty, thr)) in [
        ("calibrate", 1.0, false),
        ("burst", 1.0, true),
        ("duty", 0.42, true),
        ("duty", 0.38, false),
        ("duty", 0.40, false),
        ("confirm", 0.41, true),
    ]
    .iter()
    .enumerate()
    {
        let _ = writeln!(
            probes,
            "{i},{phase},{duty},1,1,10,{},{},{thr},0,0,{}",
            if *thr { 0.4 } else { 1.0 },
            if *thr { 0.4 } else { 0.98 },
            i * 10
        );
    }
    std::fs::write(d.join("probes.csv"), probes).unwrap();
    std::fs::write(d.join("threshold.json"), r#"{"sustainable_share":0.4,"sustainable_share_low":0.4,"sustainable_share_high":0.41,"cycle_s":10}"#).unwrap();
    assert_eq!(names(&plot(&d)), vec!["threshold.svg", "threshold.png"]);
    // check has nothing to read there.
    let out = check(&["--from", d.to_str().unwrap(), "--expect", "x < 1"]);
    assert_eq!(out.status.code(), Some(128), "{}", text(&out));

    // Folders written before groups existed have no group column.
    let old = tmp.path().join("old");
    write_folder(&old, "old", None, &[requests_run(0.44, 66.0)], &[]);
    for f in ["summary.csv", "latency.csv", "timeseries.csv"] {
        let p = old.join(f);
        let t = std::fs::read_to_string(&p).unwrap();
        let kept: Vec<String> = t
            .lines()
            .map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                let drop = if f == "summary.csv" {
                    2
                } else if f == "latency.csv" {
                    8
                } else {
                    1
                };
                cells
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != drop)
                    .map(|(_, c)| *c)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        std::fs::write(&p, kept.join("\n") + "\n").unwrap();
    }
    assert!(!std::fs::read_to_string(old.join("summary.csv"))
        .unwrap()
        .contains(",group,"));
    let files = names(&plot(&old));
    assert!(
        files.contains(&"latency.png".to_string())
            && files.contains(&"timeseries-run0.png".to_string()),
        "{files:?}"
    );
    let out = check(&[
        "--from",
        old.to_str().unwrap(),
        "--expect",
        "latency_p99_s < 0.5",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn check_runs_a_scenario_for_real_and_plots_it() {
    if !real_cgroups_or_skip("check_runs_a_scenario_for_real") {
        return;
    }
    let _x = exclusive();
    let tmp = TempDir::new("checkreal");
    let sc = tmp.file(
        "s.toml",
        &format!(
            "{}\n[expect]\nlatency = \"max(latency_p99_s) < 5s\"\nrequests = \"requests == 3\"\n",
            scenario(
                "check-real",
                "kind = \"cfs\"\nquota = \"40ms\"\nperiod = \"100ms\"",
                "kind = \"requests\"\nwork = \"20ms\"\ncount = 3\ninterval = \"100ms\""
            )
        ),
    );
    let res = tmp.path().join("out");
    let out = check(&[sc.to_str().unwrap(), "--out", res.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(res.join("plots/latency.png").exists(), "{}", text(&out));
    // The folder answers the same afterwards.
    let again = check(&["--from", res.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let fail = check(&["--from", res.to_str().unwrap(), "--expect", "requests == 4"]);
    assert_eq!(fail.status.code(), Some(1), "{}", text(&fail));
}

#[test]
fn cut_prints_columns_by_name_and_names_a_missing_one() {
    let tmp = TempDir::new("cut");
    let d = tmp.path().join("sweep");
    sweep_folder(&d, 2, 5, 1.0);
    let out = tb()
        .args(["cut"])
        .arg(&d)
        .args(["-c", "limiter.quota,latency_p99_s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines[0], "limiter.quota,latency_p99_s", "{}", text(&out));
    assert_eq!(lines.len(), 5, "a header and four runs: {}", text(&out));
    assert!(lines[1].starts_with("40ms,0.4"), "{}", text(&out));
    assert!(lines[4].starts_with("80ms,0.2"), "{}", text(&out));

    let table = tb()
        .args(["cut", "--table"])
        .arg(&d)
        .args(["-c", "limiter.quota,latency_p99_s"])
        .output()
        .unwrap();
    let first = stdout(&table).lines().next().unwrap_or("").to_string();
    assert_eq!(first, "limiter.quota  latency_p99_s", "{}", text(&table));

    let bad = tb()
        .args(["cut"])
        .arg(&d)
        .args(["-c", "p99"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("summary.csv: no column `p99`"), "{err}");
    assert!(err.contains("did you mean `latency_p99_s`"), "{err}");
}
