//! latency.csv: one row per request or slow unit, with when it was due, how long it took
//! from then, how it ended, and the CFS periods it was due and ended in.
//!
//! While a run runs, its rows go to a spool file of their own (`spool_path`, the first
//! `SPOOL_COLUMNS` columns) as the workload and the load report them; when it ends, each
//! row gets its periods from the run's time series (`report::periods`) and is appended to
//! latency.csv. A run killed before its end leaves its spool, rows intact.

use crate::load::{Outcome, RequestRecord};
use fibtest::record::{UnitKind, UnitLatency};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Columns of latency.csv. Times are in s since the workload's start (slow units and
/// the requests workload) or the load's (`http` and `line` requests; run.json has each
/// one's time zero against the run's).
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
    "status",
    "error",
    "warmup",
    "due_period",
    "due_throttled",
    "end_period",
    "end_throttled",
    "throttled_periods",
];

/// The columns a run's spool has: all but the periods.
pub const SPOOL_COLUMNS: usize = 12;

/// The header line of latency.csv.
pub fn header() -> String {
    let mut h = COLUMNS.join(",");
    h.push('\n');
    h
}

/// The header line of a spool.
pub fn spool_header() -> String {
    let mut h = COLUMNS[..SPOOL_COLUMNS].join(",");
    h.push('\n');
    h
}

/// Where run `run`'s rows wait for their periods.
pub fn spool_path(dir: &Path, run: usize) -> PathBuf {
    dir.join(format!("latency.run{run}.partial.csv"))
}

fn secs(buf: &mut Vec<u8>, ns: u64) {
    buf.extend_from_slice(ryu::Buffer::new().format_finite(ns as f64 / 1e9).as_bytes());
}

/// Write a workload unit's spool row into `buf` (no allocation).
pub fn write_unit(buf: &mut Vec<u8>, run: usize, group: &str, u: &UnitLatency) -> io::Result<()> {
    let kind = match u.kind {
        UnitKind::Slow => "slow",
        UnitKind::Request => "request",
    };
    write!(
        buf,
        "{run},{kind},{},{},{},{},{},{},",
        u.index, u.due_s, u.latency_s, u.thread, u.start_s, u.end_s
    )?;
    super::appender::field(buf, group)?;
    buf.extend_from_slice(b",,,0\n");
    Ok(())
}

/// Write a loaded request's spool row into `buf` (no allocation): `kind` is its protocol
/// ("http" or "line"), `thread` its connection, `start_s` its send (empty when it was
/// never sent).
pub fn write_request(
    buf: &mut Vec<u8>,
    run: usize,
    group: &str,
    kind: &str,
    r: &RequestRecord,
) -> io::Result<()> {
    write!(buf, "{run},{kind},{},", r.index)?;
    secs(buf, r.due_ns);
    buf.push(b',');
    secs(buf, r.latency_ns());
    write!(buf, ",{},", r.connection)?;
    if let Some(s) = r.sent_ns {
        secs(buf, s);
    }
    buf.push(b',');
    secs(buf, r.end_ns);
    buf.push(b',');
    super::appender::field(buf, group)?;
    match r.outcome {
        Outcome::Http(code) => write!(buf, ",{code},")?,
        Outcome::Line => buf.extend_from_slice(b",,"),
        Outcome::Error(k) => write!(buf, ",,{}", k.name())?,
    }
    buf.extend_from_slice(if r.warmup { b",1\n" } else { b",0\n" });
    Ok(())
}

/// A spool row's fields that the join reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpoolRow<'a> {
    pub kind: &'a str,
    pub due_s: f64,
    pub latency_s: f64,
    pub end_s: f64,
    pub group: &'a str,
    pub failed: bool,
    pub warmup: bool,
}

impl<'a> SpoolRow<'a> {
    /// Read a spool line (without its line break); None for a torn or foreign line.
    pub fn parse(line: &'a str) -> Option<SpoolRow<'a>> {
        let f: Vec<&str> = line.splitn(SPOOL_COLUMNS, ',').collect();
        if f.len() != SPOOL_COLUMNS {
            return None;
        }
        Some(SpoolRow {
            kind: f[1],
            due_s: f[3].parse().ok()?,
            latency_s: f[4].parse().ok()?,
            end_s: f[7].parse().ok()?,
            group: f[8],
            failed: !f[10].is_empty(),
            warmup: f[11] == "1",
        })
    }

    /// Whether it is a request of a load (times from the load's zero).
    pub fn loaded(&self) -> bool {
        matches!(self.kind, "http" | "line")
    }
}

/// Append the period cells to a spool line in `buf` (None: unknown, an empty cell).
pub fn write_periods(
    buf: &mut Vec<u8>,
    line: &str,
    p: Option<&crate::report::periods::Periods>,
) -> io::Result<()> {
    buf.extend_from_slice(line.as_bytes());
    let flag = |b: Option<bool>| match b {
        Some(true) => "1",
        Some(false) => "0",
        None => "",
    };
    match p {
        Some(p) => {
            write!(
                buf,
                ",{},{},{},{},",
                p.start,
                flag(p.start_throttled),
                p.end,
                flag(p.end_throttled)
            )?;
            if let Some(n) = p.throttled {
                write!(buf, "{n}")?;
            }
            buf.push(b'\n');
        }
        None => buf.extend_from_slice(b",,,,,\n"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::ErrorKind;

    #[test]
    fn a_unit_row_has_the_documented_columns_and_reads_back() {
        let u = UnitLatency {
            kind: UnitKind::Request,
            thread: 1,
            index: 7,
            due_s: 1.0,
            start_s: 1.0,
            end_s: 1.44,
            latency_s: 0.44,
        };
        let mut buf = Vec::new();
        write_unit(&mut buf, 2, "main", &u).unwrap();
        let line = String::from_utf8(buf).unwrap();
        assert_eq!(line, "2,request,7,1,0.44,1,1,1.44,main,,,0\n");
        assert_eq!(spool_header().trim().split(',').count(), SPOOL_COLUMNS);
        let r = SpoolRow::parse(line.trim_end()).unwrap();
        assert_eq!(
            (r.kind, r.due_s, r.end_s, r.group),
            ("request", 1.0, 1.44, "main")
        );
        assert!(!r.failed && !r.warmup && !r.loaded());
        let mut out = Vec::new();
        let p = crate::report::periods::Periods {
            start: 3,
            start_throttled: Some(false),
            end: 7,
            end_throttled: Some(true),
            throttled: Some(4),
        };
        write_periods(&mut out, line.trim_end(), Some(&p)).unwrap();
        let text = format!("{}{}", header(), String::from_utf8(out).unwrap());
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let row = rd.records().next().unwrap().unwrap();
        assert_eq!(row.len(), COLUMNS.len());
        assert_eq!(&row[12], "3");
        assert_eq!(&row[15], "1");
        assert_eq!(&row[16], "4");
    }

    #[test]
    fn a_request_row_says_how_it_ended() {
        let ok = RequestRecord {
            index: 3,
            connection: 2,
            warmup: true,
            due_ns: 1_000_000_000,
            sent_ns: Some(1_001_000_000),
            end_ns: 1_250_000_000,
            outcome: Outcome::Http(200),
        };
        let mut buf = Vec::new();
        write_request(&mut buf, 0, "web", "http", &ok).unwrap();
        let failed = RequestRecord {
            sent_ns: None,
            outcome: Outcome::Error(ErrorKind::Refused),
            warmup: false,
            ..ok
        };
        write_request(&mut buf, 0, "web", "http", &failed).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "0,http,3,1.0,0.25,2,1.001,1.25,web,200,,1");
        assert_eq!(lines[1], "0,http,3,1.0,0.25,2,,1.25,web,,refused,0");
        let r = SpoolRow::parse(lines[1]).unwrap();
        assert!(r.failed && r.loaded() && !r.warmup);
    }
}
