//! Raw data of one run, as the runner hands it to the report writers: the plan entry,
//! the samples, the workload's records and how the run ended. Nothing here is computed;
//! `report::summary` derives the figures.

use crate::limiter::LimiterReport;
use crate::process::leaks::LeakReport;
use crate::sample::Sample;
use crate::scenario::PlannedRun;
use fibtest::record::{DutyPeriod, End, Header, Record, ThreadReport, UnitLatency};
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
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed { .. } => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::TimedOut { .. } => "timed_out",
        }
    }
}

/// The workload's records, split by type.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkloadOutput {
    pub header: Option<Header>,
    pub threads: Vec<ThreadReport>,
    pub units: Vec<UnitLatency>,
    pub duty: Vec<DutyPeriod>,
    pub end: Option<End>,
    /// What a probe workload (steal, entropy) reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<crate::probe::ProbeOutput>,
    /// Lines that were not records (kept for diagnosis, at most a few).
    pub unparsed: Vec<String>,
}

impl GroupResult {
    /// Index of the sample to count from: the last one taken at or before the workload's
    /// own time zero (after its threads started and, with a phase, after it found the
    /// period boundary), so start-up is not counted. The first sample when the workload
    /// did not report its time zero (command workloads).
    pub fn window_start(&self, t0_monotonic_ns: u64) -> usize {
        let Some(h) = &self.workload.header else {
            return 0;
        };
        let zero = h.start_monotonic_ns.saturating_sub(t0_monotonic_ns);
        self.samples
            .iter()
            .rposition(|s| s.t_ns <= zero)
            .unwrap_or(0)
    }
}

impl WorkloadOutput {
    /// Parse fibtest's JSON lines; unknown record types and bad lines are kept aside, not fatal.
    pub fn parse(text: &str) -> WorkloadOutput {
        let mut out = WorkloadOutput::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Record>(line) {
                Ok(Record::Header(h)) => out.header = Some(h),
                Ok(Record::Thread(t)) => out.threads.push(t),
                Ok(Record::Unit(u)) => out.units.push(u),
                Ok(Record::Duty(d)) => out.duty.push(d),
                Ok(Record::End(e)) => out.end = Some(e),
                Err(_) if line.starts_with("{\"type\":\"") && line.contains("_probe\"") => {
                    match serde_json::from_str::<crate::probe::ProbeOutput>(line) {
                        Ok(p) => out.probe = Some(p),
                        Err(e) => out.unparsed.push(format!("probe report: {e}")),
                    }
                }
                Err(_) => {
                    if out.unparsed.len() < 5 {
                        out.unparsed.push(line.chars().take(200).collect());
                    }
                }
            }
        }
        out
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
    /// Wall time from starting the workload to seeing it exit, in s.
    pub wall_s: f64,
    /// CLOCK_MONOTONIC of the run's time zero (just before the workload started), in ns;
    /// sample times are relative to it.
    pub t0_monotonic_ns: u64,
    /// Each group's samples and workload output ("main" alone without groups).
    pub groups: Vec<GroupResult>,
    /// What the limiter did (duty cycles, external command).
    pub limiter: LimiterReport,
    /// Processes left stopped or alive, cgroups left behind.
    pub leaks: LeakReport,
    /// How the harness ended workload processes that were still running (stop all,
    /// SIGTERM all, continue all), if any were.
    pub teardown: Option<crate::process::teardown::StopReport>,
}

/// One group of a run: its cgroup's samples and its workload's records.
#[derive(Debug, Clone, Serialize)]
pub struct GroupResult {
    pub name: String,
    /// Cumulative counters of the group's cgroup, the first taken just before the
    /// workload started.
    pub samples: Vec<Sample>,
    /// Which counters the cgroup's cpu.stat reported: those it did not read 0 in the
    /// samples and are left empty in the summary and time series.
    pub counters: crate::sample::cpustat::Has,
    pub workload: WorkloadOutput,
    /// How the group's main workload process ended: "exited with code 0", "was killed by
    /// signal 11", ... (a workload the harness stopped ends by its SIGTERM).
    pub exit_status: String,
}
