//! duty.csv: one row per on-period of a duty workload (`kind = "duty"`), written as the
//! workload reports it, so a run of any length keeps every on-period on disk while
//! run.json keeps only each thread's first and last.

use fibtest::record::DutyPeriod;
use std::io::{self, Write};

/// Columns of duty.csv. `start_s` counts from the workload's start; `slice_steps` are the
/// steps of each consecutive `slice_s` of the on-period, joined with `;`.
pub const COLUMNS: &[&str] = &[
    "run",
    "group",
    "thread",
    "period",
    "start_s",
    "on_s",
    "cpu_s",
    "steps",
    "steps_per_s",
    "slice_s",
    "slice_steps",
];

/// The header line of duty.csv.
pub fn header() -> String {
    let mut h = COLUMNS.join(",");
    h.push('\n');
    h
}

/// Write one on-period's row into `buf` (no allocation beyond the buffer's).
pub fn write_row(buf: &mut Vec<u8>, run: usize, group: &str, d: &DutyPeriod) -> io::Result<()> {
    write!(buf, "{run},")?;
    super::appender::field(buf, group)?;
    write!(
        buf,
        ",{},{},{},{},{},{},{},{},",
        d.thread, d.period, d.start_s, d.on_s, d.cpu_s, d.steps, d.steps_per_s, d.slice_s
    )?;
    for (i, s) in d.slice_steps.iter().enumerate() {
        if i > 0 {
            buf.push(b';');
        }
        write!(buf, "{s}")?;
    }
    buf.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_in_docs_metrics() {
        let missing = super::super::undocumented("duty.csv", COLUMNS);
        assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");
    }

    #[test]
    fn a_row_has_every_column_and_reads_back_as_the_period() {
        let d = DutyPeriod {
            thread: 1,
            period: 7,
            start_s: 70.5,
            on_s: 1.0,
            cpu_s: 0.25,
            steps: 600,
            steps_per_s: 600.0,
            slice_steps: vec![300, 200, 100],
            slice_s: 0.1,
        };
        let mut buf = header().into_bytes();
        write_row(&mut buf, 2, "web, v2", &d).unwrap();
        let mut r = csv::Reader::from_reader(buf.as_slice());
        let head: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(head, COLUMNS);
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        let cell = |c: &str| rows[0][COLUMNS.iter().position(|x| *x == c).unwrap()].to_string();
        assert_eq!(cell("run"), "2");
        assert_eq!(cell("group"), "web, v2");
        assert_eq!(cell("thread"), "1");
        assert_eq!(cell("period"), "7");
        assert_eq!(cell("start_s").parse::<f64>().unwrap(), 70.5);
        assert_eq!(cell("cpu_s").parse::<f64>().unwrap(), 0.25);
        assert_eq!(cell("steps_per_s").parse::<f64>().unwrap(), 600.0);
        assert_eq!(cell("slice_s").parse::<f64>().unwrap(), 0.1);
        let slices: Vec<u64> = cell("slice_steps")
            .split(';')
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(slices, d.slice_steps);
    }
}
