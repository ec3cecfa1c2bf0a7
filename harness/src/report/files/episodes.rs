//! episodes.csv: a watch's throttling episodes (runs of consecutive throttled CFS
//! periods, `crate::episodes`), one row each, written when the episode ends (`write_row`,
//! no allocation) and read back as numbers (`read`).

use super::appender::field;
use super::timeseries::{float, int};
use crate::episodes::Episode;
use std::io;

/// Columns of episodes.csv.
pub const COLUMNS: &[&str] = &[
    "run",
    "group",
    "start_s",
    "end_s",
    "length_s",
    "periods",
    "throttled_periods",
    "throttled_s",
    "peak_throttled_share",
    "exact",
    "cut_off",
];

/// The header line.
pub fn header() -> String {
    let mut h = COLUMNS.join(",");
    h.push('\n');
    h
}

/// Write one episode of group `group` of run `run` into `buf` (times in s since the
/// run's first sample); a value the kernel did not report is left empty.
pub fn write_row(buf: &mut Vec<u8>, run: usize, group: &str, e: &Episode) -> io::Result<()> {
    int(buf, run as u64);
    buf.push(b',');
    field(buf, group)?;
    for x in [e.start_s, e.end_s, e.length_s()] {
        buf.push(b',');
        float(buf, x);
    }
    buf.push(b',');
    int(buf, e.periods);
    buf.push(b',');
    int(buf, e.throttled_periods);
    buf.push(b',');
    if let Some(x) = e.throttled_s {
        float(buf, x);
    }
    buf.push(b',');
    if let Some(x) = e.peak_throttled_share {
        float(buf, x);
    }
    buf.extend_from_slice(if e.exact { b",true" } else { b",false" });
    buf.extend_from_slice(if e.truncated { b",true\n" } else { b",false\n" });
    Ok(())
}

/// One row read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub run: usize,
    pub group: String,
    pub episode: Episode,
}

/// Every row of an episodes.csv text (a torn last line is skipped).
pub fn read(r: impl io::Read) -> csv::Result<Vec<Row>> {
    let mut rd = csv::ReaderBuilder::new().flexible(true).from_reader(r);
    let h = rd.headers()?.clone();
    let col = |n: &str| h.iter().position(|c| c == n);
    let idx: Vec<Option<usize>> = COLUMNS.iter().map(|c| col(c)).collect();
    let mut out = Vec::new();
    for rec in rd.records() {
        let rec = rec?;
        let cell = |i: usize| idx[i].and_then(|j| rec.get(j)).filter(|v| !v.is_empty());
        let num = |i: usize| cell(i).and_then(|v| v.parse::<f64>().ok());
        let count = |i: usize| cell(i).and_then(|v| v.parse::<u64>().ok());
        let (Some(run), Some(start_s), Some(end_s)) =
            (cell(0).and_then(|v| v.parse().ok()), num(2), num(3))
        else {
            continue;
        };
        out.push(Row {
            run,
            group: cell(1).unwrap_or("main").to_string(),
            episode: Episode {
                start_s,
                end_s,
                periods: count(5).unwrap_or(0),
                throttled_periods: count(6).unwrap_or(0),
                throttled_s: num(7),
                peak_throttled_share: num(8),
                exact: cell(9) == Some("true"),
                truncated: cell(10) == Some("true"),
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_episode_reads_back_as_written() {
        let e = Episode {
            start_s: 1.5,
            end_s: 3.0,
            periods: 15,
            throttled_periods: 15,
            throttled_s: Some(1.2),
            peak_throttled_share: None,
            exact: true,
            truncated: false,
        };
        let mut buf = header().into_bytes();
        write_row(&mut buf, 0, "kubepods/pod,1", &e).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.ends_with("0,\"kubepods/pod,1\",1.5,3.0,1.5,15,15,1.2,,true,false\n"),
            "{text}"
        );
        let rows = read(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].group, "kubepods/pod,1");
        assert_eq!(rows[0].episode, e);
    }

    #[test]
    fn every_column_is_in_docs_metrics() {
        let missing = super::super::undocumented("episodes.csv", COLUMNS);
        assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");
    }
}
