//! `[load]` end to end on real cgroups: the reference server under a quota, with every
//! request joined to its CFS periods; a service that opens its port late, never, or dies
//! mid-load; and a generator asked for more than it can send.

use crate::common::*;
use std::collections::BTreeSet;

/// This build's binary, for commands that start `fibtest serve` themselves.
fn tb_path() -> &'static str {
    env!("CARGO_BIN_EXE_throttlebench")
}

/// A scenario of `workload` loaded as `load` says, under `limiter`.
fn loaded(name: &str, limiter: &str, workload: &str, load: &str) -> String {
    format!("{}\n[load]\n{load}\n", scenario(name, limiter, workload))
}

/// Pids of live processes whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) && pid != std::process::id() as i32 {
            v.push(pid);
        }
    }
    v
}

#[test]
fn the_reference_server_under_a_quota_splits_latency_by_throttled_periods() {
    if !real_cgroups_or_skip("reference_server_under_a_quota") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("serveq");
    // 40 ms of CPU per request under 30 ms of quota per 100 ms, one request every
    // 270 ms, so a request starts 70 ms later in the period each time and meets every
    // phase in turn. One that starts 70-90 ms into a period spends at most 30 ms there
    // and the rest in the next: never throttled, about 40 ms. Any other spends the
    // period's 30 ms and waits for the next period: held for tens of ms.
    let (out, res) = run_scenario(
        &dir,
        &loaded(
            "serveq",
            "kind = \"cfs\"\nquota = \"30ms\"\nperiod = \"100ms\"",
            "kind = \"serve\"\nthreads = 1\nwork = \"40ms\"\ncpus = \"0\"",
            "target = \"http://127.0.0.1:{port}/\"\nrate = 3.7037\nduration = \"8s\"\nwarmup = \"500ms\"",
        ),
    );
    assert!(out.status.success(), "{}", text(&out));
    let s = &read_csv(&res.join("summary.csv"))[0];
    let (touched, clear) = (num(s, "touched_p50_s"), num(s, "clear_p50_s"));
    assert!(num(s, "touched_requests") >= 5.0, "{s:?}");
    assert!(num(s, "errors") == 0.0, "{s:?}");
    // A request that waits out a throttled period is later by a good part of the 70 ms
    // the group is held each such period.
    assert!(
        touched >= clear + 0.02,
        "touched p50 {touched} against clear p50 {clear}: {s:?}"
    );
    // Consistent with the kernel's counts: the periods latency.csv calls throttled are
    // no more than nr_throttled, and every request that touched one is counted.
    let rows = read_csv(&res.join("latency.csv"));
    let mut throttled = BTreeSet::new();
    for r in &rows {
        if r["due_throttled"] == "1" {
            throttled.insert(r["due_period"].clone());
        }
        if r["end_throttled"] == "1" {
            throttled.insert(r["end_period"].clone());
        }
    }
    assert!(!throttled.is_empty());
    assert!(
        throttled.len() as f64 <= num(s, "nr_throttled"),
        "{} periods marked, nr_throttled {}",
        throttled.len(),
        num(s, "nr_throttled")
    );
    let touched_rows = rows
        .iter()
        .filter(|r| r["warmup"] == "0" && r["error"].is_empty())
        .filter(|r| r["throttled_periods"].parse::<u64>().is_ok_and(|n| n > 0))
        .count();
    assert_eq!(touched_rows as f64, num(s, "touched_requests"));
    for r in &rows {
        assert_eq!(r["kind"], "http");
        assert_eq!(r["status"], "200", "{r:?}");
    }
    // The run's plots have the split.
    assert!(res.join("plots/latency-split.svg").exists());
}

#[test]
fn the_load_waits_for_a_service_that_opens_its_port_late() {
    if !real_cgroups_or_skip("load_waits_for_the_port") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("latewait");
    let (out, res) = run_scenario(
        &dir,
        &loaded(
            "latewait",
            "kind = \"none\"",
            &format!(
                "kind = \"command\"\ncommand = \"sleep 1; exec {} fibtest serve --port {{port}} --work 1ms\"",
                tb_path()
            ),
            "target = \"http://127.0.0.1:{port}/\"\nrate = 50\nduration = \"2s\"\nport_wait = \"20s\"",
        ),
    );
    assert!(out.status.success(), "{}", text(&out));
    let s = &read_csv(&res.join("summary.csv"))[0];
    assert_eq!(num(s, "errors"), 0.0, "{s:?}");
    assert!(num(s, "requests") >= 95.0, "{s:?}");
    // The schedule starts once the port is open: the second of waiting is in no latency.
    assert!(num(s, "latency_p50_s") < 0.5, "{s:?}");
}

#[test]
fn a_service_that_never_opens_its_port_fails_the_run_with_exit_6_and_leaves_nothing() {
    if !real_cgroups_or_skip("service_never_opens_its_port") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("neveropen");
    let (out, res) = run_scenario(
        &dir,
        &loaded(
            "neveropen",
            "kind = \"cfs\"\nquota = \"50ms\"",
            "kind = \"command\"\ncommand = \"exec sleep 31.37 # {port}\"",
            "target = \"http://127.0.0.1:{port}/\"\nrate = 10\nport_wait = \"1s\"",
        ),
    );
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing accepted connections on 127.0.0.1:"),
        "{err}"
    );
    assert!(processes_with("sleep 31.37").is_empty());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(res.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["runs"][0]["result"]["outcome"]["outcome"], "failed");
}

#[test]
fn a_service_that_dies_mid_load_has_its_failed_requests_counted_and_its_run_kept() {
    if !real_cgroups_or_skip("service_dies_mid_load") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("diesmid");
    let (out, res) = run_scenario(
        &dir,
        &loaded(
            "diesmid",
            "kind = \"none\"",
            &format!(
                "kind = \"command\"\ncommand = \"exec timeout -s KILL 1.5 {} fibtest serve --port {{port}} --work 1ms\"",
                tb_path()
            ),
            "target = \"http://127.0.0.1:{port}/\"\nrate = 40\nduration = \"3s\"",
        ),
    );
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let s = &read_csv(&res.join("summary.csv"))[0];
    assert_eq!(s["outcome"], "failed");
    // About 1.5 s answered, the rest refused.
    assert!(num(s, "requests") >= 30.0, "{s:?}");
    assert!(num(s, "errors") >= 30.0, "{s:?}");
    let rows = read_csv(&res.join("latency.csv"));
    assert!(
        rows.iter().any(|r| r["error"] == "refused"),
        "no refused request"
    );
    assert!(rows.iter().any(|r| r["status"] == "200"));
}

#[test]
fn a_generator_that_cannot_keep_its_schedule_says_so() {
    if !real_cgroups_or_skip("overloaded_generator") {
        return;
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        assert!(
            !ci(),
            "overloaded_generator needs 2 CPUs; CI machines have them"
        );
        eprintln!("skipped: overloaded_generator needs 2 CPUs");
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("overgen");
    // A server that answers at once on CPU 0; the generator on CPU 1, which a spinning
    // group shares, asked for 300,000 requests/s on 256 connections: it waits for its CPU
    // and falls behind.
    let toml = "name = \"overgen\"\n[limiter]\nkind = \"none\"\n\n\
        [[group]]\nname = \"web\"\nworkload = { kind = \"serve\", threads = 1, work = \"0ms\", cpus = \"0\" }\n\n\
        [[group]]\nname = \"hog\"\nworkload = { kind = \"duty\", on = \"10s\", off = \"0ms\", duration = \"10s\", cpus = \"1\" }\n\n\
        [load]\ntarget = \"http://127.0.0.1:{port}/\"\nrate = 300000\nconnections = 256\nthreads = 1\ncpus = \"1\"\nduration = \"2s\"\ngroup = \"web\"\n";
    let (out, res) = run_scenario(&dir, toml);
    assert!(out.status.success(), "{}", text(&out));
    let rows = read_csv(&res.join("summary.csv"));
    let web = rows.iter().find(|r| r["group"] == "web").unwrap();
    assert_eq!(web["generator_saturated"], "true", "{web:?}");
    assert!(num(web, "generator_wait_pct") >= 10.0, "{web:?}");
    assert!(num(web, "achieved_rate") < 300_000.0 * 0.8, "{web:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the load generator could not keep its schedule"),
        "{err}"
    );
    // The hog's row has no load figures.
    let hog = rows.iter().find(|r| r["group"] == "hog").unwrap();
    assert_eq!(hog["generator_saturated"], "");
}

/// A copy of shipped scenario `name` with its sweep, repeats and duration cut down, so a
/// test runs it for real in seconds. It sits beside the original (a hidden file), where
/// `{dir}` finds the scripts; `run_file` removes it.
fn shipped_short(name: &str, edits: &[(&str, &str)]) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{name}.toml has no `{from}`");
        text = text.replace(from, to);
    }
    // {dir} is the scenario's folder: the copy sits beside the original's scripts.
    let copy = path.with_file_name(format!(".test-{name}-{}.toml", std::process::id()));
    std::fs::write(&copy, text).unwrap();
    copy
}

/// Run a scenario file into `dir/out`; the copy is removed after.
fn run_file(dir: &TempDir, file: &std::path::Path) -> (std::process::Output, std::path::PathBuf) {
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

#[test]
fn nginx_is_held_to_its_quota_while_loaded_and_every_answer_is_a_200() {
    if !real_cgroups_or_skip("nginx_under_a_quota")
        || !crate::common::prometheus::program_or_skip("nginx_under_a_quota", "nginx", "nginx")
    {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("nginx");
    let file = shipped_short(
        "nginx-gzip",
        &[
            ("repeats = 3", "repeats = 1"),
            ("duration = \"20s\"", "duration = \"4s\""),
            (
                "\"limiter.quota\" = [\"30ms\", \"50ms\", \"100ms\", \"200ms\"]",
                "\"limiter.quota\" = [\"10ms\"]",
            ),
        ],
    );
    let (out, res) = run_file(&dir, &file);
    assert!(out.status.success(), "{}", text(&out));
    let s = &read_csv(&res.join("summary.csv"))[0];
    // Level-9 gzip of 256 KiB at 40/s needs more than 0.1 CPU: the quota holds nginx
    // to it, throttled most periods, and it answers fewer than asked (the rest wait,
    // then count as never sent). Every answer is a 200.
    assert_eq!(num(s, "non_2xx"), 0.0, "{s:?}");
    assert!(num(s, "requests") >= 10.0, "{s:?}");
    assert!(num(s, "achieved_rate") < 40.0, "{s:?}");
    assert!((0.08..=0.12).contains(&num(s, "cpu_share")), "{s:?}");
    assert!(num(s, "throttled_pct") >= 50.0, "{s:?}");
    // nginx.sh's temporary prefix went with it.
    let tmp = std::env::temp_dir();
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("tb-nginx-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(processes_with("nginx: master").is_empty());
}

#[test]
fn a_python_service_under_a_quota_and_without_one() {
    if !real_cgroups_or_skip("python_service")
        || !crate::common::prometheus::program_or_skip("python_service", "python3", "python3")
    {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("pysvc");
    let file = shipped_short(
        "python-service",
        &[
            ("repeats = 3", "repeats = 1"),
            ("duration = \"20s\"", "duration = \"4s\""),
        ],
    );
    let (out, res) = run_file(&dir, &file);
    assert!(out.status.success(), "{}", text(&out));
    let rows = read_csv(&res.join("summary.csv"));
    assert_eq!(rows.len(), 2);
    for s in &rows {
        assert_eq!(num(s, "errors") + num(s, "non_2xx"), 0.0, "{s:?}");
        assert!(num(s, "requests") >= 0.8 * 20.0 * 4.0, "{s:?}");
        // About 10 ms of CPU per request at 20/s: about 0.2 CPU.
        assert!((0.1..=0.4).contains(&num(s, "cpu_share")), "{s:?}");
    }
    assert!(processes_with("cpu_server.py").is_empty());
}
