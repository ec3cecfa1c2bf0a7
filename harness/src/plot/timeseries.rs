//! One run over time (timeseries.csv), one file per run, four panels sharing the time
//! axis: CPU usage with the limit, throttled share per period, throttled time so far, and
//! the time lost outside the cgroup's control (steal, PSI, and observed stalls when the
//! folder has a `stall_s` column). Rates are means over one CFS period (100 ms without a
//! quota), the time scale the throttling happens on.

use super::{draw_legend, font, footer, frame, padded, DrawResult, Figure, LegendEntry, Mark};
use crate::report::read::{group_of, run_label, ResultDir, Table};
use crate::units::{fmt_number, fmt_seconds};
use plotters::coord::Shift;
use plotters::prelude::*;

#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub color: Option<usize>,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct Panel {
    pub y_desc: String,
    pub lines: Vec<Line>,
    /// Whether the values are seconds (axis labels in s/ms).
    pub seconds: bool,
}

#[derive(Debug, Clone)]
pub struct TimeseriesFigure {
    pub run: String,
    pub title: String,
    pub footer: String,
    pub panels: Vec<Panel>,
    pub t_max: f64,
}

/// Sums of each column over consecutive samples until `window_s` is covered, divided by
/// the time covered; points at the window's end.
fn windowed(t: &Table, rows: &[usize], column: &str, window_s: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let (mut sum, mut dt) = (0.0, 0.0);
    for &r in rows {
        let (Some(ts), Some(d)) = (t.num(r, "t_s"), t.num(r, "dt_s")) else {
            continue;
        };
        sum += t.num(r, column).unwrap_or(0.0);
        dt += d;
        if dt >= window_s * 0.999 {
            out.push((ts, if dt > 0.0 { sum / dt } else { 0.0 }));
            sum = 0.0;
            dt = 0.0;
        }
    }
    out
}

fn cumulative(t: &Table, rows: &[usize], column: &str) -> Vec<(f64, f64)> {
    let mut acc = 0.0;
    let mut out = vec![(0.0, 0.0)];
    for &r in rows {
        if let Some(ts) = t.num(r, "t_s") {
            acc += t.num(r, column).unwrap_or(0.0);
            out.push((ts, acc));
        }
    }
    out
}

pub fn prepare(dir: &ResultDir) -> Vec<TimeseriesFigure> {
    let Some(ts) = dir.timeseries.as_ref().filter(|t| !t.is_empty()) else {
        return Vec::new();
    };
    let mut runs: Vec<String> = (0..ts.len())
        .map(|r| ts.text(r, "run").to_string())
        .collect();
    runs.dedup();
    let mut seen = Vec::new();
    runs.retain(|r| {
        let new = !seen.contains(r);
        seen.push(r.clone());
        new
    });
    runs.into_iter().map(|run| figure(dir, ts, &run)).collect()
}

fn figure(dir: &ResultDir, ts: &Table, run: &str) -> TimeseriesFigure {
    let rows = ts.rows_where("run", run);
    let mut groups: Vec<String> = Vec::new();
    for &r in &rows {
        let g = group_of(ts, r);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let summary = dir.summary.as_ref();
    let srow = |g: &str| {
        summary.and_then(|s| (0..s.len()).find(|&i| s.text(i, "run") == run && group_of(s, i) == g))
    };
    let first = groups.first().cloned().unwrap_or_else(|| "main".into());
    let period = summary
        .zip(srow(&first))
        .and_then(|(s, i)| s.num(i, "period_s"))
        .filter(|p| *p > 0.0);
    let window = period.unwrap_or(0.1);
    let window_text = fmt_seconds(window);
    let multi = groups.len() > 1;
    let name = |g: &str, what: &str| {
        if multi {
            format!("{g}: {what}")
        } else {
            what.to_string()
        }
    };
    let (mut usage, mut throttled, mut cum, mut lost) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (gi, g) in groups.iter().enumerate() {
        let grows: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&r| group_of(ts, r) == *g)
            .collect();
        usage.push(Line {
            label: name(g, &format!("CPU usage, mean per {window_text}")),
            color: Some(gi),
            dashed: false,
            points: windowed(ts, &grows, "usage_s", window),
        });
        let th = windowed(ts, &grows, "throttled_s", window);
        let never = th.iter().all(|p| p.1 == 0.0);
        throttled.push(Line {
            label: name(
                g,
                &format!(
                    "throttled time per {window_text} period{}",
                    if never { " (never throttled)" } else { "" }
                ),
            ),
            color: Some(gi),
            dashed: false,
            points: th,
        });
        let c = cumulative(ts, &grows, "throttled_s");
        let periods: f64 = grows
            .iter()
            .filter_map(|&r| ts.num(r, "nr_throttled"))
            .sum();
        cum.push(Line {
            label: name(
                g,
                &format!(
                    "throttled time so far (total {}, {} throttled periods)",
                    fmt_seconds(c.last().map(|p| p.1).unwrap_or(0.0)),
                    periods
                ),
            ),
            color: Some(gi),
            dashed: false,
            points: c,
        });
        if let Some((s, i)) = summary.zip(srow(g)) {
            let limit = s
                .num(i, "target_share")
                .or_else(|| Some(s.num(i, "quota_s")? / s.num(i, "period_s")?));
            if let Some(l) = limit {
                usage.push(Line {
                    label: name(
                        g,
                        &format!("limit {} CPUs ({})", fmt_number(l), s.text(i, "limiter")),
                    ),
                    color: if multi { Some(gi) } else { None },
                    dashed: true,
                    points: Vec::new(),
                });
                if let Some(last) = usage.last_mut() {
                    last.points = vec![(0.0, l), (f64::INFINITY, l)];
                }
            }
        }
        // Steal and PSI are machine-wide: drawn once. Stalls belong to the group.
        if gi == 0 {
            for (col, what, ci) in [
                (
                    "steal_s",
                    "steal: CPU time the hypervisor took (/proc/stat, all CPUs)",
                    6,
                ),
                (
                    "psi_some_s",
                    "PSI cpu some: share of time a task waited for a CPU (throttling included)",
                    7,
                ),
            ] {
                if ts.has(col) {
                    lost.push(Line {
                        label: what.to_string(),
                        color: Some(ci),
                        dashed: false,
                        points: windowed(ts, &grows, col, window),
                    });
                }
            }
        }
        if ts.has("stall_s") {
            lost.push(Line {
                label: name(g, "observed stalls"),
                color: Some(gi + 2),
                dashed: false,
                points: windowed(ts, &grows, "stall_s", window),
            });
        }
        // A steal probe's stalls, all its CPUs together, from steal_timeseries.csv.
        if let Some(st) = dir.stalls.as_ref() {
            let srows: Vec<usize> = st
                .rows_where("run", run)
                .into_iter()
                .filter(|&r| group_of(st, r) == *g && st.text(r, "cpu") == "all")
                .collect();
            if !srows.is_empty() {
                lost.push(Line {
                    label: name(g, "observed stalls (steal probe, its CPUs together)"),
                    color: Some(gi + 2),
                    dashed: false,
                    points: windowed(st, &srows, "stall_s", window),
                });
            }
        }
    }
    let t_max = rows
        .iter()
        .filter_map(|&r| ts.num(r, "t_s"))
        .fold(0.0, f64::max)
        .max(window);
    for l in usage.iter_mut().filter(|l| l.dashed) {
        for p in l.points.iter_mut() {
            if p.0.is_infinite() {
                p.0 = t_max;
            }
        }
    }
    let label = match summary.zip(srow(&first)) {
        Some((s, i)) => {
            let l = run_label(s, i);
            if multi {
                // run_label names the first group; the figure has them all.
                l.trim_end_matches(&format!(" {first}")).to_string()
            } else {
                l
            }
        }
        None => format!("run {run}"),
    };
    TimeseriesFigure {
        run: run.to_string(),
        title: format!("{} {label}: over time", dir.scenario_name()),
        footer: footer(dir),
        panels: vec![
            Panel {
                y_desc: "CPU usage (CPUs)".into(),
                lines: usage,
                seconds: false,
            },
            Panel {
                y_desc: "throttled (thread-s per s)".into(),
                lines: throttled,
                seconds: false,
            },
            Panel {
                y_desc: "throttled time (s)".into(),
                lines: cum,
                seconds: true,
            },
            Panel {
                y_desc: "waiting, stolen (s per s)".into(),
                lines: lost,
                seconds: false,
            },
        ],
        t_max,
    }
}

impl Figure for TimeseriesFigure {
    fn stem(&self) -> String {
        format!("timeseries-run{}", self.run)
    }

    fn size(&self) -> (u32, u32) {
        (1500, 1200)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = frame(root, &self.title, &self.footer)?;
        let areas = body.split_evenly((self.panels.len(), 1));
        for (pi, (panel, area)) in self.panels.iter().zip(&areas).enumerate() {
            let (w, _) = area.dim_in_pixel();
            let (area, legend) = area.split_horizontally(w as i32 - 360);
            let entries: Vec<LegendEntry> = panel
                .lines
                .iter()
                .map(|l| {
                    let c = l.color.map(super::color).unwrap_or(BLACK);
                    LegendEntry::new(
                        l.label.clone(),
                        c,
                        if l.dashed { Mark::Dashed } else { Mark::Line },
                    )
                })
                .collect();
            draw_legend(&legend, None, &entries)?;
            let (lo, hi) = panel
                .lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
                .fold((0f64, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
            let (lo, hi) = padded(lo, hi.max(if panel.seconds { 0.001 } else { 0.01 }), true);
            let last = pi + 1 == self.panels.len();
            let mut chart = ChartBuilder::on(&area)
                .margin_left(16)
                .margin_right(24)
                .margin_top(8)
                .x_label_area_size(if last { 50 } else { 26 })
                .y_label_area_size(90)
                .build_cartesian_2d(0f64..self.t_max, lo..hi)?;
            let seconds = panel.seconds;
            let y_fmt = |y: &f64| {
                if seconds {
                    fmt_seconds(*y)
                } else {
                    fmt_number(*y)
                }
            };
            let mut mesh = chart.configure_mesh();
            mesh.y_desc(panel.y_desc.clone())
                .x_label_formatter(&|x| fmt_number(*x))
                .y_label_formatter(&y_fmt)
                .y_labels(5)
                .label_style(font(15))
                .axis_desc_style(font(17))
                .light_line_style(RGBColor(0xEE, 0xEE, 0xEE));
            if last {
                mesh.x_desc("time since the run's start (s)");
            }
            mesh.draw()?;
            for line in &panel.lines {
                let c = line.color.map(super::color).unwrap_or(BLACK);
                let style = c.stroke_width(2);
                if line.dashed {
                    chart.draw_series(DashedLineSeries::new(line.points.clone(), 10, 6, style))?;
                } else {
                    chart.draw_series(LineSeries::new(line.points.clone(), style))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_one_period() {
        let cols = ["run", "t_s", "dt_s", "usage_s"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // 10 ms samples: 4 busy, 6 idle, twice.
        let rows = (0..20)
            .map(|i| {
                let busy = if i % 10 < 4 { "0.01" } else { "0" };
                vec![
                    "0".into(),
                    format!("{}", (i + 1) as f64 * 0.01),
                    "0.01".into(),
                    busy.into(),
                ]
            })
            .collect();
        let t = Table::new(cols, rows);
        let all: Vec<usize> = (0..20).collect();
        let w = windowed(&t, &all, "usage_s", 0.1);
        assert_eq!(w.len(), 2);
        assert!((w[0].1 - 0.4).abs() < 1e-9 && (w[0].0 - 0.1).abs() < 1e-9);
        let c = cumulative(&t, &all, "usage_s");
        assert!((c.last().unwrap().1 - 0.08).abs() < 1e-9);
    }
}
