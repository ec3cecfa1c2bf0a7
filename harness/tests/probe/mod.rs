//! The steal and entropy probes, alone and as a scenario's workload.

mod mpstat;

use crate::common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Start `probe steal` on CPU 0 for `duration` into `out_dir`; return once its spinning
/// thread has run 50 ms of CPU (its loop is running, its signal handlers installed).
fn start_spinning_probe(out_dir: &std::path::Path, duration: &str) -> std::process::Child {
    let child = tb()
        .args([
            "probe",
            "steal",
            "--duration",
            duration,
            "--cpus",
            "0",
            "--interval",
            "10ms",
            "--out",
        ])
        .arg(out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_for("the probe's loop to spin", Duration::from_secs(20), || {
        thread_run_ns(pid, "steal-0").is_some_and(|ns| ns > 50_000_000)
    });
    child
}

/// The state letter of the thread named `name` of `pid` ('T' when stopped).
fn thread_state(pid: u32, name: &str) -> Option<char> {
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let s = std::fs::read_to_string(e.path().join("stat")).ok()?;
            return s[s.rfind(')')? + 1..].trim_start().chars().next();
        }
    }
    None
}

/// ns the thread named `name` of `pid` has run, from its schedstat.
fn thread_run_ns(pid: u32, name: &str) -> Option<u64> {
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let s = std::fs::read_to_string(e.path().join("schedstat")).ok()?;
            return s.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

#[test]
fn sigstop_pauses_show_as_observed_stalls_but_not_as_steal() {
    let _x = exclusive();
    let dir = TempDir::new("probe-stop");
    let out_dir = dir.path().join("out");
    let child = start_spinning_probe(&out_dir, "3s");
    let pid = child.id();
    let target = nix::unistd::Pid::from_raw(pid as i32);
    // Each pause is bracketed: at least from when the spinning thread is seen stopped to
    // the SIGCONT (`inner`), at most from before the SIGSTOP to after the SIGCONT (`outer`).
    let mut inner = Vec::new();
    let mut outer = Vec::new();
    // Each pause's bracket on CLOCK_MONOTONIC, the clock the probe's timestamps use.
    let mut windows: Vec<(f64, f64)> = Vec::new();
    let mono_s = || throttlebench::clock::monotonic_ns() as f64 / 1e9;
    for i in 0..3 {
        let stop_mono = mono_s();
        let before_stop = Instant::now();
        nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGSTOP).unwrap();
        let deadline = before_stop + Duration::from_secs(5);
        while thread_state(pid, "steal-0") != Some('T') {
            assert!(Instant::now() < deadline, "the probe did not stop");
        }
        let seen_stopped = Instant::now();
        // The stimulus: a pause of a known length (measured, not assumed).
        std::thread::sleep(Duration::from_millis(50));
        let before_cont = Instant::now();
        nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGCONT).unwrap();
        outer.push(before_stop.elapsed().as_secs_f64());
        windows.push((stop_mono, mono_s()));
        inner.push((before_cont - seen_stopped).as_secs_f64());
        if i < 2 {
            // Between pauses, let it run (at least 100 ms of CPU) so they stay apart.
            let base = thread_run_ns(pid, "steal-0").unwrap_or(0);
            wait_for("the probe to run again", Duration::from_secs(20), || {
                thread_run_ns(pid, "steal-0").is_some_and(|ns| ns > base + 100_000_000)
            });
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let paused_s: f64 = inner.iter().sum();
    // Each pause is a gap of 40 ms or more (the histogram may hold more: a preemption of
    // the shared machine is one too), and gap_max_s is at least the shortest pause.
    let gaps = read_csv(&out_dir.join("gaps.csv"));
    let long: Vec<_> = gaps.iter().filter(|g| num(g, "lower_s") >= 0.04).collect();
    let count: f64 = long.iter().map(|g| num(g, "count")).sum();
    assert!(count >= 3.0, "gaps of 40 ms or more: {long:?}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    let shortest = inner.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        summary["gap_max_s"].as_f64().unwrap() >= shortest,
        "{summary}"
    );
    // From the timestamps: the stall the probe saw in the 10 ms intervals that overlap a
    // pause accounts for that pause: at least the time it was surely stopped, at most its
    // bracket plus the two intervals it may share with running time and a wake-up. So a
    // pause is found where it happened, whatever else stalled the machine elsewhere.
    let start_s = summary["start_monotonic_ns"]
        .as_u64()
        .expect("start_monotonic_ns") as f64
        / 1e9;
    let series = read_csv(&out_dir.join("timeseries.csv"));
    let cpu0: Vec<_> = series.iter().filter(|r| r["cpu"] == "0").collect();
    assert!(cpu0.len() >= 250, "{} rows of cpu 0 at 10 ms", cpu0.len());
    let mut in_windows = 0.0;
    for (i, &(w0, w1)) in windows.iter().enumerate() {
        let seen: f64 = cpu0
            .iter()
            .filter(|r| {
                let end = start_s + num(r, "t_s");
                let begin = end - num(r, "dt_s");
                begin < w1 && end > w0
            })
            .map(|r| num(r, "stall_s"))
            .sum();
        let bound = outer[i] + 2.0 * 0.010 + 0.005;
        assert!(
            seen >= inner[i] - 0.001 && seen <= bound,
            "pause {i}: {seen:.4}s of stall in its intervals for {:.4}-{:.4}s paused",
            inner[i],
            outer[i]
        );
        in_windows += seen;
    }
    let stall = summary["stall_s"].as_f64().unwrap();
    let steal = summary["steal_s"].as_f64().unwrap();
    assert!(
        stall >= in_windows,
        "stall {stall} < the pauses' {in_windows}"
    );
    // Stopping a process is not steal: the hypervisor did not take the CPU.
    assert!(
        steal < paused_s / 2.0,
        "steal {steal}s accounts for the {paused_s}s of SIGSTOP"
    );
    // The loop is tight: a clock read is tens of ns, not µs.
    let loop_ns = summary["loop_ns"].as_f64().unwrap();
    assert!(loop_ns > 5.0 && loop_ns < 500.0, "loop {loop_ns} ns");
    let rows = read_csv(&out_dir.join("steal.csv"));
    assert_eq!(
        rows.iter().map(|r| r["cpu"].as_str()).collect::<Vec<_>>(),
        ["0", "all"]
    );
    assert!(series.len() >= 2 * 250, "{} rows", series.len());
}

#[test]
fn a_probe_stopped_by_sigterm_writes_what_it_measured_and_exits_143() {
    let _x = exclusive();
    let dir = TempDir::new("probe-term");
    let out_dir = dir.path().join("out");
    let child = start_spinning_probe(&out_dir, "60s");
    let pid = child.id();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out));
    let rows = read_csv(&out_dir.join("steal.csv"));
    let measured = num(&rows[0], "duration_s");
    assert!(measured > 0.0 && measured < 30.0, "duration_s {measured}");
}

#[test]
fn a_cgroup_stat_without_throttling_counters_leaves_the_split_empty_not_zero() {
    let _x = exclusive();
    let dir = TempDir::new("probe-nocpu");
    let out_dir = dir.path().join("out");
    // A real v2 cpu.stat of a group whose parent did not enable the cpu controller.
    let stat = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/sample/fixtures/linux-6.1-v2/nocpu-cpu.stat"
    );
    let out = tb()
        .args(["probe", "steal", "--duration", "200ms", "--cpus", "0"])
        .args(["--cgroup-stat", stat, "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("has no throttling counters"),
        "{}",
        text(&out)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    assert!(summary["throttle_stall_s"].is_null(), "{summary}");
    assert!(summary["throttled_s"].is_null(), "{summary}");
}

#[test]
fn steal_under_a_quota_tells_throttling_stalls_apart() {
    if !real_cgroups_or_skip("steal under a quota") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("probe-quota");
    let text = "name = \"steal-quota\"\nsample_interval = \"100ms\"\n\n[limiter]\nkind = \"none\"\n\n\
                [workload]\nkind = \"steal\"\nduration = \"2s\"\ncpus = \"0\"\n\n\
                [sweep]\n\"limiter\" = [{ kind = \"none\" }, { kind = \"cfs\", quota = \"40ms\", period = \"100ms\" }]\n";
    let (out, out_dir) = run_scenario(&dir, text);
    assert!(out.status.success(), "{}", crate::common::text(&out));
    let rows = read_csv(&out_dir.join("summary.csv"));
    assert_eq!(rows.len(), 2);
    let (free, limited) = (&rows[0], &rows[1]);
    assert_eq!(limited["limiter"], "cfs");
    // Free: a few % lost to the machine, nothing to throttling.
    assert!(num(free, "stall_share") < 0.2, "{free:?}");
    assert_eq!(num(free, "throttle_stall_s"), 0.0);
    // 40% quota: the spinner loses about 60% of its CPU, most of it to throttling.
    let share = num(limited, "stall_share");
    assert!((0.5..=0.7).contains(&share), "stall share {share}");
    let thr = num(limited, "throttle_stall_s");
    let other = num(limited, "other_stall_s");
    assert!(thr > 0.5, "stalls from throttling {thr}s");
    assert!(
        (thr + other - num(limited, "stall_s")).abs() < 1e-6,
        "{limited:?}"
    );
    assert!(thr <= num(limited, "throttled_s") + 0.05, "{limited:?}");
    // The probe's tables, tagged with run and group.
    let steal = read_csv(&out_dir.join("steal.csv"));
    assert_eq!(steal.len(), 4, "two rows (cpu 0, all) per run");
    assert!(steal.iter().all(|r| r["group"] == "main"));
    let series = read_csv(&out_dir.join("steal_timeseries.csv"));
    assert!(series
        .iter()
        .any(|r| r["run"] == "1" && r["cpu"] == "all" && num(r, "throttled_s") > 0.0));
    assert!(out_dir.join("gaps.csv").exists());
}

#[test]
fn entropy_probe_measures_each_source_and_tests_its_bytes() {
    // Its readers load both CPUs for 8 s: the measuring tests must not run meanwhile.
    let _x = exclusive();
    let dir = TempDir::new("probe-entropy");
    let out_dir = dir.path().join("out");
    let out = tb()
        .args([
            "probe",
            "entropy",
            "--duration",
            "1s",
            "--sources",
            "getrandom,urandom",
            "--sizes",
            "32,4096",
            "--readers",
            "1,2",
            "--fips-bytes",
            "250004",
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rows = read_csv(&out_dir.join("entropy.csv"));
    // Each source, size and reader count once.
    let mut seen: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["source"].clone(),
                r["read_size"].clone(),
                r["readers"].clone(),
            )
        })
        .collect();
    seen.sort();
    let mut want = Vec::new();
    for src in ["getrandom", "urandom"] {
        for size in ["32", "4096"] {
            for readers in ["1", "2"] {
                want.push((src.to_string(), size.to_string(), readers.to_string()));
            }
        }
    }
    want.sort();
    assert_eq!(seen, want, "{rows:?}");
    for r in &rows {
        assert_eq!(r["error"], "", "{r:?}");
        assert_eq!(num(r, "errors"), 0.0, "{r:?}");
        // getrandom(2) and /dev/urandom fill every read of these sizes whole, so the
        // bytes counted are the reads times the size: the counting is exact.
        let reads = num(r, "reads");
        assert!(reads > 0.0, "{r:?}");
        assert_eq!(num(r, "bytes"), reads * num(r, "read_size"), "{r:?}");
        // Each of the 8 measurements lasts its share of --duration (1 s / 8), and its
        // rate is its bytes over the time it lasted.
        let dur = num(r, "duration_s");
        assert!(dur >= 0.125 - 1e-3, "{r:?}");
        let rate = num(r, "bytes") / dur;
        assert!((num(r, "bytes_per_s") - rate).abs() <= 1e-6 * rate, "{r:?}");
        assert!(num(r, "lat_p50_s") <= num(r, "lat_p99_s"), "{r:?}");
        assert!(num(r, "lat_p99_s") <= num(r, "lat_max_s"), "{r:?}");
        // One reader is its own mean: its share is 1 exactly. With two, the fewer
        // reader's bytes over the mean: above 0 (both read) and at most 1.
        let share = num(r, "min_reader_share");
        if r["readers"] == "1" {
            assert_eq!(share, 1.0, "{r:?}");
        } else {
            assert!(share > 0.0 && share <= 1.0, "{r:?}");
        }
    }
    // 4 bytes start the continuous test, then 100 blocks of 2500.
    let fips = read_csv(&out_dir.join("fips.csv"));
    assert_eq!(fips.len(), 2);
    for f in &fips {
        assert_eq!(num(f, "blocks"), 100.0, "{f:?}");
        assert_eq!(num(f, "successes") + num(f, "failures"), 100.0);
    }
    let k: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("kernel.json")).unwrap())
            .unwrap();
    assert_eq!(k["crng_ready"], true);
    assert!(!k["release"].as_str().unwrap().is_empty());
}

#[test]
fn fips_file_fails_a_file_of_zeros_in_rngtest_terms() {
    let dir = TempDir::new("probe-fips");
    let zeros = dir.path().join("zeros");
    std::fs::write(&zeros, vec![0u8; 4 + 2500 * 3]).unwrap();
    let out = tb()
        .args(["probe", "entropy", "--fips-file", zeros.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FIPS 140-2 failures: 3"), "{stdout}");
    assert!(
        stdout.ends_with('\n'),
        "the output ends its last line: {stdout:?}"
    );
    let missing = tb()
        .args(["probe", "entropy", "--fips-file", "/nonexistent/file"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/file"));
}

#[test]
fn a_bad_entropy_source_in_a_scenario_names_the_field() {
    let dir = TempDir::new("probe-bad");
    let text = scenario(
        "bad",
        "kind = \"none\"",
        "kind = \"entropy\"\nsources = [\"urandom\", \"lava-lamp\"]",
    );
    let (out, _) = run_scenario(&dir, &text);
    assert_eq!(out.status.code(), Some(3), "{}", crate::common::text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("workload.sources") && err.contains("lava-lamp"),
        "{err}"
    );
}
