//! The machine-readable report that `fibtest` writes on stdout, one JSON object per line.
//!
//! This is the contract between the workload generator and the harness (and any outside
//! script): the harness deserializes these same types. Times are in seconds, relative to
//! the workload's start (`Header::start_monotonic_ns` on CLOCK_MONOTONIC, which is
//! system-wide, so a reader can line records up with its own samples).
//!
//! Records appear in this order: one `header`, then `thread` records, `unit` records and
//! `duty` records in any order, then one `end`. A reader must ignore record types it does
//! not know (later versions may add some) but may rely on the fields documented here.

use serde::{Deserialize, Serialize};

/// Version of the record format; bumped when a field changes meaning or is removed.
pub const FORMAT_VERSION: u32 = 1;

/// One line of fibtest's machine-readable output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Header(Header),
    Thread(ThreadReport),
    Unit(UnitLatency),
    Duty(DutyPeriod),
    End(End),
}

/// The workload that ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Fast threads spinning, slow threads doing a little work then sleeping.
    Fib,
    /// Requests of a fixed CPU cost arriving on a schedule.
    Requests,
    /// Run for `on`, sleep for `off`, repeat.
    Duty,
    /// A server whose requests each cost a fixed CPU time (`fibtest serve`).
    Serve,
}

/// What a thread did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Fast,
    Slow,
    Request,
    Duty,
}

/// First record: what is running and when it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// `FORMAT_VERSION` of the writer.
    pub version: u32,
    pub mode: Mode,
    /// Process id of the fibtest process.
    pub pid: u32,
    /// CLOCK_MONOTONIC at the workload's time zero, in ns.
    pub start_monotonic_ns: u64,
    /// The options the workload ran with, as `--flag value` text, for the record.
    pub args: Vec<String>,
}

/// One thread's totals, written when it finishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadReport {
    pub role: Role,
    /// Index of the thread within its role, from 0.
    pub index: u32,
    /// CPU the thread was pinned to, if it was pinned.
    pub cpu: Option<u32>,
    /// Fibonacci steps completed.
    pub steps: u64,
    /// Units of work completed (slow units, requests, duty on-periods); 0 for fast threads.
    pub units: u64,
    /// Units whose latency could not be stored because the preallocated buffer was full.
    pub units_dropped: u64,
    /// Wall time the thread ran, in s.
    pub wall_s: f64,
    /// CPU time the thread used (CLOCK_THREAD_CPUTIME_ID), in s.
    pub cpu_s: f64,
}

/// Kind of a unit of work whose latency is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// A slow thread's `slow_steps` steps after its sleep.
    Slow,
    /// A request of fixed CPU cost.
    Request,
}

/// The latency of one unit of work, measured from when it was due (its intended start:
/// the intended wake-up of a slow thread, the arrival time of a request), so time spent
/// throttled or queued is counted instead of hidden (no coordinated omission).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitLatency {
    pub kind: UnitKind,
    /// Index of the thread within its role.
    pub thread: u32,
    /// Index of the unit within its thread, from 0.
    pub index: u64,
    /// When the unit was due, in s since the start.
    pub due_s: f64,
    /// When it actually started running, in s since the start.
    pub start_s: f64,
    /// When it finished, in s since the start.
    pub end_s: f64,
    /// `end_s - due_s`, in s.
    pub latency_s: f64,
}

/// Work done in one on-period of a duty cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DutyPeriod {
    /// Index of the duty thread.
    pub thread: u32,
    /// Index of the on-period, from 0.
    pub period: u64,
    /// When the on-period started, in s since the start.
    pub start_s: f64,
    /// Wall length of the on-period, in s.
    pub on_s: f64,
    /// CPU time the thread got during the on-period, in s.
    pub cpu_s: f64,
    /// Fibonacci steps done in the on-period.
    pub steps: u64,
    /// Steps per wall second over the on-period.
    pub steps_per_s: f64,
    /// Steps done in each consecutive slice of the on-period (slice length `slice_s`),
    /// so a reader can see the work rate collapse inside a long on-period.
    pub slice_steps: Vec<u64>,
    /// Length of one slice, in s.
    pub slice_s: f64,
}

/// Last record: the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct End {
    /// Wall time from start to the last thread's end, in s.
    pub wall_s: f64,
    /// CPU time of the whole process (CLOCK_PROCESS_CPUTIME_ID), in s.
    pub cpu_s: f64,
    /// Sum of fast threads' steps.
    pub fast_steps: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_of_each() -> Vec<Record> {
        vec![
            Record::Header(Header {
                version: FORMAT_VERSION,
                mode: Mode::Requests,
                pid: 42,
                start_monotonic_ns: 9_370_485_195_962,
                args: vec!["requests".into(), "--work".into(), "20ms".into()],
            }),
            Record::Thread(ThreadReport {
                role: Role::Request,
                index: 0,
                cpu: None,
                steps: 209_911_808,
                units: 3,
                units_dropped: 0,
                wall_s: 0.060057468,
                cpu_s: 0.060040864,
            }),
            Record::Unit(UnitLatency {
                kind: UnitKind::Request,
                thread: 0,
                index: 2,
                due_s: 0.0,
                start_s: 0.040011,
                end_s: 0.060024771,
                latency_s: 0.060024771,
            }),
            Record::Duty(DutyPeriod {
                thread: 1,
                period: 3,
                start_s: 0.3,
                on_s: 0.05,
                cpu_s: 0.0499,
                steps: 180_879_360,
                steps_per_s: 3_617_451_690.259_682_7,
                slice_steps: vec![36_274_176, 0, 144_605_184],
                slice_s: 0.01,
            }),
            Record::End(End {
                wall_s: 0.100136149,
                cpu_s: 0.052777585,
                fast_steps: 0,
            }),
        ]
    }

    #[test]
    fn every_record_survives_a_round_trip() {
        for r in one_of_each() {
            let line = serde_json::to_string(&r).unwrap();
            assert!(!line.contains('\n'));
            let back: Record = serde_json::from_str(&line).unwrap();
            assert_eq!(back, r, "{line}");
        }
    }

    #[test]
    fn lines_carry_their_type_tag_and_field_names() {
        let lines: Vec<String> = one_of_each()
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        for (line, tag) in lines
            .iter()
            .zip(["header", "thread", "unit", "duty", "end"])
        {
            assert!(line.starts_with(&format!("{{\"type\":\"{tag}\"")), "{line}");
        }
        assert!(lines[1].contains("\"role\":\"request\"") && lines[1].contains("\"cpu\":null"));
        assert!(lines[2].contains("\"kind\":\"request\"") && lines[2].contains("\"latency_s\":"));
    }

    #[test]
    fn reads_a_line_written_by_an_older_fibtest_and_ignores_unknown_fields() {
        let line = r#"{"type":"unit","kind":"slow","thread":1,"index":7,"due_s":0.07,"start_s":0.0701,"end_s":0.0702,"latency_s":0.0002,"added_later":true}"#;
        match serde_json::from_str::<Record>(line).unwrap() {
            Record::Unit(u) => assert_eq!((u.kind, u.thread, u.index), (UnitKind::Slow, 1, 7)),
            other => panic!("{other:?}"),
        }
    }
}
