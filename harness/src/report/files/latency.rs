//! latency.csv: one row per request or slow unit, with when it was due and how long it
//! took from then.

use crate::result::RunResult;
use fibtest::record::UnitKind;
use serde::Serialize;

/// Columns of latency.csv: one row per request or slow unit.
pub const COLUMNS: &[&str] = &[
    "run",
    "kind",
    "index",
    "due_s",
    "latency_s",
    "thread",
    "start_s",
    "end_s",
    "group",
];

#[derive(Serialize)]
struct LatencyRow<'a> {
    run: usize,
    kind: &'a str,
    index: u64,
    due_s: f64,
    latency_s: f64,
    thread: u32,
    start_s: f64,
    end_s: f64,
    group: &'a str,
}

/// Write every group's units of one run.
pub fn write_run<W: std::io::Write>(w: &mut csv::Writer<W>, result: &RunResult) -> csv::Result<()> {
    let run = result.planned.index;
    for g in &result.groups {
        for u in &g.workload.units {
            w.serialize(LatencyRow {
                run,
                kind: match u.kind {
                    UnitKind::Slow => "slow",
                    UnitKind::Request => "request",
                },
                index: u.index,
                due_s: u.due_s,
                latency_s: u.latency_s,
                thread: u.thread,
                start_s: u.start_s,
                end_s: u.end_s,
                group: &g.name,
            })?;
        }
    }
    Ok(())
}
