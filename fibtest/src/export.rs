//! From a finished run to its report: `records` turns what the threads measured into
//! `record::Record`s, and each writer is a pure function from records to bytes (JSON
//! lines, CSV, the human summary), so they are tested without running anything.
//!
//! ## CSV layout
//! One header row with the columns of `CSV_COLUMNS`, then one row per record in the order
//! of the JSON lines. Each column is the JSON field of that name of the row's record
//! (`type` says which record it is), empty when the record has no such field or it is
//! null; `args` are joined with spaces and `slice_steps` with `;`. Fields are quoted as
//! RFC 4180 says when they hold a comma, a quote or a line break.

use crate::record::{End, Header, Mode, Record, Role, ThreadReport, UnitLatency, FORMAT_VERSION};
use crate::stats;
use crate::work::RunOutcome;
use std::fmt::Write;

/// The records of a run, in the documented order: header, threads, units and duty
/// periods (thread by thread), end.
pub fn records(mode: Mode, args: &[String], pid: u32, out: &RunOutcome) -> Vec<Record> {
    let mut r = vec![Record::Header(Header {
        version: FORMAT_VERSION,
        mode,
        pid,
        start_monotonic_ns: out.start_ns,
        args: args.to_vec(),
    })];
    r.extend(out.threads.iter().map(|t| Record::Thread(t.report.clone())));
    for t in &out.threads {
        r.extend(t.units.iter().cloned().map(Record::Unit));
        r.extend(
            t.duty
                .records(t.report.index, out.start_ns)
                .into_iter()
                .map(Record::Duty),
        );
    }
    r.push(Record::End(End {
        wall_s: out
            .threads
            .iter()
            .map(|t| t.report.wall_s)
            .fold(0.0, f64::max),
        cpu_s: out.process_cpu_ns as f64 / 1e9,
        fast_steps: out
            .threads
            .iter()
            .filter(|t| t.report.role == Role::Fast)
            .map(|t| t.report.steps)
            .sum(),
    }));
    r
}

/// One JSON object per line.
pub fn to_jsonl(records: &[Record]) -> Vec<u8> {
    let mut w = Vec::new();
    for r in records {
        serde_json::to_writer(&mut w, r).expect("records serialize");
        w.push(b'\n');
    }
    w
}

/// Columns of the CSV form, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "type",
    "version",
    "mode",
    "pid",
    "start_monotonic_ns",
    "args",
    "role",
    "kind",
    "thread",
    "index",
    "period",
    "cpu",
    "steps",
    "units",
    "units_dropped",
    "due_s",
    "start_s",
    "end_s",
    "latency_s",
    "on_s",
    "wall_s",
    "cpu_s",
    "steps_per_s",
    "slice_s",
    "slice_steps",
    "fast_steps",
];

/// A JSON value as CSV text, before quoting: arrays joined with `sep`.
fn csv_text(v: Option<&serde_json::Value>, sep: &str) -> String {
    use serde_json::Value;
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| csv_text(Some(x), sep))
            .collect::<Vec<_>>()
            .join(sep),
        Some(other) => other.to_string(),
    }
}

fn csv_field(v: Option<&serde_json::Value>, sep: &str) -> String {
    let text = csv_text(v, sep);
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The CSV form (see the module doc).
pub fn to_csv(records: &[Record]) -> Vec<u8> {
    let mut s = CSV_COLUMNS.join(",");
    s.push('\n');
    for r in records {
        let v = serde_json::to_value(r).expect("records serialize");
        let row: Vec<String> = CSV_COLUMNS
            .iter()
            .map(|c| csv_field(v.get(*c), if *c == "args" { " " } else { ";" }))
            .collect();
        s.push_str(&row.join(","));
        s.push('\n');
    }
    s.into_bytes()
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Fast => "fast",
        Role::Slow => "slow",
        Role::Request => "request",
        Role::Duty => "duty",
    }
}

/// The role of the threads that do units of this kind.
fn unit_role(u: &UnitLatency) -> Role {
    match u.kind {
        crate::record::UnitKind::Slow => Role::Slow,
        crate::record::UnitKind::Request => Role::Request,
    }
}

/// A few lines for a person: per role, threads, steps, rate, units and their latency.
pub fn summary(records: &[Record]) -> String {
    let mut s = String::new();
    for role in [Role::Fast, Role::Slow, Role::Request, Role::Duty] {
        let ts: Vec<&ThreadReport> = records
            .iter()
            .filter_map(|r| match r {
                Record::Thread(t) if t.role == role => Some(t),
                _ => None,
            })
            .collect();
        if ts.is_empty() {
            continue;
        }
        let steps: u64 = ts.iter().map(|t| t.steps).sum();
        let wall = ts.iter().map(|t| t.wall_s).fold(0.0, f64::max).max(1e-9);
        let cpu: f64 = ts.iter().map(|t| t.cpu_s).sum();
        let _ = write!(
            s,
            "fibtest: {}: {} thread(s), {:.1} M steps, {:.0} M steps/s, {:.3} s CPU",
            role_name(role),
            ts.len(),
            steps as f64 / 1e6,
            steps as f64 / 1e6 / wall,
            cpu
        );
        let units: u64 = ts.iter().map(|t| t.units).sum();
        let dropped: u64 = ts.iter().map(|t| t.units_dropped).sum();
        let mut lat: Vec<f64> = records
            .iter()
            .filter_map(|r| match r {
                Record::Unit(u) if unit_role(u) == role => Some(u.latency_s),
                _ => None,
            })
            .collect();
        if role == Role::Duty {
            let _ = write!(s, ", {units} on-period(s)");
        } else if role != Role::Fast {
            let _ = write!(s, ", {units} units");
        }
        if !lat.is_empty() {
            lat.sort_by(f64::total_cmp);
            let _ = write!(
                s,
                ", latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
                stats::percentile(&lat, 50.0).unwrap_or(0.0) * 1e3,
                stats::percentile(&lat, 99.0).unwrap_or(0.0) * 1e3,
                lat[lat.len() - 1] * 1e3
            );
        }
        if dropped > 0 {
            let _ = write!(s, " ({dropped} units not stored: buffer full)");
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{DutyPeriod, UnitKind};

    fn sample() -> Vec<Record> {
        let thread = |role, steps, units| {
            Record::Thread(ThreadReport {
                role,
                index: 0,
                cpu: Some(1),
                steps,
                units,
                units_dropped: 0,
                wall_s: 2.0,
                cpu_s: 1.5,
            })
        };
        let unit = |index, latency_s| {
            Record::Unit(UnitLatency {
                kind: UnitKind::Slow,
                thread: 0,
                index,
                due_s: 0.01 * index as f64,
                start_s: 0.01 * index as f64,
                end_s: 0.01 * index as f64 + latency_s,
                latency_s,
            })
        };
        vec![
            Record::Header(Header {
                version: FORMAT_VERSION,
                mode: Mode::Fib,
                pid: 7,
                start_monotonic_ns: 123,
                args: vec!["fib".into(), "--slow-cpus".into(), "0,1".into()],
            }),
            thread(Role::Fast, 6_000_000_000, 0),
            thread(Role::Slow, 400, 4),
            unit(0, 0.001),
            unit(1, 0.004),
            unit(2, 0.002),
            unit(3, 0.003),
            Record::Duty(DutyPeriod {
                thread: 0,
                period: 2,
                start_s: 0.5,
                on_s: 0.1,
                cpu_s: 0.1,
                steps: 30,
                steps_per_s: 300.0,
                slice_steps: vec![10, 20],
                slice_s: 0.05,
            }),
            Record::End(End {
                wall_s: 2.0,
                cpu_s: 3.0,
                fast_steps: 6_000_000_000,
            }),
        ]
    }

    #[test]
    fn jsonl_is_one_record_per_line_and_reads_back() {
        let recs = sample();
        let text = String::from_utf8(to_jsonl(&recs)).unwrap();
        let back: Vec<Record> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, recs);
    }

    #[test]
    fn csv_has_a_fixed_header_and_a_row_per_record() {
        let text = String::from_utf8(to_csv(&sample())).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert_eq!(lines.len(), 1 + sample().len());
        // args with a comma are quoted; absent fields are empty.
        assert!(
            lines[1].starts_with("header,1,fib,7,123,\"fib --slow-cpus 0,1\",,,"),
            "{}",
            lines[1]
        );
        let col = |line: &str, name: &str| -> String {
            let i = CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
            line.split(',').nth(i).unwrap().to_string()
        };
        let unit = lines[5];
        assert_eq!(col(unit, "type"), "unit");
        assert_eq!(col(unit, "kind"), "slow");
        assert_eq!(col(unit, "latency_s"), "0.004");
        assert_eq!(col(unit, "steps"), "");
        let duty = lines[8];
        assert_eq!(col(duty, "period"), "2");
        assert_eq!(col(duty, "slice_steps"), "10;20");
        assert_eq!(col(lines[9], "fast_steps"), "6000000000");
    }

    #[test]
    fn summary_gives_rates_and_latency_percentiles() {
        let s = summary(&sample());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 2, "{s}");
        assert_eq!(
            lines[0],
            "fibtest: fast: 1 thread(s), 6000.0 M steps, 3000 M steps/s, 1.500 s CPU"
        );
        assert_eq!(
            lines[1],
            "fibtest: slow: 1 thread(s), 0.0 M steps, 0 M steps/s, 1.500 s CPU, 4 units, \
             latency p50 2.00 ms p99 4.00 ms max 4.00 ms"
        );
    }
}
