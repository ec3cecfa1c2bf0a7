//! latency.csv: one row per request or slow unit, with when it was due and how long it
//! took from then, written as the workload reports each unit.

use fibtest::record::{UnitKind, UnitLatency};
use std::io::{self, Write};

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

/// The header line.
pub fn header() -> String {
    let mut h = COLUMNS.join(",");
    h.push('\n');
    h
}

/// Write one unit's row into `buf` (no allocation).
pub fn write_row(buf: &mut Vec<u8>, run: usize, group: &str, u: &UnitLatency) -> io::Result<()> {
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
    buf.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_per_unit_in_the_documented_columns() {
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
        write_row(&mut buf, 2, "main", &u).unwrap();
        let text = format!("{}{}", header(), String::from_utf8(buf).unwrap());
        assert_eq!(
            text,
            "run,kind,index,due_s,latency_s,thread,start_s,end_s,group\n2,request,7,1,0.44,1,1,1.44,main\n"
        );
    }
}
