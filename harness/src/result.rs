//! Raw data of one run, as the runner hands it to the report writers: the plan entry,
//! how the run ended, the sampler's timing, and each group's workload records. The
//! samples themselves and every unit's latency went to their files while the run ran
//! (`runner::RunSink`); what is here is bounded whatever the run's length. Nothing here
//! is computed; `report::summary` derives the figures.

use crate::limiter::LimiterReport;
use crate::load::LoadReport;
use crate::probe::ProbeOutput;
use crate::process::exits::DeathReport;
use crate::process::leaks::LeakReport;
use crate::process::teardown::StopReport;
use crate::sample::cpustat::Has;
use crate::sample::SystemHas;
use crate::scenario::plan::GroupLimit;
use crate::scenario::PlannedRun;
use fibtest::record::{DutyPeriod, End, Header, Record, ThreadReport, UnitKind, UnitLatency};
use hdrhistogram::Histogram;
use serde::Serialize;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The workload exited 0.
    Completed,
    /// The workload exited non-zero or was killed by a signal it did not expect.
    Failed { status: String, stderr_tail: String },
    /// The user interrupted the run (Ctrl-C, SIGTERM); results are partial.
    Interrupted,
    /// The workload ran far past its expected length and was stopped.
    TimedOut { limit_s: f64 },
    /// The limiter's CPU-time budget was spent and the limiter ended the workload (what
    /// the limiter is for: not a failure of the run).
    Budget,
    /// A signal limiter with until_stuck left a process stopped; the run ended there.
    Stuck,
    /// An external limiter command failed as it started (exited with a failure within a
    /// second): nothing was limited, so the run measured nothing it meant to.
    LimiterFailed { status: String, stderr_tail: String },
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed { .. } => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::TimedOut { .. } => "timed_out",
            Outcome::Budget => "budget",
            Outcome::Stuck => "stuck",
            Outcome::LimiterFailed { .. } => "limiter_failed",
        }
    }
}

/// Units' latencies, counted into a histogram of bounded size (3 significant digits:
/// a percentile from it is within 0.1% of the unit's real latency, which latency.csv
/// holds exactly). The histogram spans 1 ns to a day, about 300 kB, so it is made with
/// the first unit: a workload without units (a duty cycle, most of 500 groups) has none.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UnitStats {
    pub requests: u64,
    pub slow: u64,
    /// The largest latency, exactly, in s.
    pub max_s: Option<f64>,
    #[serde(skip)]
    pub latency_ns: Option<Histogram<u64>>,
}

/// The longest latency the histogram tells apart (longer ones count as this), in ns.
const LATENCY_MAX_NS: u64 = 24 * 3600 * 1_000_000_000;

impl UnitStats {
    fn add(&mut self, u: &UnitLatency) {
        match u.kind {
            UnitKind::Request => self.requests += 1,
            UnitKind::Slow => self.slow += 1,
        }
        self.max_s = Some(self.max_s.map_or(u.latency_s, |m| m.max(u.latency_s)));
        let ns = (u.latency_s.max(0.0) * 1e9) as u64;
        self.latency_ns
            .get_or_insert_with(|| {
                Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3).expect("valid histogram bounds")
            })
            .saturating_record(ns.clamp(1, LATENCY_MAX_NS));
    }

    /// The p-th percentile (0 < p <= 100) of the units' latencies, in s, by nearest
    /// rank over the histogram's buckets, never above the largest latency seen.
    pub fn percentile_s(&self, p: f64) -> Option<f64> {
        let h = self.latency_ns.as_ref().filter(|h| !h.is_empty())?;
        if !(p > 0.0 && p <= 100.0) {
            return None;
        }
        let v = h.value_at_quantile(p / 100.0) as f64 / 1e9;
        Some(self.max_s.map_or(v, |m| v.min(m)))
    }
}

/// What one line of a workload's stdout was.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A unit of work, for latency.csv.
    Unit(UnitLatency),
    /// A duty on-period, for duty.csv.
    Duty(DutyPeriod),
    /// Another record (or a probe's report), kept in the output.
    Record,
    /// Not a record: the workload's own text.
    Text,
}

/// The workload's records, read line by line as they arrive (`push_line`): the few a
/// summary needs are kept, every unit is counted into `units`, and units and duty
/// on-periods are handed on to be written to latency.csv and duty.csv.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkloadOutput {
    pub header: Option<Header>,
    pub threads: Vec<ThreadReport>,
    /// The first on-period of each thread (by thread index; null for a thread that
    /// reported none); every one is in duty.csv.
    pub duty_first: Vec<Option<DutyPeriod>>,
    /// The last on-period of each thread (by thread index).
    pub duty_last: Vec<Option<DutyPeriod>>,
    /// How many on-periods the threads reported in all.
    pub duty_periods: u64,
    pub end: Option<End>,
    pub units: UnitStats,
    /// What a probe workload (steal, entropy) reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeOutput>,
    /// Lines that were not records: how many, and the first few (for diagnosis; all of
    /// them are in the result folder's workload output files).
    pub unparsed_lines: u64,
    pub unparsed: Vec<String>,
    /// The last lines the workload wrote on stderr.
    pub stderr_tail: String,
}

impl WorkloadOutput {
    /// Take one line of the workload's stdout (fibtest's JSON lines, a probe's report,
    /// or anything else) and say what it was: a unit or an on-period for the caller to
    /// write, another record, or text.
    pub fn push_line(&mut self, line: &str) -> Line {
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            return Line::Record;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(Record::Header(h)) => self.header = Some(h),
            Ok(Record::Thread(t)) => self.threads.push(t),
            Ok(Record::Unit(u)) => {
                self.units.add(&u);
                return Line::Unit(u);
            }
            Ok(Record::Duty(d)) => {
                let i = d.thread as usize;
                if self.duty_last.len() <= i {
                    self.duty_first.resize(i + 1, None);
                    self.duty_last.resize(i + 1, None);
                }
                self.duty_first[i].get_or_insert_with(|| d.clone());
                self.duty_last[i] = Some(d.clone());
                self.duty_periods += 1;
                return Line::Duty(d);
            }
            Ok(Record::End(e)) => self.end = Some(e),
            Err(_) if line.starts_with("{\"type\":\"") && line.contains("_probe\"") => {
                match serde_json::from_str::<ProbeOutput>(line) {
                    Ok(p) => self.probe = Some(p),
                    Err(e) => self.not_a_record(&format!("probe report: {e}")),
                }
            }
            Err(_) => {
                self.not_a_record(line);
                return Line::Text;
            }
        }
        Line::Record
    }

    fn not_a_record(&mut self, line: &str) {
        self.unparsed_lines += 1;
        if self.unparsed.len() < 5 {
            self.unparsed.push(line.chars().take(200).collect());
        }
    }

    /// Parse a whole text at once (tests, and short outputs).
    pub fn parse(text: &str) -> WorkloadOutput {
        let mut out = WorkloadOutput::default();
        for line in text.lines() {
            out.push_line(line);
        }
        out
    }

    /// The first and the last on-period of thread 0, when it had two or more.
    pub fn duty_first_last(&self) -> Option<(&DutyPeriod, &DutyPeriod)> {
        let first = self.duty_first.first()?.as_ref()?;
        let last = self.duty_last.first()?.as_ref()?;
        (last.period > first.period).then_some((first, last))
    }
}

/// How the sampler kept its schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TickStats {
    /// The sampling interval, in s.
    pub interval_s: f64,
    /// Ticks taken, the first and last included.
    pub ticks: u64,
    /// Ticks taken more than half an interval after they were due.
    pub late: u64,
    /// Ticks skipped because the sampler fell more than an interval behind.
    pub missed: u64,
    /// The time one tick's reads and writes took: the mean and the largest, in s.
    pub busy_mean_s: f64,
    pub busy_max_s: f64,
}

impl TickStats {
    /// An interval the sampler can keep with this run's groups: three times the mean
    /// time a tick took, rounded up to 1, 2 or 5 times a power of ten, in s.
    pub fn interval_it_can_keep_s(&self) -> f64 {
        let want = (self.busy_mean_s * 3.0).max(1e-3);
        let mut step = 1e-3;
        loop {
            for m in [1.0, 2.0, 5.0] {
                if step * m >= want {
                    return step * m;
                }
            }
            step *= 10.0;
        }
    }
}

/// Everything one run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub planned: PlannedRun,
    /// Name of the run's cgroup folder ("" when it ran without one).
    pub cgroup: String,
    /// Why the run had no cgroup (an unprivileged user), when it had none: its CPU time
    /// then comes from /proc/<pid>/stat and the cgroup counters are missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_cgroup: Option<String>,
    pub outcome: Outcome,
    /// Wall time from the first sample to the last, in s.
    pub wall_s: f64,
    /// CLOCK_MONOTONIC of the run's time zero (the first sample, taken once every
    /// group's workload had started), in ns; sample times are relative to it.
    pub t0_monotonic_ns: u64,
    /// How the sampler kept its schedule.
    pub ticks: TickStats,
    /// Which system-wide counters (PSI) the kernel reported.
    pub system: SystemHas,
    /// Each group's workload output ("main" alone without groups).
    pub groups: Vec<GroupResult>,
    /// What the limiter did (duty cycles, external command).
    pub limiter: LimiterReport,
    /// Processes left stopped or alive, cgroups left behind.
    pub leaks: LeakReport,
    /// How the harness ended workload processes that were still running (stop all,
    /// SIGTERM all, continue all), if any were.
    pub teardown: Option<StopReport>,
    /// The run's cgroup's CPU usage from its creation to after its last process ended,
    /// in s (the truth a budget is measured against); None without a cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_cpu_s: Option<f64>,
    /// How the workloads' processes died, from the kernel's process events; None when
    /// they could not be watched (not root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deaths: Option<DeathReport>,
    /// What the run's `[load]` did, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadResult>,
    /// The run's `[[change]]`s, as they were made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<AppliedChange>,
}

/// A `[[change]]` as it was made.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedChange {
    /// When it was planned, and when its settings were written, in s since the run's
    /// first sample.
    pub at_s: f64,
    pub applied_s: f64,
    /// The group it changed ("" for the run's own cgroup).
    pub group: String,
    pub limit: GroupLimit,
    /// Why writing it failed, if it did (the run went on with the settings before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a run's `[load]` did.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    /// The group whose service was loaded.
    pub group: String,
    /// The loopback port the harness picked and gave the service (None: the target
    /// names its own).
    pub port: Option<u16>,
    /// The load's time zero, in s since the run's first sample: its requests' times in
    /// latency.csv count from it.
    pub zero_s: Option<f64>,
    /// What the generator measured (None when it could not run).
    pub report: Option<LoadReport>,
    /// Why the load could not run, or was cut short.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One group of a run.
#[derive(Debug, Clone, Serialize)]
pub struct GroupResult {
    pub name: String,
    /// Which counters the group's cgroup's cpu.stat reported: those it did not are left
    /// empty in the summary and time series.
    pub counters: Has,
    pub workload: WorkloadOutput,
    /// How the group's main workload process ended: "exited with code 0", "was killed by
    /// signal 11", ... (a workload the harness stopped ends by its SIGTERM).
    pub exit_status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(lat: f64, kind: UnitKind) -> String {
        format!(
            r#"{{"type":"unit","kind":"{}","thread":0,"index":0,"due_s":0.0,"start_s":0.0,"end_s":{lat},"latency_s":{lat}}}"#,
            if kind == UnitKind::Request {
                "request"
            } else {
                "slow"
            }
        )
    }

    #[test]
    fn lines_are_records_units_or_text() {
        let mut w = WorkloadOutput::default();
        let u = w.push_line(&unit(0.44, UnitKind::Request));
        assert!(matches!(&u, Line::Unit(x) if x.latency_s == 0.44), "{u:?}");
        assert_eq!(w.push_line("hello\n"), Line::Text);
        assert_eq!(
            w.push_line(r#"{"type":"end","wall_s":1,"cpu_s":1,"fast_steps":0}"#),
            Line::Record
        );
        assert_eq!(w.unparsed, ["hello"]);
        assert_eq!(w.units.requests, 1);
    }

    #[test]
    fn the_histogram_is_made_by_the_first_unit_only() {
        let mut w = WorkloadOutput::default();
        w.push_line(&duty_line(0, 0));
        assert!(w.units.latency_ns.is_none(), "a duty workload has no units");
        assert_eq!(w.units.percentile_s(50.0), None);
        w.push_line(&unit(0.25, UnitKind::Slow));
        assert_eq!(w.units.latency_ns.as_ref().map(|h| h.len()), Some(1));
        assert_eq!(w.units.percentile_s(50.0), Some(0.25));
    }

    #[test]
    fn percentiles_come_within_the_histograms_resolution_and_never_exceed_the_max() {
        let mut w = WorkloadOutput::default();
        for i in 1..=1000 {
            w.push_line(&unit(i as f64 * 1e-3, UnitKind::Slow));
        }
        assert_eq!(w.units.slow, 1000);
        let p50 = w.units.percentile_s(50.0).unwrap();
        let p99 = w.units.percentile_s(99.0).unwrap();
        assert!((p50 - 0.5).abs() <= 0.5 * 1e-3, "{p50}");
        assert!((p99 - 0.99).abs() <= 0.99 * 1e-3, "{p99}");
        assert_eq!(w.units.percentile_s(100.0), Some(1.0));
        assert_eq!(w.units.max_s, Some(1.0));
        assert_eq!(UnitStats::default().percentile_s(50.0), None);
    }

    fn duty_line(thread: u32, period: u64) -> String {
        format!(
            r#"{{"type":"duty","thread":{thread},"period":{period},"start_s":0,"on_s":1,"cpu_s":1,"steps":1,"steps_per_s":{},"slice_steps":[],"slice_s":0.1}}"#,
            period + 1
        )
    }

    #[test]
    fn every_duty_period_is_handed_on_and_only_each_threads_first_and_last_kept() {
        let mut w = WorkloadOutput::default();
        // Thread 1 reports before thread 0 does; thread 2 never reports.
        for p in 0..3 {
            let line = w.push_line(&duty_line(1, p));
            assert!(matches!(line, Line::Duty(d) if d.thread == 1 && d.period == p));
        }
        for p in 0..10_000 {
            w.push_line(&duty_line(0, p));
        }
        w.push_line(&duty_line(3, 0));
        assert_eq!(w.duty_periods, 10_004);
        let period = |d: &Option<DutyPeriod>| d.as_ref().map(|d| (d.thread, d.period));
        let firsts: Vec<_> = w.duty_first.iter().map(period).collect();
        let lasts: Vec<_> = w.duty_last.iter().map(period).collect();
        assert_eq!(firsts, [Some((0, 0)), Some((1, 0)), None, Some((3, 0))]);
        assert_eq!(lasts, [Some((0, 9_999)), Some((1, 2)), None, Some((3, 0))]);
        let (first, last) = w.duty_first_last().unwrap();
        assert_eq!((first.period, last.period), (0, 9_999));
        assert_eq!(last.steps_per_s, 10_000.0);
    }

    #[test]
    fn an_interval_the_sampler_can_keep() {
        let t = |busy: f64| TickStats {
            busy_mean_s: busy,
            ..TickStats::default()
        };
        assert_eq!(t(0.0001).interval_it_can_keep_s(), 0.001);
        assert_eq!(t(0.0009).interval_it_can_keep_s(), 0.005);
        assert_eq!(t(0.004).interval_it_can_keep_s(), 0.02);
    }
}
