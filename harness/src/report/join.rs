//! The end of a run's latency rows: each spooled row gets the CFS periods it was due and
//! ended in (`periods`), goes to latency.csv, and counts into its group's split of
//! latencies by whether the request's life touched a throttled period.
//!
//! Two passes over the run's time series (one finds each group's period grid, the other
//! runs alongside the spool) and one over the spool; memory is the groups' grids, books
//! and histograms, whatever the run's length.

use super::files::appender::Appender;
use super::files::latency::{self, SpoolRow};
use super::files::timeseries::Columns;
use super::folder::ResultsError;
use super::periods::{PeriodBook, PhaseVotes};
use crate::load::record::{histogram, Percentiles};
use hdrhistogram::Histogram;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// What the join needs to know of a group.
#[derive(Debug, Clone, Default)]
pub struct JoinGroup {
    pub name: String,
    /// Its workload's time zero, in s since the run's first sample (its units' times
    /// count from it).
    pub zero_s: Option<f64>,
    /// The load's time zero, when this group's service was loaded.
    pub load_zero_s: Option<f64>,
    /// The CFS period of its cgroup, when the cgroup reports bandwidth counters.
    pub period_s: Option<f64>,
}

/// Latencies of a group's requests (answered, after any warm-up), split by whether a
/// throttled period fell between their due time and their end.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Split {
    pub touched: Percentiles,
    pub clear: Percentiles,
}

struct Group {
    book: Option<PeriodBook>,
    touched: Option<Histogram<u64>>,
    clear: Option<Histogram<u64>>,
}

/// A run's rows of timeseries.csv, to be read twice.
pub struct Series<'h, A, B> {
    /// The file's header, as read from its start.
    pub header: &'h csv::ByteRecord,
    /// The run's rows, for each pass.
    pub pass1: A,
    pub pass2: B,
    pub run: usize,
    /// The sample interval, in s.
    pub interval_s: f64,
}

/// Read run `series.run`'s time series twice and its spool once, appending each row
/// with its periods to `out`. Returns each group's split (None for a group without
/// requests or without a period grid).
pub fn join<A: Read, B: Read>(
    series: Series<'_, A, B>,
    spool: &Path,
    groups: &[JoinGroup],
    out: &mut Appender,
) -> Result<Vec<Option<Split>>, ResultsError> {
    let Series {
        header,
        pass1,
        pass2,
        run,
        interval_s,
    } = series;
    let cols = Columns::of(header);
    let index = |name: &[u8]| groups.iter().position(|g| g.name.as_bytes() == name);
    let ts_path = out.path.with_file_name("timeseries.csv");
    let ts_err = |e: csv::Error| ResultsError::Io {
        path: ts_path.clone(),
        error: std::io::Error::other(e),
    };
    // Pass 1: each group's grid.
    let mut votes: Vec<Option<PhaseVotes>> = groups
        .iter()
        .map(|g| g.period_s.map(PhaseVotes::new))
        .collect();
    let mut r = reader(pass1);
    let mut rec = csv::ByteRecord::new();
    while r.read_byte_record(&mut rec).map_err(ts_err)? {
        let (Some(row), Some(g)) = (cols.row(&rec), index(cols.group(&rec))) else {
            continue;
        };
        if let (true, Some(v), Some(n)) = (row.run == run, votes[g].as_mut(), row.nr_periods) {
            v.add(row.t_s, row.dt_s, n);
        }
    }
    let mut state: Vec<Group> = votes
        .iter()
        .map(|v| Group {
            book: v.as_ref().and_then(PhaseVotes::grid).map(PeriodBook::new),
            touched: None,
            clear: None,
        })
        .collect();
    // Pass 2: the spool, with the time series read as far as each row needs.
    let mut series = reader(pass2);
    let mut read_to_s = f64::NEG_INFINITY;
    let mut series_done = false;
    let file = std::fs::File::open(spool).map_err(ResultsError::io(spool))?;
    let mut lines = BufReader::with_capacity(1 << 16, file);
    let mut line = String::new();
    let mut first = true;
    loop {
        line.clear();
        if lines
            .read_line(&mut line)
            .map_err(ResultsError::io(spool))?
            == 0
        {
            break;
        }
        if std::mem::take(&mut first) {
            continue; // the spool's header
        }
        let text = line.trim_end_matches('\n');
        let Some(row) = SpoolRow::parse(text) else {
            continue; // a torn last line
        };
        let g = index(row.group.as_bytes());
        let zero = g.and_then(|g| {
            if row.loaded() {
                groups[g].load_zero_s
            } else {
                groups[g].zero_s
            }
        });
        let periods = match (g, zero) {
            (Some(g), Some(zero)) => match &state[g].book {
                Some(book) => {
                    let (due, end) = (row.due_s + zero, row.end_s + zero);
                    // Read on until the end's period has ended and been sampled.
                    let need = book.end_s(book.index(end)) + 2.0 * interval_s;
                    while !series_done && read_to_s < need {
                        if !series.read_byte_record(&mut rec).map_err(ts_err)? {
                            series_done = true;
                            break;
                        }
                        let (Some(r), Some(h)) = (cols.row(&rec), index(cols.group(&rec))) else {
                            continue;
                        };
                        if r.run != run {
                            continue;
                        }
                        read_to_s = r.t_s;
                        if let Some(b) = state[h].book.as_mut() {
                            b.observe(r.t_s, r.dt_s, r.nr_throttled.unwrap_or(0));
                        }
                    }
                    state[g].book.as_ref().map(|b| b.periods(due, end))
                }
                None => None,
            },
            _ => None,
        };
        out.row(|b| latency::write_periods(b, text, periods.as_ref()))
            .map_err(|e| out.error(e))?;
        let request = matches!(row.kind, "request" | "http" | "line");
        if let (Some(g), Some(n), true, false, false) = (
            g,
            periods.and_then(|p| p.throttled),
            request,
            row.failed,
            row.warmup,
        ) {
            let s = &mut state[g];
            let h = if n > 0 { &mut s.touched } else { &mut s.clear };
            let ns = (row.latency_s * 1e9).round().max(1_000.0) as u64;
            h.get_or_insert_with(histogram).saturating_record(ns);
        }
    }
    Ok(state
        .iter()
        .map(|s| {
            let p =
                |h: &Option<Histogram<u64>>| h.as_ref().map(Percentiles::of).unwrap_or_default();
            (s.touched.is_some() || s.clear.is_some()).then(|| Split {
                touched: p(&s.touched),
                clear: p(&s.clear),
            })
        })
        .collect())
}

fn reader<R: Read>(rows: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(rows)
}
