//! The CI question at a glance, one point per run: how far each run's CPU share was from
//! the limiter's target (`share_error`), and what each run left behind or got wrong
//! (processes left stopped or running, cgroups, limiter faults). Drawn for folders whose
//! limiter has a target, or where anything was left behind; from summary.csv only.

use super::{
    color, draw_legend, font, footer, frame, padded, DrawResult, Figure, LegendEntry, Mark,
};
use crate::report::read::{run_label, ResultDir};
use crate::units::fmt_number;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The counts of bad events drawn, with their colours.
const BAD: [(&str, &str, usize); 4] = [
    ("leaked_stopped", "left stopped", 2),
    ("leaked_escaped", "left running", 1),
    ("leaked_cgroups", "cgroups left", 4),
    ("limiter_faults", "limiter faults", 7),
];

#[derive(Debug, Clone)]
pub struct RunsFigure {
    pub title: String,
    pub footer: String,
    /// Per row: its label, share error (if the limiter has a target), and bad counts.
    pub rows: Vec<(String, Option<f64>, [f64; 4])>,
}

pub fn prepare(dir: &ResultDir) -> Option<RunsFigure> {
    let s = dir.summary.as_ref()?;
    let rows: Vec<(String, Option<f64>, [f64; 4])> = (0..s.len())
        .map(|r| {
            let mut bad = [0.0; 4];
            for (i, (col, _, _)) in BAD.iter().enumerate() {
                bad[i] = s.num(r, col).unwrap_or(0.0);
            }
            (run_label(s, r), s.num(r, "share_error"), bad)
        })
        .collect();
    let targets = rows.iter().any(|r| r.1.is_some());
    let anything_bad = rows.iter().any(|r| r.2.iter().any(|v| *v > 0.0));
    if rows.is_empty() || !(targets || anything_bad) {
        return None;
    }
    Some(RunsFigure {
        title: format!(
            "{}: every run against its target, and what it left behind",
            dir.scenario_name()
        ),
        footer: footer(dir),
        rows,
    })
}

impl Figure for RunsFigure {
    fn stem(&self) -> String {
        "runs".to_string()
    }

    fn size(&self) -> (u32, u32) {
        (1500, 900)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = frame(root, &self.title, &self.footer)?;
        let (top, bottom) = body.split_vertically(body.dim_in_pixel().1 as i32 / 2);
        let n = self.rows.len();
        let x_range = -0.5..(n as f64 - 0.5);
        // Share error per run.
        let (w, _) = top.dim_in_pixel();
        let (chart_area, legend) = top.split_horizontally(w as i32 - 360);
        let errors: Vec<(f64, f64)> = self
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i as f64, r.1?)))
            .collect();
        let worst = errors.iter().map(|p| p.1.abs()).fold(0.0, f64::max);
        let (lo, hi) = padded(-worst.max(0.01), worst.max(0.01), false);
        let mut chart = ChartBuilder::on(&chart_area)
            .margin(16)
            .x_label_area_size(30)
            .y_label_area_size(90)
            .build_cartesian_2d(x_range.clone(), lo..hi)?;
        chart
            .configure_mesh()
            .y_desc("share error (CPUs)")
            .x_desc("run")
            .x_labels(n.min(20))
            .x_label_formatter(&|x| format!("{:.0}", x))
            .y_label_formatter(&|y| fmt_number(*y))
            .label_style(font(15))
            .axis_desc_style(font(17))
            .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
            .draw()?;
        chart.draw_series(LineSeries::new(
            vec![(-0.5, 0.0), (n as f64 - 0.5, 0.0)],
            BLACK.stroke_width(1),
        ))?;
        chart.draw_series(errors.iter().map(|&p| Circle::new(p, 6, color(0).filled())))?;
        let heading = if errors.is_empty() {
            "the limiter has no target share: no error to draw".to_string()
        } else {
            format!(
                "{} run(s) with a target: error from {} to {} CPUs",
                errors.len(),
                fmt_number(errors.iter().map(|p| p.1).fold(f64::INFINITY, f64::min)),
                fmt_number(errors.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max)),
            )
        };
        draw_legend(
            &legend,
            Some(&heading),
            &[LegendEntry::new(
                "cpu_share − target_share, a run",
                color(0),
                Mark::Dot,
            )],
        )?;
        // Bad events per run, stacked.
        let (w, _) = bottom.dim_in_pixel();
        let (chart_area, legend) = bottom.split_horizontally(w as i32 - 360);
        let most = self
            .rows
            .iter()
            .map(|r| r.2.iter().sum::<f64>())
            .fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(&chart_area)
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(x_range, 0.0..(most.max(1.0) * 1.2))?;
        chart
            .configure_mesh()
            .y_desc("count in the run")
            .x_desc("run")
            .x_labels(n.min(20))
            .x_label_formatter(&|x| format!("{:.0}", x))
            .y_label_formatter(&|y| fmt_number(*y))
            .label_style(font(15))
            .axis_desc_style(font(17))
            .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
            .draw()?;
        for (i, r) in self.rows.iter().enumerate() {
            let mut base = 0.0;
            for (k, v) in r.2.iter().enumerate() {
                if *v > 0.0 {
                    let x = i as f64;
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x - 0.3, base), (x + 0.3, base + v)],
                        color(BAD[k].2).filled(),
                    )))?;
                    base += v;
                }
            }
        }
        let total: f64 = self.rows.iter().map(|r| r.2.iter().sum::<f64>()).sum();
        let heading = if total == 0.0 {
            format!("nothing left behind, no limiter fault, in all {n} run(s)")
        } else {
            let with: Vec<&str> = self
                .rows
                .iter()
                .filter(|r| r.2.iter().any(|v| *v > 0.0))
                .map(|r| r.0.as_str())
                .take(8)
                .collect();
            format!("left behind or faulty in: {}", with.join(", "))
        };
        let entries: Vec<LegendEntry> = BAD
            .iter()
            .map(|(_, what, c)| LegendEntry::new(*what, color(*c), Mark::Dot))
            .collect();
        draw_legend(&legend, Some(&heading), &entries)?;
        Ok(())
    }
}
