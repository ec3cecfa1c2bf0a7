//! Summary columns against the swept parameter, a panel per column, one line per limiter
//! (and per value of the other swept fields, and per group). The x axis is the first swept
//! field whose values are numbers or durations; when none is (a whole `limiter` table is
//! swept, as in a limiter comparison), the limiter's target share; else the swept values
//! side by side. Every run is a marker; the line joins the medians over repeats.

use super::{
    color, draw_legend, font, footer, frame, padded, DrawResult, Figure, LegendEntry, Mark,
};
use crate::report::read::{group_of, ResultDir, Table};
use crate::units::{fmt_number, fmt_seconds, is_seconds};
use fibtest::span::Span;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Columns plotted when none are asked for, those that have values, in this order.
const DEFAULT_METRICS: &[&str] = &[
    "cpu_share",
    "share_error",
    "throttled_pct",
    "throttled_s",
    "latency_p50_s",
    "latency_p99_s",
    "latency_max_s",
    "fast_iters_per_s",
    "duty_end_rate_pct",
    "group_share_pct",
    "stall_share",
    "gap_max_s",
    "leaked_stopped",
    "leaked_escaped",
];

#[derive(Debug, Clone)]
pub struct SweepSeries {
    /// Colour index: the line's place among all lines, the same in every panel.
    pub color: usize,
    /// (x, value) of every run.
    pub points: Vec<(f64, f64)>,
    /// (x, median over the runs at x).
    pub medians: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct SweepPanel {
    pub metric: String,
    pub series: Vec<SweepSeries>,
}

#[derive(Debug, Clone)]
pub enum XAxis {
    /// Numbers; `seconds` when the values were durations.
    Numeric { desc: String, seconds: bool },
    /// Values side by side at 0, 1, 2...
    Categories { desc: String, names: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct SweepFigure {
    pub title: String,
    pub scenario: String,
    /// Every line's label, in colour order.
    pub lines: Vec<String>,
    pub footer: String,
    pub x: XAxis,
    pub panels: Vec<SweepPanel>,
}

fn as_number(s: &str) -> Option<(f64, bool)> {
    let s = s.trim();
    if let Ok(v) = s.parse::<f64>() {
        return Some((v, false));
    }
    s.parse::<Span>().ok().map(|d| (d.as_secs_f64(), true))
}

/// The y axis description of a summary column, with its unit.
pub fn metric_desc(m: &str) -> String {
    let unit = if m.ends_with("_pct") {
        " (%)"
    } else if m.ends_with("_per_s") {
        " (per s)"
    } else if is_seconds(m) {
        " (s)"
    } else if m.ends_with("_share") || m == "share_error" {
        " (CPUs)"
    } else {
        ""
    };
    format!("{m}{unit}")
}

pub fn prepare(dir: &ResultDir, metrics: &[String]) -> Option<SweepFigure> {
    let s = dir.summary.as_ref()?;
    let params = s.param_columns();
    if params.is_empty() || s.len() < 2 {
        return None;
    }
    let mut configs: Vec<String> = (0..s.len())
        .map(|r| {
            params
                .iter()
                .map(|p| s.text(r, p))
                .collect::<Vec<_>>()
                .join("\u{1f}")
        })
        .collect();
    configs.sort();
    configs.dedup();
    if configs.len() < 2 {
        return None;
    }
    // The x axis.
    let numeric_param = params
        .iter()
        .find(|p| (0..s.len()).all(|r| as_number(s.text(r, p)).is_some()));
    let (x, x_param, xs): (XAxis, Option<&String>, Vec<f64>) = if let Some(p) = numeric_param {
        let seconds =
            (0..s.len()).any(|r| as_number(s.text(r, p)).is_some_and(|v| v.1)) || is_seconds(p);
        let xs = (0..s.len())
            .map(|r| as_number(s.text(r, p)).expect("checked").0)
            .collect();
        (
            XAxis::Numeric {
                desc: p["param_".len()..].to_string(),
                seconds,
            },
            Some(p),
            xs,
        )
    } else if (0..s.len()).all(|r| s.num(r, "target_share").is_some()) {
        let xs = (0..s.len())
            .map(|r| s.num(r, "target_share").expect("checked"))
            .collect();
        (
            XAxis::Numeric {
                desc: "target share (CPUs)".to_string(),
                seconds: false,
            },
            None,
            xs,
        )
    } else {
        let p = &params[0];
        let mut names: Vec<String> = Vec::new();
        for r in 0..s.len() {
            let v = s.text(r, p).to_string();
            if !names.contains(&v) {
                names.push(v);
            }
        }
        let xs = (0..s.len())
            .map(|r| {
                names
                    .iter()
                    .position(|n| n == s.text(r, p))
                    .expect("listed") as f64
            })
            .collect();
        (
            XAxis::Categories {
                desc: p["param_".len()..].to_string(),
                names,
            },
            Some(p),
            xs,
        )
    };
    // Lines: limiter kind, the other swept fields (unless x is the target share), group.
    let multi_group = (0..s.len()).any(|r| group_of(s, r) != "main");
    let key = |r: usize| -> String {
        let mut parts = vec![s.text(r, "limiter").to_string()];
        if x_param.is_some() {
            for p in params.iter().filter(|p| Some(*p) != x_param) {
                parts.push(format!("{}={}", &p["param_".len()..], s.text(r, p)));
            }
        }
        if multi_group {
            parts.push(group_of(s, r));
        }
        parts.retain(|p| !p.is_empty());
        parts.join(" ")
    };
    let mut keys: Vec<String> = Vec::new();
    for r in 0..s.len() {
        let k = key(r);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let wanted: Vec<String> = if metrics.is_empty() {
        DEFAULT_METRICS
            .iter()
            .filter(|m| (0..s.len()).any(|r| s.num(r, m).is_some_and(|v| v != 0.0)))
            .map(|m| m.to_string())
            .collect()
    } else {
        metrics.to_vec()
    };
    let panels: Vec<SweepPanel> = wanted
        .iter()
        .filter(|m| s.has_numbers(m))
        .map(|m| SweepPanel {
            metric: m.clone(),
            series: keys
                .iter()
                .enumerate()
                .map(|(i, k)| series(s, m, k, i, &xs, &key))
                .filter(|x| !x.points.is_empty())
                .collect(),
        })
        .collect();
    if panels.is_empty() {
        return None;
    }
    let x_name = match &x {
        XAxis::Numeric { desc, .. } | XAxis::Categories { desc, .. } => desc.clone(),
    };
    Some(SweepFigure {
        title: format!("{}: summary against {x_name}", dir.scenario_name()),
        lines: keys
            .iter()
            .map(|k| {
                if k.is_empty() {
                    "runs".to_string()
                } else {
                    k.clone()
                }
            })
            .collect(),
        scenario: format!(
            "scenario {}: one line per {}, a dot per run",
            dir.scenario_name(),
            line_what(x_param.is_some(), &params, multi_group)
        ),
        footer: footer(dir),
        x,
        panels,
    })
}

/// What a line stands for, for the legend's heading.
fn line_what(x_is_param: bool, params: &[String], multi_group: bool) -> String {
    let mut parts = vec!["limiter".to_string()];
    if x_is_param && params.len() > 1 {
        parts.push("other swept value".to_string());
    }
    if multi_group {
        parts.push("group".to_string());
    }
    parts.join(" and ")
}

fn series(
    s: &Table,
    metric: &str,
    k: &str,
    color: usize,
    xs: &[f64],
    key: &dyn Fn(usize) -> String,
) -> SweepSeries {
    let mut points: Vec<(f64, f64)> = (0..s.len())
        .filter(|&r| key(r) == k)
        .filter_map(|r| Some((xs[r], s.num(r, metric)?)))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut medians = Vec::new();
    let mut i = 0;
    while i < points.len() {
        let x = points[i].0;
        let at: Vec<f64> = points.iter().filter(|p| p.0 == x).map(|p| p.1).collect();
        medians.push((x, fibtest::stats::median(&at).expect("non-empty")));
        i += at.len();
    }
    SweepSeries {
        color,
        points,
        medians,
    }
}

impl Figure for SweepFigure {
    fn stem(&self) -> String {
        "sweep".to_string()
    }

    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(2) as u32;
        (1700, rows * 440 + 100)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = frame(root, &self.title, &self.footer)?;
        let (w, _) = body.dim_in_pixel();
        let (body, legend) = body.split_horizontally(w as i32 - 320);
        // Lines are the same in every panel: one legend for all.
        let entries: Vec<LegendEntry> = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| LegendEntry::new(l.clone(), color(i), Mark::Line))
            .collect();
        draw_legend(&legend, Some(&self.scenario), &entries)?;
        let cols = if self.panels.len() > 1 { 2 } else { 1 };
        let areas = body.split_evenly((self.panels.len().div_ceil(cols), cols));
        let (x_lo, x_hi, x_desc, seconds, names) = match &self.x {
            XAxis::Numeric { desc, seconds } => {
                let (lo, hi) = self
                    .panels
                    .iter()
                    .flat_map(|p| p.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)))
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                        (lo.min(v), hi.max(v))
                    });
                let (lo, hi) = padded(lo, hi, true);
                (lo, hi, desc.clone(), *seconds, Vec::new())
            }
            XAxis::Categories { desc, names } => (
                -0.5,
                names.len() as f64 - 0.5,
                desc.clone(),
                false,
                names.clone(),
            ),
        };
        for (panel, area) in self.panels.iter().zip(&areas) {
            let (lo, hi) = panel
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                });
            let (lo, hi) = padded(lo, hi, lo >= 0.0);
            let mut chart = ChartBuilder::on(area)
                .margin(14)
                .x_label_area_size(50)
                .y_label_area_size(90)
                .build_cartesian_2d(x_lo..x_hi, lo..hi)?;
            let metric_seconds = is_seconds(&panel.metric);
            let names = names.clone();
            let x_fmt = move |x: &f64| -> String {
                if !names.is_empty() {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                        let n = &names[i as usize];
                        return if n.chars().count() > 28 {
                            format!("{}…", n.chars().take(27).collect::<String>())
                        } else {
                            n.clone()
                        };
                    }
                    return String::new();
                }
                if seconds {
                    fmt_seconds(*x)
                } else {
                    fmt_number(*x)
                }
            };
            let y_fmt = |y: &f64| {
                if metric_seconds {
                    fmt_seconds(*y)
                } else {
                    fmt_number(*y)
                }
            };
            let mut mesh = chart.configure_mesh();
            mesh.x_desc(x_desc.clone())
                .y_desc(metric_desc(&panel.metric))
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .label_style(font(15))
                .axis_desc_style(font(17))
                .light_line_style(RGBColor(0xEE, 0xEE, 0xEE));
            match &self.x {
                XAxis::Categories { names, .. } => mesh.x_labels(names.len() * 2 + 1),
                XAxis::Numeric { .. } => mesh.x_labels(8),
            };
            mesh.draw()?;
            for s in &panel.series {
                let c = color(s.color);
                chart.draw_series(LineSeries::new(s.medians.clone(), c.stroke_width(2)))?;
                chart.draw_series(s.points.iter().map(|p| Circle::new(*p, 5, c.filled())))?;
            }
        }
        Ok(())
    }
}
