//! `report DIR... --plot DIR`: the merged rows of many result folders in one figure, a
//! line per host, kernel, scenario and run: the share of throttled periods (bars), and
//! the CPU used, or a threshold search's sustainable share with its bracket (dots and
//! whiskers), side by side.

use super::{font, frame, DrawResult, Figure, PALETTE};
use crate::report::fleet::FleetRow;
use crate::units::fmt_number;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The figure of `report`'s rows.
pub struct FleetFigure {
    pub rows: Vec<FleetRow>,
    pub title: String,
}

impl FleetFigure {
    pub fn new(rows: Vec<FleetRow>) -> FleetFigure {
        let hosts: std::collections::BTreeSet<&str> =
            rows.iter().map(|r| r.host.as_str()).collect();
        let title = format!(
            "{} result(s) from {} host(s): throttling and CPU by host, kernel and scenario",
            rows.len(),
            hosts.len()
        );
        FleetFigure { rows, title }
    }

    fn label(r: &FleetRow) -> String {
        let s = format!("{} · {} · {} · {}", r.host, r.kernel, r.scenario, r.what);
        if s.chars().count() > 70 {
            let cut: String = s.chars().take(68).collect();
            format!("{cut}…")
        } else {
            s
        }
    }
}

impl Figure for FleetFigure {
    fn stem(&self) -> String {
        "report".into()
    }

    fn size(&self) -> (u32, u32) {
        (1600, (160 + 34 * self.rows.len() as u32).clamp(360, 8000))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = frame(
            root,
            &self.title,
            "throttlebench report · bars: throttled periods of all periods · dots: CPU used, or the sustainable share found (whiskers: its bracket)",
        )?;
        let (w, _) = body.dim_in_pixel();
        let (left, right) = body.split_horizontally(w as i32 * 62 / 100);
        let n = self.rows.len().max(1);
        let labels: Vec<String> = self.rows.iter().map(Self::label).collect();
        let y_label = |y: &f64| {
            let i = y.floor() as usize;
            if (*y - i as f64 - 0.5).abs() < 1e-6 {
                labels.get(n - 1 - i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        // Rows top to bottom: row k is drawn at y = n - 1 - k.
        let at = |k: usize| (n - 1 - k) as f64;
        let mut c = ChartBuilder::on(&left)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(540)
            .build_cartesian_2d(0f64..100f64, 0f64..n as f64)?;
        c.configure_mesh()
            .x_desc("throttled periods (%)")
            .y_labels(2 * n + 1)
            .y_label_formatter(&y_label)
            .label_style(font(14))
            .axis_desc_style(font(16))
            .disable_y_mesh()
            .draw()?;
        for (k, r) in self.rows.iter().enumerate() {
            if let Some(p) = r.throttled_pct {
                let y = at(k);
                c.draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y + 0.2), (p.clamp(0.0, 100.0), y + 0.8)],
                    PALETTE[2].filled(),
                )))?;
            }
        }
        let cpu_max = self
            .rows
            .iter()
            .flat_map(|r| [r.cpu_share, r.sustainable_high, r.sustainable_share])
            .flatten()
            .fold(1.0f64, f64::max);
        let mut c = ChartBuilder::on(&right)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(10)
            .build_cartesian_2d(0f64..cpu_max * 1.1, 0f64..n as f64)?;
        c.configure_mesh()
            .x_desc("CPUs")
            .x_label_formatter(&|x| fmt_number(*x))
            .y_labels(0)
            .label_style(font(14))
            .axis_desc_style(font(16))
            .draw()?;
        for (k, r) in self.rows.iter().enumerate() {
            let y = at(k) + 0.5;
            if let Some(v) = r.cpu_share {
                c.draw_series(std::iter::once(Circle::new((v, y), 6, PALETTE[0].filled())))?;
            }
            if let Some(v) = r.sustainable_share {
                if let (Some(lo), Some(hi)) = (r.sustainable_low, r.sustainable_high) {
                    c.draw_series(std::iter::once(PathElement::new(
                        vec![(lo, y), (hi, y)],
                        PALETTE[3].stroke_width(3),
                    )))?;
                }
                c.draw_series(std::iter::once(Circle::new((v, y), 7, PALETTE[3].filled())))?;
            }
        }
        Ok(())
    }
}

/// Draw `rows` as `report.svg` and `report.png` in `out`; the files written.
pub fn draw(rows: Vec<FleetRow>, out: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    super::render_all(&FleetFigure::new(rows), out)
}
