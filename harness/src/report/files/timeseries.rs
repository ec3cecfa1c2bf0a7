//! timeseries.csv: one row per run, group and sample, each counter's change since the
//! previous sample (times in s), plus two shares over the interval. Rows are written as
//! the sampler takes them (`write_row`, no allocation) and read back as numbers
//! (`Row::read`), never as a table of text.

use crate::sample::cpustat::Has;
use crate::sample::{Delta, SystemHas};
use std::io;

/// Columns of timeseries.csv: one row per run and sample, each counter's change since
/// the previous sample (times in s), plus two shares over the interval.
pub const COLUMNS: &[&str] = &[
    "run",
    "group",
    "t_s",
    "dt_s",
    "usage_s",
    "cpu_share",
    "nr_periods",
    "nr_throttled",
    "throttled_s",
    "throttled_share",
    "nr_bursts",
    "burst_time_s",
    "steal_s",
    "busy_s",
    "psi_some_s",
    "psi_full_s",
    "limit_cpus",
];

/// Append a number: floats by ryu (shortest text that reads back to the same f64),
/// integers by itoa; neither allocates, both are several times cheaper than core::fmt,
/// which counts on a tick that writes a row per group.
fn float(buf: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        buf.extend_from_slice(ryu::Buffer::new().format_finite(x).as_bytes());
    }
}

fn int(buf: &mut Vec<u8>, x: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(x).as_bytes());
}

/// Write one row into `buf`; counters the kernel does not report (`has`, `system`) are
/// left empty rather than written as 0. `t_s` is the sample's time since the run's first
/// sample; `limit_cpus` the group's own CFS quota at the time, in CPUs (None: none).
/// Nothing allocates.
#[allow(clippy::too_many_arguments)]
pub fn write_row(
    buf: &mut Vec<u8>,
    run: usize,
    group: &str,
    t_s: f64,
    d: &Delta,
    has: Has,
    system: SystemHas,
    limit_cpus: Option<f64>,
) -> io::Result<()> {
    let share = |x: f64| if d.dt_s > 0.0 { x / d.dt_s } else { 0.0 };
    int(buf, run as u64);
    buf.push(b',');
    super::appender::field(buf, group)?;
    for x in [t_s, d.dt_s, d.usage_s, share(d.usage_s)] {
        buf.push(b',');
        float(buf, x);
    }
    buf.push(b',');
    if has.bandwidth {
        int(buf, d.nr_periods);
        buf.push(b',');
        int(buf, d.nr_throttled);
        buf.push(b',');
        float(buf, d.throttled_s);
        buf.push(b',');
        float(buf, share(d.throttled_s));
    } else {
        buf.extend_from_slice(b",,,");
    }
    buf.push(b',');
    if has.burst {
        int(buf, d.nr_bursts);
        buf.push(b',');
        float(buf, d.burst_time_s);
    } else {
        buf.push(b',');
    }
    buf.push(b',');
    float(buf, d.steal_s);
    buf.push(b',');
    float(buf, d.busy_s);
    buf.push(b',');
    if system.psi {
        float(buf, d.psi_some_s);
    }
    buf.push(b',');
    if system.psi_full {
        float(buf, d.psi_full_s);
    }
    buf.push(b',');
    if let Some(l) = limit_cpus {
        float(buf, l);
    }
    buf.push(b'\n');
    Ok(())
}

/// The header line.
pub fn header() -> String {
    let mut h = COLUMNS.join(",");
    h.push('\n');
    h
}

/// One row read back: the counters as numbers, None where the cell is empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub run: usize,
    pub t_s: f64,
    pub dt_s: f64,
    pub usage_s: f64,
    pub nr_periods: Option<u64>,
    pub nr_throttled: Option<u64>,
    pub throttled_s: Option<f64>,
    pub nr_bursts: Option<u64>,
    pub burst_time_s: Option<f64>,
    pub steal_s: f64,
    pub psi_some_s: Option<f64>,
    pub psi_full_s: Option<f64>,
    /// The group's own CFS quota at the time, in CPUs.
    pub limit_cpus: Option<f64>,
}

/// Column positions of a timeseries.csv header (older folders may order or lack some).
#[derive(Debug, Clone)]
pub struct Columns {
    idx: [Option<usize>; 17],
}

impl Columns {
    pub fn of(header: &csv::ByteRecord) -> Columns {
        let mut idx = [None; 17];
        for (i, name) in COLUMNS.iter().enumerate() {
            idx[i] = header.iter().position(|h| h == name.as_bytes());
        }
        Columns { idx }
    }

    fn cell<'r>(&self, rec: &'r csv::ByteRecord, column: usize) -> Option<&'r str> {
        let v = rec.get(self.idx[column]?)?;
        let v = std::str::from_utf8(v).ok()?;
        (!v.is_empty()).then_some(v)
    }

    fn num<T: std::str::FromStr>(&self, rec: &csv::ByteRecord, column: usize) -> Option<T> {
        self.cell(rec, column)?.parse().ok()
    }

    /// The group of a row, as bytes (compared without allocating).
    pub fn group<'r>(&self, rec: &'r csv::ByteRecord) -> &'r [u8] {
        self.idx[1].and_then(|i| rec.get(i)).unwrap_or(b"main")
    }

    /// A row's numbers; None when its run or time is missing (a torn last line).
    pub fn row(&self, rec: &csv::ByteRecord) -> Option<Row> {
        Some(Row {
            run: self.num(rec, 0)?,
            t_s: self.num(rec, 2)?,
            dt_s: self.num(rec, 3)?,
            usage_s: self.num(rec, 4).unwrap_or(0.0),
            nr_periods: self.num(rec, 6),
            nr_throttled: self.num(rec, 7),
            throttled_s: self.num(rec, 8),
            nr_bursts: self.num(rec, 10),
            burst_time_s: self.num(rec, 11),
            steal_s: self.num(rec, 12).unwrap_or(0.0),
            psi_some_s: self.num(rec, 14),
            psi_full_s: self.num(rec, 15),
            limit_cpus: self.num(rec, 16),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_back_as_written_with_absent_counters_empty() {
        let d = Delta {
            dt_s: 0.01,
            usage_s: 0.004,
            nr_periods: 1,
            nr_throttled: 1,
            throttled_s: 0.006,
            steal_s: 0.0,
            psi_some_s: 0.002,
            ..Delta::default()
        };
        let mut buf = Vec::new();
        let has = Has {
            bandwidth: true,
            burst: false,
        };
        let system = SystemHas {
            psi: true,
            psi_full: false,
        };
        write_row(&mut buf, 3, "main", 1.25, &d, has, system, Some(0.4)).unwrap();
        let text = format!("{}{}", header(), String::from_utf8(buf).unwrap());
        assert!(
            text.ends_with("3,main,1.25,0.01,0.004,0.4,1,1,0.006,0.6,,,0.0,0.0,0.002,,0.4\n"),
            "{text}"
        );
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let cols = Columns::of(r.byte_headers().unwrap());
        let rec = r.byte_records().next().unwrap().unwrap();
        let row = cols.row(&rec).unwrap();
        assert_eq!(row.run, 3);
        assert_eq!(row.t_s, 1.25);
        assert_eq!(row.nr_throttled, Some(1));
        assert_eq!(row.nr_bursts, None);
        assert_eq!(row.psi_some_s, Some(0.002));
        assert_eq!(row.psi_full_s, None);
        assert_eq!(row.limit_cpus, Some(0.4));
        assert_eq!(cols.group(&rec), b"main");
    }
}
