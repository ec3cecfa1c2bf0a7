//! `report --as-scraped`: a stored run's or watch's throttling as a Prometheus scrape and
//! its `increase()` window saw it (`crate::as_scraped`), beside the per-period truth.
//!
//! Each group's series is read from timeseries.csv row by row. Rows that counted no CFS
//! period (nine in ten at 10 ms samples of a 100 ms period) are folded into the next row
//! that did: they change neither counter a scrape reads nor any episode (see
//! `crate::episodes`), so the replay is the same and the series kept in memory is about
//! one entry per period (40 bytes), not per sample. A watch's groups start from their
//! counters at the first read (run.json `groups[].start`); a run's cgroup from 0.

use super::export::{Cell, Table};
use super::files::timeseries::Columns;
use super::read::{group_of, ReadError, ResultDir};
use crate::as_scraped::promql::{AlertState, PromVersion};
use crate::as_scraped::{as_scraped, AsScraped, ScrapeConfig, StartTotals};
use crate::episodes::ThrottleDelta;
use std::collections::HashMap;

/// One group's series of one run of a folder.
#[derive(Debug, Clone)]
pub struct GroupSeries {
    pub run: usize,
    pub group: String,
    /// The CFS period, s (the summary's `period_s`; 100 ms when it has none).
    pub period_s: f64,
    /// The counters at the series' start.
    pub start: StartTotals,
    pub series: Vec<ThrottleDelta>,
}

/// Folds the rows that counted no period into the next one.
#[derive(Debug, Default)]
struct Folder {
    pending: Option<ThrottleDelta>,
}

impl Folder {
    /// Take a row; what is to be kept goes to `out`.
    fn push(&mut self, d: ThrottleDelta, out: &mut Vec<ThrottleDelta>) {
        let counted = d.nr_periods.is_some_and(|p| p > 0);
        let reported = d.nr_periods.is_some() && d.nr_throttled.is_some();
        if !reported {
            // A row without the counters (it cuts an episode) is kept, after what was
            // pending.
            out.extend(self.pending.take());
            out.push(d);
            return;
        }
        let merged = match self.pending.take() {
            Some(p) => ThrottleDelta {
                t_s: d.t_s,
                dt_s: d.dt_s + p.dt_s,
                nr_periods: d.nr_periods,
                nr_throttled: d.nr_throttled,
                throttled_s: match (p.throttled_s, d.throttled_s) {
                    (Some(a), Some(b)) => Some(a + b),
                    _ => None,
                },
            },
            None => d,
        };
        if counted {
            out.push(merged);
        } else {
            self.pending = Some(merged);
        }
    }

    fn finish(&mut self) -> Option<ThrottleDelta> {
        self.pending.take()
    }
}

#[derive(serde::Deserialize)]
struct WatchGroups {
    #[serde(default)]
    groups: Vec<WatchGroup>,
}

#[derive(serde::Deserialize)]
struct WatchGroup {
    name: String,
    start: WatchStart,
}

#[derive(serde::Deserialize)]
struct WatchStart {
    nr_periods: u64,
    nr_throttled: u64,
}

/// The counters each watched group started from (empty for a run's folder).
fn start_totals(dir: &ResultDir) -> HashMap<String, StartTotals> {
    let path = dir.dir.join("run.json");
    let Ok(f) = std::fs::File::open(&path) else {
        return HashMap::new();
    };
    let Ok(w) = serde_json::from_reader::<_, WatchGroups>(std::io::BufReader::new(f)) else {
        return HashMap::new();
    };
    w.groups
        .into_iter()
        .map(|g| {
            (
                g.name,
                StartTotals {
                    nr_periods: g.start.nr_periods,
                    nr_throttled: g.start.nr_throttled,
                },
            )
        })
        .collect()
}

/// Every group's series of `dir`, in the order first seen in timeseries.csv.
pub fn read_series(dir: &ResultDir) -> Result<Vec<GroupSeries>, ReadError> {
    let path = dir.timeseries.clone().ok_or_else(|| ReadError {
        path: dir.dir.join("timeseries.csv"),
        what: "missing: a folder of `run` or `watch` has one".into(),
    })?;
    let err = |e: csv::Error| ReadError {
        path: path.clone(),
        what: e.to_string(),
    };
    let starts = start_totals(dir);
    let period = |run: usize, group: &str| {
        dir.summary
            .as_ref()
            .and_then(|s| {
                (0..s.len())
                    .find(|&i| s.text(i, "run") == run.to_string() && group_of(s, i) == group)
                    .and_then(|i| s.num(i, "period_s"))
            })
            .filter(|p| *p > 0.0)
            .unwrap_or(0.1)
    };
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&path)
        .map_err(err)?;
    let cols = Columns::of(r.byte_headers().map_err(err)?);
    let mut out: Vec<(GroupSeries, Folder)> = Vec::new();
    let mut index: HashMap<(usize, Vec<u8>), usize> = HashMap::new();
    let mut rec = csv::ByteRecord::new();
    while r.read_byte_record(&mut rec).map_err(err)? {
        let Some(row) = cols.row(&rec) else {
            continue;
        };
        let key = (row.run, cols.group(&rec).to_vec());
        let i = match index.get(&key) {
            Some(i) => *i,
            None => {
                let group = String::from_utf8_lossy(&key.1).to_string();
                out.push((
                    GroupSeries {
                        run: row.run,
                        period_s: period(row.run, &group),
                        start: starts.get(&group).copied().unwrap_or_default(),
                        group,
                        series: Vec::new(),
                    },
                    Folder::default(),
                ));
                index.insert(key, out.len() - 1);
                out.len() - 1
            }
        };
        let (g, f) = &mut out[i];
        let d = ThrottleDelta {
            t_s: row.t_s,
            dt_s: row.dt_s,
            nr_periods: row.nr_periods,
            nr_throttled: row.nr_throttled,
            throttled_s: row.throttled_s,
        };
        f.push(d, &mut g.series);
    }
    Ok(out
        .into_iter()
        .map(|(mut g, mut f)| {
            if let Some(d) = f.finish() {
                g.series.push(d);
            }
            g
        })
        .collect())
}

/// A group of a folder as the monitoring saw it (`Err`: the kernel did not report its
/// throttling).
pub struct Seen {
    pub folder: String,
    pub series: GroupSeries,
    pub seen: Result<AsScraped, crate::episodes::NotReported>,
}

/// Replay every group of `dir` with `config` (its `start_totals` are the group's).
///
/// Rules are evaluated from the first full window after the series' start on: before
/// it, a window would hold only part of what a Prometheus that had scraped all along
/// saw (the counters before the series are not known), and its ratio would be too high
/// or too low. A series shorter than one window is evaluated from its start.
pub fn replay(dir: &ResultDir, config: &ScrapeConfig) -> Result<Vec<Seen>, ReadError> {
    let folder = dir.dir.display().to_string();
    Ok(read_series(dir)?
        .into_iter()
        .map(|g| {
            let mut c = *config;
            c.start_totals = g.start;
            let length = match (g.series.first(), g.series.last()) {
                (Some(a), Some(b)) => b.t_s - (a.t_s - a.dt_s),
                _ => 0.0,
            };
            c.eval_offset_s = if length >= c.window_s {
                c.window_s
            } else {
                0.0
            };
            let seen = as_scraped(&g.series, g.period_s, &c);
            Seen {
                folder: folder.clone(),
                series: g,
                seen,
            }
        })
        .collect())
}

fn pct(v: Option<f64>) -> Cell {
    Cell::opt(v.map(|x| x * 100.0), 1)
}

fn alert_text(a: &AsScraped) -> String {
    if let Some(t) = a.first_firing_s {
        return format!("fired at {t:.0} s");
    }
    if a.evaluations.iter().all(|e| e.scraped_ratio.is_none()) {
        // A series shorter than a rule interval or two scrapes: the expression never had a
        // value, which is not the same as staying below the threshold.
        "no data at any evaluation".into()
    } else if a.evaluations.iter().any(|e| e.alert == AlertState::Pending) {
        "pending, never fired".into()
    } else {
        "never crossed".into()
    }
}

/// The tables: one row per group (the scraped view beside the truth), and the episodes
/// each group's view averaged away (the longest `max_listed` of each group).
pub fn tables(seen: &[Seen], config: &ScrapeConfig, max_listed: usize) -> Vec<Table> {
    // As the flags and PromQL write them: 15s, 5m, 1h.
    let human = |s: f64| {
        let whole = s.round() as u64;
        match whole {
            _ if (s - whole as f64).abs() > 1e-9 || whole == 0 => {
                crate::units::fmt_seconds(s).replace(' ', "")
            }
            _ if whole.is_multiple_of(3600) => format!("{}h", whole / 3600),
            _ if whole.is_multiple_of(60) => format!("{}m", whole / 60),
            _ => format!("{whole}s"),
        }
    };
    let mut groups = Table::new(
        format!(
            "What your monitoring sees: scraped every {}, increase()[{}], rules every {}, alert above {}% for {} ({})",
            human(config.interval_s),
            human(config.window_s),
            human(config.eval_interval_s),
            config.threshold * 100.0,
            human(config.for_s),
            match config.version {
                PromVersion::Before2_51 => "Prometheus before 2.51",
                PromVersion::Before3 => "Prometheus 2.51 to 2.55",
                PromVersion::V3 => "Prometheus 3",
            }
        ),
        &[
            "folder",
            "run",
            "group",
            "length_s",
            "periods",
            "throttled_pct",
            "worst_window_true_pct",
            "worst_window_scraped_pct",
            "alert",
            "episodes",
            "longest_episode_s",
            "averaged_away",
        ],
    );
    let mut away = Table::new(
        "Episodes the scraped view averaged away (every period in them throttled)",
        &[
            "folder",
            "run",
            "group",
            "start_s",
            "length_s",
            "periods",
            "throttled_s",
            "highest_scraped_pct",
        ],
    );
    for s in seen {
        let g = &s.series;
        let length = g.series.last().map(|d| d.t_s).unwrap_or(0.0)
            - g.series.first().map(|d| d.t_s - d.dt_s).unwrap_or(0.0);
        let mut row: Vec<Cell> = vec![
            s.folder.clone().into(),
            Cell::num(g.run as f64, 0),
            g.group.clone().into(),
            Cell::num(length, 1),
        ];
        match &s.seen {
            Err(e) => {
                row.push(Cell::Empty);
                row.push(Cell::Text(e.to_string()));
                groups.push(row);
                continue;
            }
            Ok(a) => {
                let longest = a
                    .episodes
                    .iter()
                    .map(|e| e.episode.length_s())
                    .fold(None, |m: Option<f64>, l| Some(m.map_or(l, |m| m.max(l))));
                let averaged: Vec<_> = a.averaged_away().collect();
                row.extend([
                    Cell::num(a.periods as f64, 0),
                    pct((a.periods > 0).then(|| a.throttled_periods as f64 / a.periods as f64)),
                    pct(a.max_true_ratio()),
                    pct(a.max_scraped_ratio()),
                    alert_text(a).into(),
                    Cell::num(a.episodes.len() as f64, 0),
                    Cell::opt(longest, 2),
                    Cell::num(averaged.len() as f64, 0),
                ]);
                groups.push(row);
                let mut listed = averaged.clone();
                listed.sort_by(|x, y| y.episode.length_s().total_cmp(&x.episode.length_s()));
                for e in listed.iter().take(max_listed) {
                    away.push(vec![
                        s.folder.clone().into(),
                        Cell::num(g.run as f64, 0),
                        g.group.clone().into(),
                        Cell::num(e.episode.start_s, 2),
                        Cell::num(e.episode.length_s(), 2),
                        Cell::num(e.episode.periods as f64, 0),
                        Cell::opt(e.episode.throttled_s, 3),
                        pct(e.max_scraped_ratio),
                    ]);
                }
                if listed.len() > max_listed {
                    away.notes.push(format!(
                        "{} run {} {}: {} more, shorter",
                        s.folder,
                        g.run,
                        g.group,
                        listed.len() - max_listed
                    ));
                }
            }
        }
    }
    if away.rows.is_empty() {
        away.notes.push("none".into());
    }
    groups.notes.push(
        "throttled_pct: throttled periods of all periods, every period counted; worst_window_true_pct: the highest such ratio over one increase() window ending at a rule evaluation; worst_window_scraped_pct: what the alert's expression gave there; rules are evaluated from the first full window after a series' start (from its start if it is shorter)".into(),
    );
    vec![groups, away]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(t: f64, p: Option<u64>, k: u64) -> ThrottleDelta {
        ThrottleDelta {
            t_s: t,
            dt_s: 0.01,
            nr_periods: p,
            nr_throttled: p.map(|_| k),
            throttled_s: Some(0.001),
        }
    }

    #[test]
    fn rows_without_a_period_fold_into_the_next_and_the_replay_is_unchanged() {
        // 10 ms rows of a 100 ms period for 60 s, throttled from 20 s to 32 s.
        let mut all = Vec::new();
        for i in 1..=6000u64 {
            let t = i as f64 * 0.01;
            let p = u64::from(i % 10 == 0);
            let k = p * u64::from((20.0..32.0).contains(&t));
            all.push(d(t, Some(p), k));
        }
        let mut f = Folder::default();
        let mut folded = Vec::new();
        for x in &all {
            f.push(*x, &mut folded);
        }
        folded.extend(f.finish());
        assert_eq!(folded.len(), 600);
        assert!((folded[0].dt_s - 0.1).abs() < 1e-9);
        assert!((folded[0].throttled_s.unwrap() - 0.01).abs() < 1e-9);
        let c = ScrapeConfig::cpu_throttling_high(15.0, 60.0);
        let a = as_scraped(&all, 0.1, &c).unwrap();
        let b = as_scraped(&folded, 0.1, &c).unwrap();
        assert_eq!(a.evaluations.len(), b.evaluations.len());
        for (x, y) in a.evaluations.iter().zip(&b.evaluations) {
            assert!((x.t_s - y.t_s).abs() < 1e-9);
            assert_eq!(
                (x.scraped_ratio, x.true_ratio, x.alert),
                (y.scraped_ratio, y.true_ratio, y.alert)
            );
        }
        assert_eq!(a.episodes.len(), b.episodes.len());
        assert_eq!(a.episodes[0].episode.periods, b.episodes[0].episode.periods);
        assert!((a.episodes[0].episode.start_s - b.episodes[0].episode.start_s).abs() < 1e-9);
        // A row without the counters is kept (it cuts an episode), after what was pending.
        let mut f = Folder::default();
        let mut out = Vec::new();
        f.push(d(0.01, Some(0), 0), &mut out);
        assert!(out.is_empty());
        f.push(d(0.02, None, 0), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].nr_periods, None);
    }

    #[test]
    fn a_series_the_rule_never_had_a_value_for_says_so_not_that_it_never_crossed() {
        // 10 s throttled in every period: shorter than the minute between evaluations.
        let rows: Vec<ThrottleDelta> = (1..=100).map(|i| d(i as f64 * 0.1, Some(1), 1)).collect();
        let c = ScrapeConfig::cpu_throttling_high(15.0, 300.0);
        let a = as_scraped(&rows, 0.1, &c).unwrap();
        assert!(a.evaluations.iter().all(|e| e.scraped_ratio.is_none()));
        assert_eq!(alert_text(&a), "no data at any evaluation");
        // Ten minutes of it: evaluated, above 25%, pending for less than 15 minutes.
        let rows: Vec<ThrottleDelta> = (1..=6000).map(|i| d(i as f64 * 0.1, Some(1), 1)).collect();
        let a = as_scraped(&rows, 0.1, &c).unwrap();
        assert_eq!(alert_text(&a), "pending, never fired");
    }
}
