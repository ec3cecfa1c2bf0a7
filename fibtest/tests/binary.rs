//! The fibtest binary end to end: records parse and come in order, counts add up, the
//! Fibtest form prints what Fibtest prints, errors name the CPU. No test asserts a time.

use fibtest::record::{Record, Role, ThreadReport, UnitKind, UnitLatency};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::process::{Command, Output, Stdio};

fn fibtest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fibtest"))
        .args(args)
        .output()
        .unwrap()
}

/// fibtest run with its CPU affinity set to `cpu` alone (as `taskset -c cpu` would).
fn fibtest_on_cpu(cpu: usize, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fibtest"));
    cmd.args(args);
    // The child inherits the affinity of the thread that starts it: pin this test's
    // thread for the start, then give it back what it had.
    let this = Pid::from_raw(0);
    let before = sched_getaffinity(this).unwrap();
    let mut set = CpuSet::new();
    set.set(cpu).unwrap();
    sched_setaffinity(this, &set).unwrap();
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    sched_setaffinity(this, &before).unwrap();
    child.unwrap().wait_with_output().unwrap()
}

/// The records on stdout of a run that must have succeeded, checked for order: one header
/// first, one end last, nothing else of either kind.
fn records(out: &Output) -> Vec<Record> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Vec<Record> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(matches!(r.first(), Some(Record::Header(_))), "{r:?}");
    assert!(matches!(r.last(), Some(Record::End(_))), "{r:?}");
    let headers = r.iter().filter(|x| matches!(x, Record::Header(_))).count();
    let ends = r.iter().filter(|x| matches!(x, Record::End(_))).count();
    assert_eq!((headers, ends), (1, 1));
    r
}

fn threads(r: &[Record]) -> Vec<&ThreadReport> {
    r.iter()
        .filter_map(|x| match x {
            Record::Thread(t) => Some(t),
            _ => None,
        })
        .collect()
}

fn units(r: &[Record]) -> Vec<&UnitLatency> {
    r.iter()
        .filter_map(|x| match x {
            Record::Unit(u) => Some(u),
            _ => None,
        })
        .collect()
}

#[test]
fn requests_run_writes_header_units_and_end() {
    let out = fibtest(&[
        "requests",
        "--work",
        "5ms",
        "--count",
        "3",
        "--interval",
        "0ms",
    ]);
    let r = records(&out);
    assert_eq!(r.len(), 1 + 1 + 3 + 1);
    let t = threads(&r);
    assert_eq!(
        (t[0].role, t[0].units, t[0].units_dropped),
        (Role::Request, 3, 0)
    );
    let u = units(&r);
    assert!(u.iter().all(|u| u.kind == UnitKind::Request));
    let index: Vec<u64> = u.iter().map(|u| u.index).collect();
    assert_eq!(index, vec![0, 1, 2]);
    // All three were due at time zero and served one after another: each waited for the
    // ones before it, so latencies grow and each holds at least its 5 ms of CPU work.
    assert!(u.iter().all(|u| u.due_s == 0.0 && u.latency_s >= 0.005));
    assert!(u[0].end_s <= u[1].start_s && u[1].end_s <= u[2].start_s);
    assert!(u[0].latency_s < u[1].latency_s && u[1].latency_s < u[2].latency_s);
    assert!(u.iter().all(|u| u.latency_s == u.end_s - u.due_s));
    assert!(t[0].cpu_s >= 0.015);
}

#[test]
fn fib_run_reports_fast_and_slow_threads() {
    let out = fibtest(&[
        "fib",
        "--fast",
        "1",
        "--slow",
        "2",
        "--fast-cpus",
        "0",
        "--slow-cpus",
        "0",
        "--duration",
        "0.3s",
    ]);
    let r = records(&out);
    let t = threads(&r);
    assert_eq!(t.len(), 3);
    let roles: Vec<(Role, u32, Option<u32>)> = t.iter().map(|t| (t.role, t.index, t.cpu)).collect();
    assert_eq!(
        roles,
        vec![
            (Role::Fast, 0, Some(0)),
            (Role::Slow, 0, Some(0)),
            (Role::Slow, 1, Some(0)),
        ]
    );
    assert!(t[0].steps > 0 && t[0].units == 0);
    // Absolute schedule: every unit due before the deadline (0, 10, ..., 290 ms) is done,
    // however late, so each slow thread has exactly 30.
    let all_units = units(&r);
    for slow in &t[1..] {
        assert_eq!((slow.units, slow.units_dropped, slow.steps), (30, 0, 3000));
        let mine: Vec<&&UnitLatency> = all_units
            .iter()
            .filter(|u| u.kind == UnitKind::Slow && u.thread == slow.index)
            .collect();
        assert_eq!(mine.len(), 30);
        let due_ms: Vec<u64> = mine
            .iter()
            .map(|u| (u.due_s * 1e3).round() as u64)
            .collect();
        assert_eq!(due_ms, (0..30).map(|k| k * 10).collect::<Vec<_>>());
        assert!(mine
            .iter()
            .all(|u| u.start_s >= u.due_s && u.end_s >= u.start_s));
    }
    match r.last() {
        Some(Record::End(e)) => assert_eq!(e.fast_steps, t[0].steps),
        other => panic!("last record {other:?}"),
    }
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("fast: 1 thread(s)"), "{summary}");
    assert!(
        summary.contains("slow: 2 thread(s)") && summary.contains("60 units"),
        "{summary}"
    );
}

#[test]
fn duty_run_reports_each_on_period_with_slices() {
    let out = fibtest(&[
        "duty",
        "--on",
        "50ms",
        "--off",
        "50ms",
        "--duration",
        "200ms",
        "--slice",
        "10ms",
    ]);
    let r = records(&out);
    let duty: Vec<_> = r
        .iter()
        .filter_map(|x| match x {
            Record::Duty(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(duty.len(), 2);
    for (k, d) in duty.iter().enumerate() {
        assert_eq!(d.period, k as u64);
        assert_eq!(d.slice_steps.len(), 5);
        assert_eq!(d.slice_steps.iter().sum::<u64>(), d.steps);
        assert_eq!(d.slice_s, 0.01);
    }
    assert_eq!(duty[1].start_s, 0.1);
    assert_eq!(threads(&r)[0].units, 2);
}

#[test]
fn csv_format_has_a_header_row_and_a_row_per_record() {
    let out = fibtest(&[
        "requests",
        "--work",
        "1ms",
        "--count",
        "2",
        "--interval",
        "0ms",
        "--format",
        "csv",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], fibtest::export::CSV_COLUMNS.join(","));
    let types: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r.split(',').next().unwrap())
        .collect();
    assert_eq!(types, vec!["header", "thread", "unit", "unit", "end"]);
}

#[test]
fn fibtest_form_prints_what_fibtest_prints() {
    let out = fibtest_on_cpu(0, &["-v", "-f", "1", "-t", "1", "-s", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    // printf("fib[%lu] = %lu \n", ...) then printf("Iterations Completed(M): %lu \n", ...)
    let steps: u64 = lines[0]
        .strip_prefix("fib[")
        .and_then(|s| s.split_once("] = "))
        .map(|(n, rest)| {
            assert!(
                rest.ends_with(' ') && rest.trim().parse::<u64>().is_ok(),
                "{rest}"
            );
            n.parse().unwrap()
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(steps % 1_000_000, 0);
    assert_eq!(
        lines[1],
        format!("Iterations Completed(M): {} ", steps / 1_000_000)
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn fibtest_form_writes_records_only_when_asked() {
    let out = fibtest_on_cpu(0, &["-f", "1", "-t", "1", "-s", "1", "--format", "jsonl"]);
    let r = records(&out);
    let t = threads(&r);
    assert_eq!((t.len(), t[0].role, t[0].cpu), (1, Role::Fast, Some(0)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("Iterations Completed(M): "), "{stderr}");
}

#[test]
fn cpu_outside_the_allowed_set_is_an_error_naming_it() {
    // Allowed: CPU 0 alone; CPU 1 is asked for.
    let out = fibtest_on_cpu(0, &["fib", "--slow-cpus", "1", "--duration", "0.1s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CPU 1 (for a slow thread)") && err.contains("allowed CPUs are 0"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let out = fibtest(&[
        "requests", "--work", "1ms", "--count", "1", "--cpus", "1000",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CPU 1000"));
}

#[test]
fn bad_flags_are_usage_errors() {
    let out = fibtest(&["requests", "--work", "200"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a duration"));
    let out = fibtest(&["fib", "--fast-cpus", "3-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("runs backwards"));
    let out = fibtest(&["-x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid option -x"));
}

#[test]
fn sigterm_still_writes_what_was_measured() {
    let child = Command::new(env!("CARGO_BIN_EXE_fibtest"))
        .args([
            "duty",
            "--on",
            "20ms",
            "--off",
            "20ms",
            "--duration",
            "60s",
            "--slice",
            "10ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // The handlers are installed before the workload thread exists, so wait for the
    // process to have a second task (polling that condition, not waiting a set time).
    let tasks = format!("/proc/{pid}/task");
    let start = std::time::Instant::now();
    while std::fs::read_dir(&tasks).map(|d| d.count()).unwrap_or(0) < 2 {
        assert!(
            start.elapsed().as_secs() < 20,
            "fibtest did not start its thread"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // Our own child.
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let r = records(&out);
    // Stopped long before its 60 s, with what it had measured (maybe nothing yet).
    let t = threads(&r);
    assert_eq!(t.len(), 1);
    assert!(t[0].wall_s < 30.0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped early by a signal"));
}
