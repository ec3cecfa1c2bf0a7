//! The scenario files the project ships (`scenarios/**/*.toml`, `docs/examples/*.toml`)
//! still resolve, so a schema change cannot silently break them; `bench sampler`, the
//! command behind the README's sampler-cost table, runs and writes a consistent table;
//! and `bench accuracy`, behind the limiters' and weights' figures, reports every group
//! over its repeats.

use crate::common::*;
use std::path::{Path, PathBuf};

/// Every `*.toml` under `dir`, folders below it included, sorted.
fn tomls(dir: &Path, into: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            tomls(&p, into);
        } else if p.extension().is_some_and(|x| x == "toml") {
            into.push(p);
        }
    }
}

fn shipped() -> Vec<PathBuf> {
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    tomls(&top.join("scenarios"), &mut files);
    // docs/examples/ only at its top: figures/ holds no scenarios.
    for e in std::fs::read_dir(top.join("docs/examples"))
        .unwrap()
        .flatten()
    {
        let p = e.path();
        if p.is_file() && p.extension().is_some_and(|x| x == "toml") {
            files.push(p);
        }
    }
    files.sort();
    files
}

/// A scenario written for `find-threshold` (it says so in its comments) has a [limiter]
/// and no workload: the search brings its own. It is resolved as find-threshold resolves
/// it, and its limiter must be one the search accepts.
fn for_find_threshold(text: &str) -> bool {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .any(|l| l.contains("throttlebench find-threshold"))
}

#[test]
fn every_shipped_scenario_resolves() {
    // Twenty process starts in a row: not beside a measuring test.
    let _x = exclusive();
    let files = shipped();
    // The folders are read, not empty: a moved folder must not turn this test vacuous.
    assert!(
        files.len() >= 20,
        "only {} shipped scenario files found: {files:?}",
        files.len()
    );
    let allowed: fibtest::cpulist::CpuList = fibtest::cpulist::allowed_cpus().unwrap();
    let mut failures = Vec::new();
    let mut threshold_files = 0;
    for f in &files {
        let name = f.display().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        if for_find_threshold(&text) {
            threshold_files += 1;
            let resolved = throttlebench::scenario::parse(&text, &name).and_then(|s| {
                throttlebench::scenario::resolve::resolve_limiter(&s.limiter, &name, &allowed)
            });
            match resolved {
                Ok(l) if matches!(l.name(), "none" | "cfs" | "credits") => {}
                Ok(l) => failures.push(format!(
                    "{name}: limiter {} is not one find-threshold searches under",
                    l.name()
                )),
                Err(e) => failures.push(format!("{name}: {e}")),
            }
            continue;
        }
        let out = tb()
            .args(["run", f.to_str().unwrap(), "--dry-run"])
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!("{name}: {}", text_of(&out)));
            continue;
        }
        // The plan printed is JSON with at least one run, named as the file names it.
        let plan: serde_json::Value = match serde_json::from_slice(&out.stdout) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{name}: --dry-run printed no JSON plan: {e}"));
                continue;
            }
        };
        let runs = plan["runs"].as_array().map(|r| r.len()).unwrap_or(0);
        if runs == 0 {
            failures.push(format!("{name}: the plan has no runs"));
        }
        if plan["source"].as_str() != Some(name.as_str()) {
            failures.push(format!("{name}: the plan's source is {:?}", plan["source"]));
        }
    }
    assert!(
        failures.is_empty(),
        "shipped scenarios that no longer resolve:\n{}",
        failures.join("\n")
    );
    // scenarios/t2-micro.toml is one; a test that resolved no threshold file would not
    // notice if the marker changed.
    assert!(
        threshold_files >= 1,
        "no find-threshold scenario recognised"
    );
}

fn text_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn bench_sampler_writes_a_consistent_table() {
    if !real_cgroups_or_skip("bench_sampler_writes_a_consistent_table") {
        return;
    }
    // It measures CPU time: nothing else of the suite may load the CPUs meanwhile.
    let _x = exclusive();
    let dir = TempDir::new("bench-sampler");
    let csv = dir.path().join("sampler.csv");
    let out = tb()
        .args([
            "bench",
            "sampler",
            "--duration",
            "200ms",
            "--intervals",
            "10ms",
            "--groups",
            "1,2",
            "--repeat",
            "2",
            "--csv",
            csv.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = out.id();
    let out = out.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kinds = ["timer", "reads", "timed-reads", "sampler"];
    // The table: a header, one line per kind and group count, in that order, and the note.
    let table: Vec<(&str, &str)> = stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?, w.next()?))
        })
        .filter(|(k, _)| kinds.contains(k))
        .collect();
    let want: Vec<(&str, &str)> = ["1", "2"]
        .iter()
        .flat_map(|g| kinds.iter().map(move |k| (*k, *g)))
        .collect();
    assert_eq!(table, want, "{stdout}");
    let rows = read_csv(&csv);
    assert_eq!(rows.len(), 2 * kinds.len() * 2, "{rows:?}");
    for r in &rows {
        let kind = r["loop_kind"].as_str();
        let groups = num(r, "groups");
        let ticks = num(r, "ticks");
        let wall = num(r, "wall_s");
        let cpu = num(r, "cpu_s");
        // 200 ms at 10 ms: 20 ticks, whatever the loop.
        assert_eq!(ticks, 20.0, "{r:?}");
        assert_eq!(num(r, "interval_s"), 0.01, "{r:?}");
        // The loops that sleep to absolute deadlines last at least their ticks.
        if kind != "reads" {
            assert!(wall >= 0.2 - 1e-3, "{kind} lasted {wall} s: {r:?}");
        }
        // One thread's CPU time: more than nothing, at most the wall time.
        assert!(cpu > 0.0 && cpu <= wall * 1.001, "{r:?}");
        // The derived columns are what their names say.
        let per_tick = cpu * 1e6 / ticks;
        assert!(
            (num(r, "cpu_per_tick_us") - per_tick).abs() <= 1e-6 * per_tick.max(1.0),
            "{r:?}"
        );
        assert!(
            (num(r, "cpu_per_group_tick_us") - per_tick / groups).abs() <= 1e-6 * per_tick.max(1.0),
            "{r:?}"
        );
        assert!(
            (num(r, "cpu_pct") - 100.0 * cpu / wall).abs() <= 1e-6 * 100.0,
            "{r:?}"
        );
    }
    // The bench's own timeseries file is gone (it is unlinked once opened).
    let stray: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("throttlebench-bench-{pid}-"))
        })
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn bench_accuracy_reports_each_group_over_its_repeats() {
    if !real_cgroups_or_skip("bench_accuracy_reports_each_group_over_its_repeats") {
        return;
    }
    // Weights share the CPUs only under full contention: nothing else may run meanwhile.
    let _x = exclusive();
    let dir = TempDir::new("bench-accuracy");
    let csv = dir.path().join("accuracy.csv");
    let child = tb()
        .args([
            "bench",
            "accuracy",
            "--only",
            "weights",
            "--repeat",
            "2",
            "--csv",
            csv.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rows = read_csv(&csv);
    let groups: Vec<&str> = rows.iter().map(|r| r["group"].as_str()).collect();
    assert_eq!(groups, ["site1", "site2", "site3", "site4"], "{rows:?}");
    // The targets follow from scenarios/weights.toml's weights 150/100/100/50.
    let targets = [37.5, 25.0, 25.0, 12.5];
    for (r, want) in rows.iter().zip(targets) {
        assert_eq!(num(r, "target"), want, "{r:?}");
        assert_eq!(num(r, "runs"), 2.0, "{r:?}");
        let (lo, med, hi) = (num(r, "min"), num(r, "median"), num(r, "max"));
        assert!(lo <= med && med <= hi, "{r:?}");
        // The largest error is the farther end of the range from the target.
        let err = (lo - want).abs().max((hi - want).abs());
        assert!((num(r, "max_abs_error") - err).abs() < 1e-9, "{r:?}");
        // Four busy groups on all CPUs get their weight's share: within 3 points on a
        // noisy machine (docs/limiters.md shows 0.4 points at a quiet moment).
        assert!(err < 3.0, "{r:?}");
    }
    // The bench's result folders are gone.
    let stray = std::env::temp_dir().join(format!("throttlebench-accuracy-{pid}"));
    assert!(!stray.exists(), "{}", stray.display());
}
