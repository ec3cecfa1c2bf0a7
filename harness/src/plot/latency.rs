//! Latency by percentile: every request's or slow unit's latency (latency.csv), one line
//! per run (and group and kind), on a percentile axis that spreads the tail (0%, 90%, 99%,
//! 99.9%...) and a log latency axis when the values span more than a factor of 20. For
//! requests under a CFS quota, Indeed's conceptual model [Unthrottled] is drawn as a dashed line.

use super::{color, draw_legend, font, footer, frame, DrawResult, Figure, LegendEntry, Mark};
use crate::report::read::{group_of, run_label, ResultDir, Table};
use crate::units::fmt_seconds;
use fibtest::span::Span;
use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::HashMap;

/// One line: the latencies of a run (group, kind) as a histogram, in ns.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: usize,
    /// Every latency, at 3 significant digits (memory does not grow with their number).
    pub hist: Histogram<u64>,
    /// The largest, exactly, in s.
    pub max_s: f64,
}

/// The longest latency told apart (longer ones count as this), in ns.
const MAX_NS: u64 = 24 * 3600 * 1_000_000_000;

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
}

/// A model prediction to draw, in s.
#[derive(Debug, Clone)]
pub struct ModelLine {
    pub label: String,
    pub latency_s: f64,
    /// The run's colour when runs differ; black when one line serves all.
    pub color: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct LatencyFigure {
    /// The file name: `latency`, or `latency-split` for the split by throttled periods.
    pub stem: String,
    pub title: String,
    /// The legend's heading: the scenario.
    pub scenario: String,
    pub footer: String,
    pub series: Vec<Series>,
    pub models: Vec<ModelLine>,
}

/// Indeed's conceptual model [Unthrottled]: a request needing `work_s` of CPU, alone in a cgroup with
/// `quota_s` per `period_s`, starting `phase_s` after a period boundary with that period's
/// quota unused, runs until the quota is spent, waits for the next period, and so on. From
/// a boundary it takes ceil(W/Q) − 1 full periods plus the remainder: 200 ms under
/// 40 ms / 100 ms gives 440 ms. One thread cannot spend a quota of a period or more.
pub fn model_latency(work_s: f64, quota_s: f64, period_s: f64, phase_s: f64) -> Option<f64> {
    if !(work_s > 0.0 && quota_s > 0.0 && period_s > 0.0) {
        return None;
    }
    if quota_s >= period_s {
        return Some(work_s);
    }
    let mut left = work_s;
    let mut t = 0.0;
    let mut pos = phase_s.rem_euclid(period_s);
    // Each pass ends a period, so this ends after about W / Q passes.
    loop {
        let avail = quota_s.min(period_s - pos);
        if left <= avail + 1e-12 {
            return Some(t + left);
        }
        left -= avail;
        t += period_s - pos;
        pos = 0.0;
    }
}

/// The model's prediction for a summary row, when its run is requests under a CFS quota.
fn model_for(dir: &ResultDir, s: &Table, row: usize) -> Option<f64> {
    if s.text(row, "limiter") != "cfs" || s.text(row, "workload") != "requests" {
        return None;
    }
    let quota = s.num(row, "quota_s")?;
    let period = s.num(row, "period_s")?;
    // The model is of a request alone in its cgroup: where the requests ask for more
    // than the quota, each queues behind the last and the model does not apply.
    if s.num(row, "demand_cpus")
        .is_some_and(|d| d > quota / period * 1.001)
    {
        return None;
    }
    let run: usize = s.text(row, "run").parse().ok()?;
    let w = dir.planned_workload(run, &group_of(s, row))?;
    let work: Span = w.get("work")?.as_str()?.parse().ok()?;
    let phase_us = dir
        .planned_run(run)
        .and_then(|r| r.pointer("/phase/phase_us"))
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    model_latency(work.as_secs_f64(), quota, period, phase_us / 1e6)
}

/// A series' run, group and kind.
type Key = (String, String, String);

/// Histograms and their keys.
type Found = Vec<(Key, Series)>;

/// Histograms by key, each made when its key is first seen.
#[derive(Default)]
struct Bins {
    keys: HashMap<Vec<u8>, usize>,
    out: Vec<(Key, Series)>,
}

impl Bins {
    fn record(&mut self, key: &[u8], parts: [&[u8]; 3], v: f64) {
        let i = match self.keys.get(key) {
            Some(i) => *i,
            None => {
                let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
                self.out.push((
                    (text(parts[0]), text(parts[1]), text(parts[2])),
                    Series {
                        label: String::new(),
                        color: self.out.len(),
                        hist: new_hist(),
                        max_s: 0.0,
                    },
                ));
                self.keys.insert(key.to_vec(), self.out.len() - 1);
                self.out.len() - 1
            }
        };
        let s = &mut self.out[i].1;
        s.hist
            .saturating_record(((v.max(0.0) * 1e9) as u64).clamp(1, MAX_NS));
        s.max_s = s.max_s.max(v);
    }
}

/// Read latency.csv once, row by row, into a histogram per run, group and kind, and, for
/// requests whose periods are known (answered, after any warm-up), one per run, group
/// and class: `touched` a throttled period or `clear`.
fn scan(path: &std::path::Path) -> csv::Result<(Found, Found)> {
    let mut r = csv::ReaderBuilder::new().flexible(true).from_path(path)?;
    let h = r.byte_headers()?.clone();
    let col = |n: &str| h.iter().position(|c| c == n.as_bytes());
    let (c_run, c_group, c_kind, c_lat) = (col("run"), col("group"), col("kind"), col("latency_s"));
    let (c_thr, c_err, c_warm) = (col("throttled_periods"), col("error"), col("warmup"));
    let mut all = Bins::default();
    let mut split = Bins::default();
    let mut key = Vec::new();
    let mut rec = csv::ByteRecord::new();
    while r.read_byte_record(&mut rec)? {
        let Some(v) = c_lat
            .and_then(|i| rec.get(i))
            .and_then(|b| std::str::from_utf8(b).ok()?.parse::<f64>().ok())
        else {
            continue;
        };
        let field = |c: Option<usize>, default: &'static [u8]| -> &[u8] {
            c.and_then(|i| rec.get(i)).unwrap_or(default)
        };
        let (run, group, kind) = (
            field(c_run, b"0"),
            field(c_group, b"main"),
            field(c_kind, b""),
        );
        key.clear();
        for part in [run, group, kind] {
            key.extend_from_slice(part);
            key.push(0);
        }
        all.record(&key, [run, group, kind], v);
        let request = matches!(kind, b"request" | b"http" | b"line");
        let answered = field(c_err, b"").is_empty() && field(c_warm, b"0") != b"1";
        let touched = std::str::from_utf8(field(c_thr, b""))
            .ok()
            .and_then(|t| t.parse::<u64>().ok())
            .map(|n| n > 0);
        if let (true, true, Some(t)) = (request, answered, touched) {
            let class: &[u8] = if t { b"touched" } else { b"clear" };
            key.clear();
            for part in [run, group, class] {
                key.extend_from_slice(part);
                key.push(0);
            }
            split.record(&key, [run, group, class], v);
        }
    }
    Ok((all.out, split.out))
}

/// The latency figures of `dir`: every unit's latency by run, and, when requests met
/// throttled periods, their latency split by whether they did.
pub fn prepare(dir: &ResultDir) -> Vec<LatencyFigure> {
    let Some(path) = dir.latency.as_ref() else {
        return Vec::new();
    };
    let (found, split) = match scan(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("throttlebench: cannot read latency.csv for the plot: {e}");
            return Vec::new();
        }
    };
    let mut v: Vec<LatencyFigure> = prepare_all(dir, found).into_iter().collect();
    if split.iter().any(|((_, _, class), _)| class == "touched") {
        v.push(prepare_split(dir, split));
    }
    v
}

/// Requests by whether their life touched a throttled period, a line per run and class.
fn prepare_split(dir: &ResultDir, found: Vec<(Key, Series)>) -> LatencyFigure {
    let summary = dir.summary.as_ref();
    let series = found
        .into_iter()
        .enumerate()
        .map(|(i, ((run, group, class), mut v))| {
            let row = summary.and_then(|s| {
                (0..s.len()).find(|&r| s.text(r, "run") == run && group_of(s, r) == group)
            });
            let who = match (summary, row) {
                (Some(s), Some(r)) => run_label(s, r),
                _ => format!("run {run}"),
            };
            let what = if class == "touched" {
                "touched a throttled period"
            } else {
                "met none"
            };
            v.label = format!("{who}: {} {what}", v.hist.len());
            v.color = i;
            v
        })
        .collect();
    LatencyFigure {
        stem: "latency-split".into(),
        title: format!(
            "{}: request latency, split by whether a throttled CFS period fell between due time and end",
            dir.scenario_name()
        ),
        scenario: format!("scenario {}", dir.scenario_name()),
        footer: footer(dir),
        series,
        models: Vec::new(),
    }
}

fn prepare_all(dir: &ResultDir, found: Vec<(Key, Series)>) -> Option<LatencyFigure> {
    if found.is_empty() {
        return None;
    }
    let keys: Vec<(String, String, String)> = found.iter().map(|(k, _)| k.clone()).collect();
    let values: Vec<Series> = found.into_iter().map(|(_, s)| s).collect();
    let summary = dir.summary.as_ref();
    let summary_row = |run: &str, group: &str| {
        summary.and_then(|s| {
            (0..s.len()).find(|&i| s.text(i, "run") == run && group_of(s, i) == group)
        })
    };
    let kinds: Vec<&str> = {
        let mut k: Vec<&str> = keys.iter().map(|k| k.2.as_str()).collect();
        k.sort();
        k.dedup();
        k
    };
    let mut series = Vec::new();
    let mut per_run_model: Vec<(usize, String, f64)> = Vec::new();
    for (i, ((run, group, kind), mut v)) in keys.iter().zip(values).enumerate() {
        let mut label = match (summary, summary_row(run, group)) {
            (Some(s), Some(row)) => run_label(s, row),
            _ => format!("run {run}"),
        };
        label.push_str(&format!(
            ": {} {}",
            v.hist.len(),
            match kind.as_str() {
                "slow" => "slow units",
                "http" | "line" => "requests (a load, from due time)",
                _ => "requests",
            }
        ));
        if let (Some(s), Some(row)) = (summary, summary_row(run, group)) {
            if kind == "request" {
                if let Some(m) = model_for(dir, s, row) {
                    per_run_model.push((i, run_label(s, row), m));
                }
            }
        }
        v.label = label;
        v.color = i;
        series.push(v);
    }
    let mut models = Vec::new();
    let all_same = per_run_model
        .windows(2)
        .all(|w| (w[0].2 - w[1].2).abs() < 1e-9);
    if all_same {
        if let Some((_, _, m)) = per_run_model.first() {
            models.push(ModelLine {
                label: format!("conceptual model [Unthrottled]: {}", fmt_seconds(*m)),
                latency_s: *m,
                color: None,
            });
        }
    } else {
        for (i, label, m) in &per_run_model {
            models.push(ModelLine {
                label: format!(
                    "conceptual model [Unthrottled], {label}: {}",
                    fmt_seconds(*m)
                ),
                latency_s: *m,
                color: Some(*i),
            });
        }
    }
    let what = match kinds.as_slice() {
        ["request"] => "request latency",
        ["slow"] => "slow-unit latency",
        ["http"] | ["line"] => "request latency from due time",
        _ => "latency",
    };
    Some(LatencyFigure {
        stem: "latency".into(),
        title: format!("{}: {what} by percentile", dir.scenario_name()),
        scenario: format!("scenario {}", dir.scenario_name()),
        footer: footer(dir),
        series,
        models,
    })
}

/// Percentile axis position of p (0 <= p < 1): −log10(1 − p), so 90% is 1, 99% is 2.
fn px(p: f64) -> f64 {
    -(1.0 - p).log10()
}

fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x.ceil() as i32 - 2).max(0) as usize;
    format!("{p:.decimals$}%")
}

/// Labels of a log axis: 1, 2 and 5 times the powers of ten in [lo, hi], or the powers
/// alone when those would crowd it.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let pick = |ms: &[f64]| -> Vec<f64> {
        (a..=b)
            .flat_map(|k| ms.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    let fine = pick(&[1.0, 2.0, 5.0]);
    if fine.len() <= 10 {
        fine
    } else {
        pick(&[1.0])
    }
}

/// Points of a series on the percentile axis: its latency at about 2000 percentiles
/// spread evenly over the axis (nearest rank over the histogram, never above the
/// largest latency), then the largest at the end.
fn steps(s: &Series) -> Vec<(f64, f64)> {
    let n = s.hist.len().max(1);
    let end = px(1.0 - 0.5 / n as f64);
    let mut pts = Vec::new();
    let k = 2000;
    for i in 0..=k {
        let x = end * i as f64 / k as f64;
        let p = 1.0 - 10f64.powf(-x);
        let v = (s.hist.value_at_quantile(p) as f64 / 1e9).min(s.max_s);
        pts.push((x, v));
    }
    pts.push((end, s.max_s));
    pts
}

/// The smallest latency of a series, in s.
fn min_s(s: &Series) -> f64 {
    s.hist.min() as f64 / 1e9
}

macro_rules! latency_chart {
    ($area:expr, $fig:expr, $xmax:expr, $y:expr) => {{
        let fig: &LatencyFigure = $fig;
        let mut chart = ChartBuilder::on($area)
            .margin(16)
            .margin_right(40)
            .x_label_area_size(56)
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..$xmax, $y)?;
        chart
            .configure_mesh()
            .x_desc("percentile (log scale of the tail: 90%, 99%, 99.9% ...)")
            .y_desc("latency from when the work was due")
            .x_labels($xmax as usize + 1)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| fmt_seconds(*y))
            .label_style(font(16))
            .axis_desc_style(font(18))
            .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
            .draw()?;
        for s in &fig.series {
            let c = color(s.color);
            chart.draw_series(LineSeries::new(steps(s), c.stroke_width(3)))?;
        }
        for m in &fig.models {
            let c = m.color.map(color).unwrap_or(BLACK);
            let style = c.stroke_width(2);
            chart.draw_series(DashedLineSeries::new(
                vec![(0.0, m.latency_s), ($xmax, m.latency_s)],
                10,
                6,
                style,
            ))?;
        }
    }};
}

impl Figure for LatencyFigure {
    fn stem(&self) -> String {
        self.stem.clone()
    }

    fn size(&self) -> (u32, u32) {
        (1500, 800)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = frame(root, &self.title, &self.footer)?;
        let (w, _) = body.dim_in_pixel();
        let (body, legend) = body.split_horizontally(w as i32 - 380);
        let mut entries: Vec<LegendEntry> = self
            .series
            .iter()
            .map(|s| LegendEntry::new(s.label.clone(), color(s.color), Mark::Line))
            .collect();
        entries.extend(self.models.iter().map(|m| {
            LegendEntry::new(
                m.label.clone(),
                m.color.map(color).unwrap_or(BLACK),
                Mark::Dashed,
            )
        }));
        draw_legend(&legend, Some(&self.scenario), &entries)?;
        let n_max = self.series.iter().map(|s| s.hist.len()).max().unwrap_or(1);
        let xmax = px(1.0 - 0.5 / n_max as f64).ceil().max(1.0);
        let all = self
            .series
            .iter()
            .flat_map(|s| [min_s(s), s.max_s])
            .chain(self.models.iter().map(|m| m.latency_s));
        let (lo, hi) = all.fold((f64::INFINITY, 0f64), |(lo, hi), v| {
            (if v > 0.0 { lo.min(v) } else { lo }, hi.max(v))
        });
        let hi = if hi > 0.0 { hi } else { 1e-3 };
        let lo = if lo.is_finite() { lo } else { hi / 10.0 };
        if hi / lo > 20.0 {
            let (lo, hi) = (lo * 0.7, hi * 1.6);
            latency_chart!(
                &body,
                self,
                xmax,
                (lo..hi).log_scale().with_key_points(log_ticks(lo, hi))
            );
        } else {
            latency_chart!(&body, self, xmax, 0f64..hi * 1.25);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indeeds_conceptual_model() {
        let m = |w, q, p, ph| model_latency(w, q, p, ph).unwrap();
        assert!((m(0.2, 0.04, 0.1, 0.0) - 0.44).abs() < 1e-9);
        // Later in the period: 20 ms less for every 20 ms while the quota still fits.
        assert!((m(0.2, 0.04, 0.1, 0.02) - 0.42).abs() < 1e-9);
        assert!((m(0.2, 0.04, 0.1, 0.06) - 0.38).abs() < 1e-9);
        // Only 20 ms left in the first period: back to 440 ms.
        assert!((m(0.2, 0.04, 0.1, 0.08) - 0.44).abs() < 1e-9);
        assert!((m(0.03, 0.04, 0.1, 0.0) - 0.03).abs() < 1e-9);
        assert!((m(0.2, 0.1, 0.1, 0.0) - 0.2).abs() < 1e-9);
        assert_eq!(model_latency(0.2, 0.0, 0.1, 0.0), None);
    }

    #[test]
    fn percentile_axis() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        let series = |values: &[f64]| {
            let mut hist = new_hist();
            for v in values {
                hist.record((v * 1e9) as u64).unwrap();
            }
            Series {
                label: String::new(),
                color: 0,
                hist,
                max_s: values.iter().copied().fold(0.0, f64::max),
            }
        };
        // Four latencies: the curve starts at the smallest, ends at the largest at the
        // position of the last rank, and steps through each (within 0.1%).
        let s = steps(&series(&[1.0, 2.0, 3.0, 4.0]));
        assert!((s[0].1 - 1.0).abs() < 1e-3, "{:?}", s[0]);
        let last = s.last().unwrap();
        assert_eq!(last.1, 4.0);
        assert!((last.0 - px(1.0 - 0.125)).abs() < 1e-12);
        for v in [2.0, 3.0] {
            assert!(s.iter().any(|p| (p.1 - v).abs() < v * 1e-3), "{v}");
        }
        // A hundred thousand: still about 2000 points.
        assert!(steps(&series(&vec![1.0; 100_000])).len() <= 2002);
        let t = log_ticks(3e-5, 5e-3);
        assert_eq!(t.len(), 7);
        assert!((t[0] - 5e-5).abs() < 1e-12 && (t[6] - 5e-3).abs() < 1e-12);
        assert_eq!(log_ticks(1e-6, 10.0).len(), 8);
    }
}
