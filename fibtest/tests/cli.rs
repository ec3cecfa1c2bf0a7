//! The fibtest binary end to end: records parse, counts add up, errors name the CPU.

use fibtest::record::{Record, Role, UnitKind};
use std::process::Command;

fn fibtest(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fibtest"))
        .args(args)
        .output()
        .unwrap()
}

fn records(out: &std::process::Output) -> Vec<Record> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
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
    assert!(matches!(r.first(), Some(Record::Header(_))));
    assert!(matches!(r.last(), Some(Record::End(_))));
    let units: Vec<_> = r
        .iter()
        .filter_map(|x| match x {
            Record::Unit(u) => Some(u),
            _ => None,
        })
        .collect();
    assert_eq!(units.len(), 3);
    assert!(units.iter().all(|u| u.kind == UnitKind::Request));
    // All three were due at time zero and served one after another: each waited for the
    // ones before it, so latencies grow and each is at least its 5 ms of work.
    assert!(units.iter().all(|u| u.due_s == 0.0 && u.latency_s >= 0.005));
    assert!(units[0].latency_s < units[1].latency_s && units[1].latency_s < units[2].latency_s);
    assert!(units
        .iter()
        .all(|u| (u.end_s - u.due_s - u.latency_s).abs() < 1e-9));
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
        "300ms",
    ]);
    let r = records(&out);
    let threads: Vec<_> = r
        .iter()
        .filter_map(|x| match x {
            Record::Thread(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(threads.len(), 3);
    assert_eq!(threads.iter().filter(|t| t.role == Role::Fast).count(), 1);
    let fast = threads.iter().find(|t| t.role == Role::Fast).unwrap();
    assert!(fast.steps > 0 && fast.cpu == Some(0));
    let slow_units = r
        .iter()
        .filter(|x| matches!(x, Record::Unit(u) if u.kind == UnitKind::Slow))
        .count() as u64;
    let counted: u64 = threads
        .iter()
        .filter(|t| t.role == Role::Slow)
        .map(|t| t.units)
        .sum();
    assert!(slow_units > 0);
    assert_eq!(slow_units, counted);
    match r.last() {
        Some(Record::End(e)) => assert_eq!(e.fast_steps, fast.steps),
        other => panic!("last record {other:?}"),
    }
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
    for d in &duty {
        assert_eq!(d.slice_steps.len(), 5);
        assert_eq!(d.slice_steps.iter().sum::<u64>(), d.steps);
    }
    assert!(duty[1].start_s >= 0.1);
}

#[test]
fn legacy_form_prints_iterations_completed() {
    let out = fibtest(&["-f", "1", "-t", "1", "-s", "1"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap();
    assert!(line.starts_with("Iterations Completed(M): "), "{text}");
    let n: u64 = line["Iterations Completed(M): ".len()..]
        .trim()
        .parse()
        .unwrap();
    assert!(n > 0);
}

#[test]
fn cpu_outside_the_allowed_set_is_an_error_naming_it() {
    let out = fibtest(&[
        "requests", "--work", "1ms", "--count", "1", "--cpus", "1000",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CPU 1000") && err.contains("allowed"), "{err}");
}

#[test]
fn bad_duration_is_a_usage_error() {
    let out = fibtest(&["requests", "--work", "200"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a duration"));
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
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // Wait until the workload has started its threads (its task count grows), not a time.
    let tasks = format!("/proc/{pid}/task");
    let start = std::time::Instant::now();
    while std::fs::read_dir(&tasks).map(|d| d.count()).unwrap_or(0) < 2 {
        assert!(
            start.elapsed().as_secs() < 20,
            "fibtest did not start its thread"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let r = records(&out);
    assert!(matches!(r.last(), Some(Record::End(e)) if e.wall_s < 30.0));
}
