//! One run over time (timeseries.csv), one file per run, four panels sharing the time
//! axis: CPU usage with the limit, throttled share per period, throttled time so far, and
//! the time lost outside the cgroup's control (steal, PSI, and observed stalls when the
//! folder has a `stall_s` column). Rates are means over one CFS period (100 ms without a
//! quota), the time scale the throttling happens on.

use super::reduce::{Reduced, Windowed};
use super::{draw_legend, font, footer, frame, padded, DrawResult, Figure, LegendEntry, Mark};
use crate::report::read::{group_of, run_label, ResultDir};
use crate::units::{fmt_number, fmt_seconds};
use fibtest::span::Span;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub color: Option<usize>,
    pub dashed: bool,
    /// Drawn as marks, not joined (the gaps of missed ticks).
    pub marks: bool,
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

/// The interval a run was sampled at, from the plan in run.json (10 ms if unknown).
fn sample_interval(dir: &ResultDir, run: usize) -> f64 {
    dir.planned_run(run)
        .and_then(|r| r.get("sample_interval")?.as_str()?.parse::<Span>().ok())
        .map(|s| s.as_secs_f64())
        .unwrap_or(0.01)
}

/// One group of one run, accumulated while timeseries.csv is read.
struct GroupAcc {
    name: String,
    usage: Windowed,
    throttled: Windowed,
    throttled_total: f64,
    throttled_periods: u64,
    cumulative: Reduced,
    steal: Windowed,
    psi: Windowed,
    stall: Windowed,
    probe_stall: Windowed,
    /// The group's own quota over time (timeseries.csv's `limit_cpus`): a point where
    /// it starts and at each change, so a change mid-run shows as a step. Bounded by
    /// the run's changes.
    limit: Vec<(f64, Option<f64>)>,
}

/// One run, accumulated while timeseries.csv is read.
struct RunAcc {
    run: String,
    window_s: f64,
    interval_s: f64,
    groups: Vec<GroupAcc>,
    index: HashMap<Vec<u8>, usize>,
    t_max: f64,
    /// Samples that came more than 1.5 intervals after the one before: missed ticks.
    gaps: Reduced,
    gap_count: u64,
}

impl RunAcc {
    fn group(&mut self, name: &[u8]) -> &mut GroupAcc {
        let i = match self.index.get(name) {
            Some(i) => *i,
            None => {
                let w = self.window_s;
                self.groups.push(GroupAcc {
                    name: String::from_utf8_lossy(name).to_string(),
                    usage: Windowed::new(w),
                    throttled: Windowed::new(w),
                    throttled_total: 0.0,
                    throttled_periods: 0,
                    cumulative: Reduced::new(w),
                    steal: Windowed::new(w),
                    psi: Windowed::new(w),
                    stall: Windowed::new(w),
                    probe_stall: Windowed::new(w),
                    limit: Vec::new(),
                });
                self.index.insert(name.to_vec(), self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        &mut self.groups[i]
    }
}

fn col(headers: &csv::ByteRecord, name: &str) -> Option<usize> {
    headers.iter().position(|h| h == name.as_bytes())
}

fn num(rec: &csv::ByteRecord, i: Option<usize>) -> Option<f64> {
    let v = rec.get(i?)?;
    if v.is_empty() {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Read timeseries.csv (and the steal probe's stall series) once, row by row, into each
/// run's reduced series: memory is bounded by runs × groups, whatever their length.
fn scan(dir: &ResultDir) -> csv::Result<Vec<RunAcc>> {
    let Some(path) = dir.timeseries.as_ref() else {
        return Ok(Vec::new());
    };
    let summary = dir.summary.as_ref();
    let mut runs: Vec<RunAcc> = Vec::new();
    let mut run_index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut r = csv::ReaderBuilder::new().flexible(true).from_path(path)?;
    let h = r.byte_headers()?.clone();
    let (c_run, c_group, c_t, c_dt) = (
        col(&h, "run"),
        col(&h, "group"),
        col(&h, "t_s"),
        col(&h, "dt_s"),
    );
    let (c_usage, c_thr, c_nthr) = (
        col(&h, "usage_s"),
        col(&h, "throttled_s"),
        col(&h, "nr_throttled"),
    );
    let (c_steal, c_psi, c_stall) = (
        col(&h, "steal_s"),
        col(&h, "psi_some_s"),
        col(&h, "stall_s"),
    );
    let c_limit = col(&h, "limit_cpus");
    let mut rec = csv::ByteRecord::new();
    while r.read_byte_record(&mut rec)? {
        let (Some(t), Some(dt)) = (num(&rec, c_t), num(&rec, c_dt)) else {
            continue;
        };
        let run = c_run.and_then(|i| rec.get(i)).unwrap_or(b"0");
        let ri = match run_index.get(run) {
            Some(i) => *i,
            None => {
                let name = String::from_utf8_lossy(run).to_string();
                let n: usize = name.parse().unwrap_or(0);
                let period = summary.and_then(|s| {
                    (0..s.len())
                        .find(|&i| s.text(i, "run") == name)
                        .and_then(|i| s.num(i, "period_s"))
                        .filter(|p| *p > 0.0)
                });
                let window_s = period.unwrap_or(0.1);
                runs.push(RunAcc {
                    run: name,
                    window_s,
                    interval_s: sample_interval(dir, n),
                    groups: Vec::new(),
                    index: HashMap::new(),
                    t_max: 0.0,
                    gaps: Reduced::new(window_s),
                    gap_count: 0,
                });
                run_index.insert(run.to_vec(), runs.len() - 1);
                runs.len() - 1
            }
        };
        let acc = &mut runs[ri];
        acc.t_max = acc.t_max.max(t);
        let first_group = acc.groups.is_empty()
            || c_group
                .and_then(|i| rec.get(i))
                .is_none_or(|g| g == acc.groups[0].name.as_bytes());
        if first_group && dt > 1.5 * acc.interval_s {
            acc.gap_count += 1;
            acc.gaps.push(t - dt, 1.0);
        }
        let group = c_group.and_then(|i| rec.get(i)).unwrap_or(b"main");
        let g = acc.group(group);
        g.usage.push(t, dt, num(&rec, c_usage));
        let thr = num(&rec, c_thr);
        g.throttled.push(t, dt, thr);
        if let Some(x) = thr {
            g.throttled_total += x;
            g.cumulative.push(t, g.throttled_total);
        }
        g.throttled_periods += num(&rec, c_nthr).unwrap_or(0.0) as u64;
        g.steal.push(t, dt, num(&rec, c_steal));
        g.psi.push(t, dt, num(&rec, c_psi));
        if c_stall.is_some() {
            g.stall.push(t, dt, num(&rec, c_stall));
        }
        if c_limit.is_some() {
            let l = num(&rec, c_limit);
            if g.limit.last().is_none_or(|(_, last)| *last != l) {
                g.limit.push((t - dt, l));
            }
        }
    }
    // A steal probe's stalls, all its CPUs together, from steal_timeseries.csv.
    if let Some(path) = dir.stalls.as_ref() {
        let mut r = csv::ReaderBuilder::new().flexible(true).from_path(path)?;
        let h = r.byte_headers()?.clone();
        let (c_run, c_group, c_cpu) = (col(&h, "run"), col(&h, "group"), col(&h, "cpu"));
        let (c_t, c_dt, c_s) = (col(&h, "t_s"), col(&h, "dt_s"), col(&h, "stall_s"));
        while r.read_byte_record(&mut rec)? {
            if c_cpu.and_then(|i| rec.get(i)) != Some(b"all") {
                continue;
            }
            let run = c_run.and_then(|i| rec.get(i)).unwrap_or(b"0");
            let Some(&ri) = run_index.get(run) else {
                continue;
            };
            let group = c_group.and_then(|i| rec.get(i)).unwrap_or(b"main");
            let (Some(t), Some(dt)) = (num(&rec, c_t), num(&rec, c_dt)) else {
                continue;
            };
            let s = num(&rec, c_s);
            runs[ri].group(group).probe_stall.push(t, dt, s);
        }
    }
    Ok(runs)
}

pub fn prepare(dir: &ResultDir) -> Vec<TimeseriesFigure> {
    match scan(dir) {
        Ok(runs) => runs.into_iter().map(|r| figure(dir, r)).collect(),
        Err(e) => {
            eprintln!("throttlebench: cannot read timeseries.csv for the plot: {e}");
            Vec::new()
        }
    }
}

fn line(label: String, color: Option<usize>, points: Vec<(f64, f64)>) -> Line {
    Line {
        label,
        color,
        dashed: false,
        marks: false,
        points,
    }
}

fn figure(dir: &ResultDir, acc: RunAcc) -> TimeseriesFigure {
    let run = acc.run.clone();
    let summary = dir.summary.as_ref();
    let srow = |g: &str| {
        summary.and_then(|s| (0..s.len()).find(|&i| s.text(i, "run") == run && group_of(s, i) == g))
    };
    let first = acc
        .groups
        .first()
        .map(|g| g.name.clone())
        .unwrap_or_else(|| "main".into());
    let window_text = fmt_seconds(acc.window_s);
    let multi = acc.groups.len() > 1;
    let name = |g: &str, what: &str| {
        if multi {
            format!("{g}: {what}")
        } else {
            what.to_string()
        }
    };
    let (mut usage, mut throttled, mut cum, mut lost) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let t_max = acc.t_max.max(acc.window_s);
    for (gi, g) in acc.groups.iter().enumerate() {
        usage.push(line(
            name(&g.name, &format!("CPU usage, mean per {window_text}")),
            Some(gi),
            g.usage.out.points(),
        ));
        let reported = g.throttled.reported;
        let never = reported && g.throttled.out.max().unwrap_or(0.0) == 0.0;
        throttled.push(line(
            name(
                &g.name,
                &if !reported {
                    "throttling not reported by this kernel".to_string()
                } else {
                    format!(
                        "throttled time per {window_text} period{}",
                        if never { " (never throttled)" } else { "" }
                    )
                },
            ),
            Some(gi),
            g.throttled.out.points(),
        ));
        let mut c = vec![(0.0, 0.0)];
        c.extend(g.cumulative.points());
        // The same numbers as `run`'s line and summary.csv: over the measured window
        // (from the workload's own time zero), then the whole run with its start-up.
        let window = summary.zip(srow(&g.name)).and_then(|(s, i)| {
            Some((
                s.num(i, "throttled_s")?,
                s.num(i, "nr_throttled")?,
                s.num(i, "wall_s")?,
            ))
        });
        let label = match (reported, window) {
            (false, _) => "throttled time: not reported by this kernel".to_string(),
            (true, Some((t, n, wall))) => format!(
                "throttled time so far; in the measured window (the last {}, as summary.csv and run say): {}, {} periods; whole run with start-up: {}, {} periods",
                fmt_seconds(wall),
                fmt_seconds(t),
                n,
                fmt_seconds(g.throttled_total),
                g.throttled_periods
            ),
            (true, None) => format!(
                "throttled time so far (total {}, {} throttled periods)",
                fmt_seconds(g.throttled_total),
                g.throttled_periods
            ),
        };
        cum.push(line(
            name(&g.name, &label),
            Some(gi),
            if reported { c } else { Vec::new() },
        ));
        if g.limit.iter().any(|(_, l)| l.is_some()) {
            // The group's own quota from timeseries.csv: a step where a change set it.
            let mut pts = Vec::new();
            let values: Vec<String> = g
                .limit
                .iter()
                .map(|(t, l)| match l {
                    Some(l) => format!("{} at {}", fmt_number(*l), fmt_seconds(*t)),
                    None => format!("none at {}", fmt_seconds(*t)),
                })
                .collect();
            for (k, (t, l)) in g.limit.iter().enumerate() {
                let end = g.limit.get(k + 1).map(|(t, _)| *t).unwrap_or(t_max);
                if let Some(l) = l {
                    pts.push((t.max(0.0), *l));
                    pts.push((end, *l));
                }
            }
            let label = match g.limit.as_slice() {
                [(_, Some(l))] => format!("quota {} CPUs", fmt_number(*l)),
                _ => format!("quota in CPUs as changed: {}", values.join(", ")),
            };
            usage.push(Line {
                label: name(&g.name, &label),
                color: if multi { Some(gi) } else { None },
                dashed: true,
                marks: false,
                points: pts,
            });
        } else if let Some((s, i)) = summary.zip(srow(&g.name)) {
            let limit = s
                .num(i, "target_share")
                .or_else(|| Some(s.num(i, "quota_s")? / s.num(i, "period_s")?));
            if let Some(l) = limit {
                usage.push(Line {
                    label: name(
                        &g.name,
                        &format!("limit {} CPUs ({})", fmt_number(l), s.text(i, "limiter")),
                    ),
                    color: if multi { Some(gi) } else { None },
                    dashed: true,
                    marks: false,
                    points: vec![(0.0, l), (t_max, l)],
                });
            }
        }
        // Steal and PSI are machine-wide: drawn once. Stalls belong to the group.
        if gi == 0 {
            lost.push(line(
                "steal: CPU time the hypervisor took (/proc/stat, all CPUs)".into(),
                Some(6),
                g.steal.out.points(),
            ));
            lost.push(line(
                if g.psi.reported {
                    "PSI cpu some: share of time a task waited for a CPU (throttling included)"
                        .into()
                } else {
                    "PSI cpu some: not reported by this kernel".into()
                },
                Some(7),
                g.psi.out.points(),
            ));
        }
        if g.stall.reported {
            lost.push(line(
                name(&g.name, "observed stalls"),
                Some(gi + 2),
                g.stall.out.points(),
            ));
        }
        if g.probe_stall.reported {
            lost.push(line(
                name(&g.name, "observed stalls (steal probe, its CPUs together)"),
                Some(gi + 2),
                g.probe_stall.out.points(),
            ));
        }
    }
    if acc.gap_count > 0 {
        usage.push(Line {
            label: format!(
                "{} missed sampler tick(s): gaps in the series",
                acc.gap_count
            ),
            color: Some(3),
            dashed: false,
            marks: true,
            points: acc.gaps.points().iter().map(|&(t, _)| (t, 0.0)).collect(),
        });
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
    // Throttling panels only when there is throttling to show: a limiter without CFS
    // bandwidth (freezer, signals, a command) or a kernel that does not report it leaves
    // them empty, and the legend of the usage panel says so instead.
    let anything_throttled = acc
        .groups
        .iter()
        .any(|g| g.throttled.reported && g.throttled.out.max().unwrap_or(0.0) > 0.0);
    let mut panels = vec![Panel {
        y_desc: "CPU usage (CPUs)".into(),
        lines: usage,
        seconds: false,
    }];
    if anything_throttled {
        panels.push(Panel {
            y_desc: "throttled (thread-s per s)".into(),
            lines: throttled,
            seconds: false,
        });
        panels.push(Panel {
            y_desc: "throttled time (s)".into(),
            lines: cum,
            seconds: true,
        });
    } else if let Some(first) = panels[0].lines.first_mut() {
        let why = if acc.groups.iter().any(|g| g.throttled.reported) {
            "never throttled by CFS bandwidth"
        } else {
            "throttling not reported by this kernel"
        };
        first
            .label
            .push_str(&format!(" ({why}: no throttling panels)"));
    }
    panels.push(Panel {
        y_desc: "waiting, stolen (s per s)".into(),
        lines: lost,
        seconds: false,
    });
    TimeseriesFigure {
        run: run.to_string(),
        title: format!("{} {label}: over time", dir.scenario_name()),
        footer: footer(dir),
        panels,
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
                    let mark = if l.marks {
                        Mark::Dot
                    } else if l.dashed {
                        Mark::Dashed
                    } else {
                        Mark::Line
                    };
                    LegendEntry::new(l.label.clone(), c, mark)
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
                if line.marks {
                    chart
                        .draw_series(line.points.iter().map(|&p| Circle::new(p, 5, c.filled())))?;
                } else if line.dashed {
                    chart.draw_series(DashedLineSeries::new(line.points.clone(), 10, 6, style))?;
                } else {
                    chart.draw_series(LineSeries::new(line.points.clone(), style))?;
                }
            }
        }
        Ok(())
    }
}
