//! Tests of the summary: counting from the workload's time zero, empty cells for counters
//! the kernel did not report, groups' shares over their common window.

use super::*;
use crate::process::leaks::{LeakReport, LeakedProcess};
use crate::result::{GroupResult, Outcome, RunResult, WorkloadOutput};
use crate::sample::cpustat::Has;
use crate::sample::Sample;
use crate::scenario;
use fibtest::record::{Header, Mode, UnitKind, UnitLatency};

fn sample(t_ms: u64, usage_ms: u64, periods: u64, throttled: u64, thr_ms: u64) -> Sample {
    Sample {
        t_ns: t_ms * 1_000_000,
        usage_ns: usage_ms * 1_000_000,
        nr_periods: periods,
        nr_throttled: throttled,
        throttled_ns: thr_ms * 1_000_000,
        steal_ticks: t_ms / 100,
        ..Sample::default()
    }
}

fn result() -> RunResult {
    let plan = scenario::resolve(
        &scenario::parse(scenario::BUILTIN_DEFAULT, "built-in").unwrap(),
        "built-in",
        &"0-1".parse().unwrap(),
    )
    .unwrap();
    let unit = |due: f64, lat: f64| UnitLatency {
        kind: UnitKind::Request,
        thread: 0,
        index: 0,
        due_s: due,
        start_s: due,
        end_s: due + lat,
        latency_s: lat,
    };
    RunResult {
        planned: plan.runs[0].clone(),
        cgroup: "run-1-1-0".into(),
        without_cgroup: None,
        outcome: Outcome::Completed,
        wall_s: 2.3,
        t0_monotonic_ns: 1_000_000_000,
        limiter: Default::default(),
        leaks: Default::default(),
        teardown: None,
        groups: vec![GroupResult {
            name: "main".into(),
            exit_status: "exited with code 0".into(),
            counters: Has::ALL,
            // Start-up (sync: one throttled period) before the workload's time zero at
            // 300 ms, then two requests.
            samples: vec![
                sample(0, 0, 0, 0, 0),
                sample(200, 40, 2, 1, 60),
                sample(290, 42, 3, 1, 60),
                sample(1300, 242, 13, 5, 300),
                sample(2300, 442, 23, 9, 540),
            ],
            workload: WorkloadOutput {
                header: Some(Header {
                    version: 1,
                    mode: Mode::Requests,
                    pid: 1,
                    start_monotonic_ns: 1_300_000_000,
                    args: vec![],
                }),
                units: vec![unit(0.0, 0.44), unit(1.0, 0.38)],
                ..WorkloadOutput::default()
            },
        }],
    }
}

#[test]
fn counts_from_the_workloads_time_zero() {
    let r = result();
    assert_eq!(r.groups[0].window_start(r.t0_monotonic_ns), 2);
    let rows = summarize("default", &r, 100, false);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.group, "main");
    assert_eq!(row.target_share, Some(0.4));
    assert!((row.share_error.unwrap() - (0.4 / 2.01 - 0.4)).abs() < 1e-9);
    assert_eq!(row.group_share_pct, None);
    assert_eq!(row.leaked_stopped, 0);
    assert_eq!(row.nr_periods, Some(20));
    assert_eq!(row.nr_throttled, Some(8));
    assert!((row.throttled_s.unwrap() - 0.48).abs() < 1e-9);
    assert_eq!(row.nr_bursts, Some(0));
    assert!((row.wall_s - 2.01).abs() < 1e-9);
    assert!((row.cpu_usage_s - 0.4).abs() < 1e-9);
    assert!((row.cpu_share - 0.4 / 2.01).abs() < 1e-9);
    assert_eq!(row.throttled_pct, Some(40.0));
    assert_eq!(row.requests, Some(2));
    assert_eq!(row.throttled_per_request, Some(4.0));
    assert!((row.throttled_s_per_request.unwrap() - 0.24).abs() < 1e-9);
    assert_eq!(row.latency_p50_s, Some(0.38));
    assert_eq!(row.latency_max_s, Some(0.44));
    assert_eq!(row.slow_units, None);
    assert_eq!(row.quota_s, Some(0.04));
    assert_eq!(row.psi_some_s, None);
    assert!((row.steal_s - 0.21).abs() < 1e-9);
}

#[test]
fn without_a_header_counts_from_the_first_sample() {
    let mut r = result();
    r.groups[0].workload.header = None;
    assert_eq!(r.groups[0].window_start(r.t0_monotonic_ns), 0);
    let row = &summarize("default", &r, 100, true)[0];
    assert_eq!(row.nr_throttled, Some(9));
    assert_eq!(row.psi_some_s, Some(0.0));
}

#[test]
fn counters_the_kernel_did_not_report_are_empty_not_zero() {
    // A v2 cgroup without the cpu controller (or a kernel without
    // CONFIG_CFS_BANDWIDTH): cpu.stat has no nr_periods, so the samples hold zeros
    // that mean "not reported", not "never throttled".
    let mut r = result();
    for s in r.groups[0].samples.iter_mut() {
        s.nr_periods = 0;
        s.nr_throttled = 0;
        s.throttled_ns = 0;
    }
    r.groups[0].counters = Has {
        bandwidth: false,
        burst: false,
    };
    let row = summarize("default", &r, 100, false).remove(0);
    assert_eq!(row.nr_periods, None);
    assert_eq!(row.nr_throttled, None);
    assert_eq!(row.throttled_s, None);
    assert_eq!(row.throttled_pct, None);
    assert_eq!(row.throttled_per_request, None);
    assert_eq!(row.throttled_s_per_request, None);
    assert_eq!(row.nr_bursts, None);
    assert_eq!(row.burst_time_s, None);
    // Usage is still there, and the CSV cells are empty.
    assert!((row.cpu_usage_s - 0.4).abs() < 1e-9);
    let h = SummaryRow::header(&[]);
    let v = row.values();
    let cell = |name: &str| v[h.iter().position(|c| c == name).unwrap()].clone();
    assert_eq!(cell("nr_periods"), "");
    assert_eq!(cell("throttled_s"), "");
    assert_eq!(cell("nr_bursts"), "");

    // A kernel before burst (4.x): bandwidth counters yes, burst counters no.
    r.groups[0].counters = Has {
        bandwidth: true,
        burst: false,
    };
    let row = summarize("default", &r, 100, false).remove(0);
    assert_eq!(row.nr_periods, Some(0));
    assert_eq!(row.nr_bursts, None);
}

#[test]
fn header_and_values_line_up() {
    let row = summarize("default", &result(), 100, false).remove(0);
    let swept = vec!["limiter.quota".to_string()];
    let mut row2 = row.clone();
    row2.params = vec![("limiter.quota".into(), "40ms".into())];
    assert_eq!(SummaryRow::header(&swept).len(), row2.values().len());
    assert_eq!(SummaryRow::header(&[]).len(), row.values().len());
    assert_eq!(SummaryRow::header(&swept)[2], "param_limiter.quota");
    assert_eq!(SummaryRow::header(&swept)[3], "group");
}

#[test]
fn groups_get_a_row_each_with_their_share_of_the_total() {
    let mut r = result();
    let mut other = r.groups[0].clone();
    other.name = "b".into();
    // Three times the first group's usage.
    for s in other.samples.iter_mut() {
        s.usage_ns *= 3;
    }
    r.groups.push(other);
    let mut g2 = r.planned.groups[0].clone();
    g2.name = "b".into();
    r.planned.groups.push(g2);
    r.leaks = LeakReport {
        stopped: vec![LeakedProcess {
            pid: 1,
            state: "T".into(),
            name: "sed".into(),
            cmdline: "sed".into(),
        }],
        ..LeakReport::default()
    };
    let rows = summarize("w", &r, 100, false);
    assert_eq!(rows.len(), 2);
    assert!((rows[0].group_share_pct.unwrap() - 25.0).abs() < 1e-9);
    assert!((rows[1].group_share_pct.unwrap() - 75.0).abs() < 1e-9);
    assert!(rows.iter().all(|x| x.leaked_stopped == 1));
}

#[test]
fn group_shares_count_only_while_every_group_ran() {
    // Group b starts 1 s late: before that a had both CPUs (2 CPU-s per s). From 1 s
    // to 3 s they split 2:1 (a 4/3 per s, b 2/3 per s).
    let a: Vec<Sample> = (0..=3)
        .map(|k| {
            let t = k * 1000;
            let u = if k <= 1 {
                2 * t
            } else {
                2000 + (t - 1000) * 4 / 3
            };
            sample(t, u, 0, 0, 0)
        })
        .collect();
    let b: Vec<Sample> = (1..=3)
        .map(|k| sample(k * 1000, (k - 1) * 1000 * 2 / 3, 0, 0, 0))
        .collect();
    let s = common_window_shares(&[&a, &b], &[0, 0], &[None, None]).unwrap();
    assert!(
        (s[0] - 66.67).abs() < 0.1 && (s[1] - 33.33).abs() < 0.1,
        "{s:?}"
    );
    // Over each group's own window a would have had 4.67 of 6 CPU-s: 77.8%.
    // No common window: nothing to say.
    let late: Vec<Sample> = vec![sample(5000, 0, 0, 0, 0), sample(6000, 100, 0, 0, 0)];
    assert_eq!(
        common_window_shares(&[&a, &late], &[0, 0], &[None, None]),
        None
    );
    // b's workload ended at 2 s (its sampler kept going): only 1-2 s counts.
    let s = common_window_shares(&[&a, &b], &[0, 0], &[None, Some(2_000_000_000)]).unwrap();
    assert!((s[0] - 66.67).abs() < 0.1, "{s:?}");
}

#[test]
fn every_column_has_a_value_and_a_line_in_the_docs() {
    // The first cell of each table row in docs/metrics.md names the columns it explains.
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
        .expect("docs/metrics.md");
    let documented: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix('|')?.split('|').next())
        .flat_map(|cell| cell.split('`').skip(1).step_by(2))
        .collect();
    let missing: Vec<&&str> = COLUMNS.iter().filter(|c| !documented.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "columns without a line in docs/metrics.md: {missing:?}"
    );
    // A value for every column, in order.
    let row = summarize("default", &result(), 100, false).remove(0);
    assert_eq!(row.values().len(), COLUMNS.len());
    assert_eq!(SummaryRow::header(&[]), COLUMNS);
}
