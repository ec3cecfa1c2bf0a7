//! Tests of the summary: counting from the workload's time zero, empty cells for counters
//! the kernel did not report, groups' shares over their common window.

use super::window::scan;
use super::*;
use crate::process::leaks::{LeakReport, LeakedProcess};
use crate::report::files::timeseries;
use crate::result::{GroupResult, Outcome, RunResult, WorkloadOutput};
use crate::sample::cpustat::Has;
use crate::sample::{Delta, Sample, SystemHas};
use crate::scenario;
use fibtest::record::{Header, Mode, UnitKind, UnitLatency};

/// A run's result and its samples (one series per group, at the same instants).
struct Measured {
    r: RunResult,
    samples: Vec<Vec<Sample>>,
}

impl Measured {
    /// Summarize as a run does: the samples written as timeseries.csv rows, read back.
    fn summarize(&self) -> Vec<SummaryRow> {
        let mut text = timeseries::header().into_bytes();
        let n = self.samples[0].len();
        for k in 1..n {
            for (g, series) in self.samples.iter().enumerate() {
                let d = Delta::between(&series[k - 1], &series[k], 100);
                timeseries::write_row(
                    &mut text,
                    self.r.planned.index,
                    &self.r.groups[g].name,
                    series[k].t_ns as f64 / 1e9,
                    &d,
                    self.r.groups[g].counters,
                    self.r.system,
                    None,
                )
                .unwrap();
            }
        }
        let mut head = csv::Reader::from_reader(text.as_slice());
        let header = head.byte_headers().unwrap().clone();
        let body = &text[timeseries::header().len()..];
        let specs = group_specs(&self.r);
        let (windows, shares) = scan(&header, body, self.r.planned.index, &specs).unwrap();
        summarize("default", &self.r, &windows, shares, &[])
    }
}

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

fn result() -> Measured {
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
    let mut workload = WorkloadOutput {
        header: Some(Header {
            version: 1,
            mode: Mode::Requests,
            pid: 1,
            start_monotonic_ns: 1_300_000_000,
            args: vec![],
        }),
        ..WorkloadOutput::default()
    };
    for u in [unit(0.0, 0.44), unit(1.0, 0.38)] {
        workload.push_line(&serde_json::to_string(&fibtest::record::Record::Unit(u)).unwrap());
    }
    Measured {
        r: RunResult {
            planned: plan.runs[0].clone(),
            cgroup: "run-1-1-0".into(),
            without_cgroup: None,
            outcome: Outcome::Completed,
            wall_s: 2.3,
            t0_monotonic_ns: 1_000_000_000,
            ticks: Default::default(),
            system: SystemHas::default(),
            limiter: Default::default(),
            leaks: Default::default(),
            teardown: None,
            load: None,
            changes: Vec::new(),
            groups: vec![GroupResult {
                name: "main".into(),
                exit_status: "exited with code 0".into(),
                counters: Has::ALL,
                workload,
            }],
        },
        // Start-up (sync: one throttled period) before the workload's time zero at
        // 300 ms, then two requests.
        samples: vec![vec![
            sample(0, 0, 0, 0, 0),
            sample(200, 40, 2, 1, 60),
            sample(290, 42, 3, 1, 60),
            sample(1300, 242, 13, 5, 300),
            sample(2300, 442, 23, 9, 540),
        ]],
    }
}

#[test]
fn counts_from_the_workloads_time_zero() {
    let rows = result().summarize();
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
    // Percentiles within the histogram's 0.1%; the maximum exact.
    assert!(
        (row.latency_p50_s.unwrap() - 0.38).abs() < 0.38e-3,
        "{row:?}"
    );
    assert_eq!(row.latency_max_s, Some(0.44));
    assert_eq!(row.slow_units, None);
    assert_eq!(row.quota_s, Some(0.04));
    assert_eq!(row.psi_some_s, None);
    assert!((row.steal_s - 0.21).abs() < 1e-9);
}

#[test]
fn without_a_header_counts_from_the_first_sample() {
    let mut m = result();
    m.r.groups[0].workload.header = None;
    m.r.system.psi = true;
    let row = &m.summarize()[0];
    assert_eq!(row.nr_throttled, Some(9));
    assert_eq!(row.psi_some_s, Some(0.0));
}

#[test]
fn counters_the_kernel_did_not_report_are_empty_not_zero() {
    // A v2 cgroup without the cpu controller (or a kernel without
    // CONFIG_CFS_BANDWIDTH): cpu.stat has no nr_periods, so the samples hold zeros
    // that mean "not reported", not "never throttled".
    let mut m = result();
    for s in m.samples[0].iter_mut() {
        s.nr_periods = 0;
        s.nr_throttled = 0;
        s.throttled_ns = 0;
    }
    m.r.groups[0].counters = Has {
        bandwidth: false,
        burst: false,
    };
    let row = m.summarize().remove(0);
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
    m.r.groups[0].counters = Has {
        bandwidth: true,
        burst: false,
    };
    let row = m.summarize().remove(0);
    assert_eq!(row.nr_periods, Some(0));
    assert_eq!(row.nr_bursts, None);
}

#[test]
fn header_and_values_line_up() {
    let row = result().summarize().remove(0);
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
    let mut m = result();
    let mut other = m.r.groups[0].clone();
    other.name = "b".into();
    // Three times the first group's usage.
    let mut b = m.samples[0].clone();
    for s in b.iter_mut() {
        s.usage_ns *= 3;
    }
    m.r.groups.push(other);
    m.samples.push(b);
    let mut g2 = m.r.planned.groups[0].clone();
    g2.name = "b".into();
    m.r.planned.groups.push(g2);
    m.r.leaks = LeakReport {
        stopped: vec![LeakedProcess {
            pid: 1,
            state: "T".into(),
            name: "sed".into(),
            cmdline: "sed".into(),
        }],
        ..LeakReport::default()
    };
    let rows = m.summarize();
    assert_eq!(rows.len(), 2);
    assert!((rows[0].group_share_pct.unwrap() - 25.0).abs() < 1e-9);
    assert!((rows[1].group_share_pct.unwrap() - 75.0).abs() < 1e-9);
    assert!(rows.iter().all(|x| x.leaked_stopped == 1));
}

/// Two groups sampled every second to 3 s: `a` has both CPUs until `b`'s workload starts
/// at 1 s, then they split 2:1 (a 4/3 per s, b 2/3 per s).
fn late_starter(b_zero_s: f64, b_end_s: Option<f64>) -> Option<Vec<f64>> {
    let mut m = result();
    m.r.groups[0].workload.header = None;
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
    let b: Vec<Sample> = (0..=3)
        .map(|k| sample(k * 1000, k.saturating_sub(1) * 1000 * 2 / 3, 0, 0, 0))
        .collect();
    let mut other = m.r.groups[0].clone();
    other.name = "b".into();
    let start = m.r.t0_monotonic_ns + (b_zero_s * 1e9) as u64;
    other.workload.header = Some(Header {
        version: 1,
        mode: Mode::Requests,
        pid: 2,
        start_monotonic_ns: start,
        args: vec![],
    });
    other.workload.end = b_end_s.map(|e| fibtest::record::End {
        wall_s: e - b_zero_s,
        cpu_s: 0.0,
        fast_steps: 0,
    });
    m.r.groups.push(other);
    let mut g2 = m.r.planned.groups[0].clone();
    g2.name = "b".into();
    m.r.planned.groups.push(g2);
    m.samples = vec![a, b];
    m.summarize()
        .into_iter()
        .map(|r| r.group_share_pct)
        .collect()
}

#[test]
fn group_shares_count_only_while_every_group_ran() {
    let s = late_starter(1.0, None).unwrap();
    assert!(
        (s[0] - 66.67).abs() < 0.1 && (s[1] - 33.33).abs() < 0.1,
        "{s:?}"
    );
    // Over each group's own window a would have had 4.67 of 6 CPU-s: 77.8%.
    // No common window (b's workload starts after the last sample): nothing to say.
    assert_eq!(late_starter(5.0, None), None);
    // b's workload ended at 2 s (the sampler kept going): only 1-2 s counts.
    let s = late_starter(1.0, Some(2.0)).unwrap();
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
    let row = result().summarize().remove(0);
    assert_eq!(row.values().len(), COLUMNS.len());
    assert_eq!(SummaryRow::header(&[]), COLUMNS);
}
