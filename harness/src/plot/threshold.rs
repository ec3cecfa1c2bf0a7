//! A threshold search (`find-threshold`: probes.csv, threshold.json): the duty share of
//! every probe, sustainable or throttled, with the bracket found; and each probe's work
//! rate against the calibrated one, with the half-rate line that counts as throttled.

use super::{color, draw_legend, font, footer, frame, DrawResult, Figure, LegendEntry, Mark};
use crate::report::read::ResultDir;
use crate::units::fmt_number;
use plotters::coord::Shift;
use plotters::prelude::*;

#[derive(Debug, Clone)]
pub struct Probe {
    pub n: f64,
    pub phase: String,
    pub duty_pct: f64,
    pub rate_median_pct: f64,
    pub rate_end_pct: f64,
    pub throttled: bool,
}

#[derive(Debug, Clone)]
pub struct ThresholdFigure {
    pub title: String,
    pub footer: String,
    pub probes: Vec<Probe>,
    /// (low, found, high) sustainable share in %, and the label.
    pub bracket: Option<(f64, f64, f64, String)>,
}

pub fn prepare(dir: &ResultDir) -> Option<ThresholdFigure> {
    let t = dir.probes.as_ref().filter(|t| !t.is_empty())?;
    let probes: Vec<Probe> = (0..t.len())
        .filter_map(|r| {
            Some(Probe {
                n: t.num(r, "probe")?,
                phase: t.text(r, "phase").to_string(),
                duty_pct: t.num(r, "duty_share")? * 100.0,
                rate_median_pct: t.num(r, "rate_median").unwrap_or(0.0) * 100.0,
                rate_end_pct: t.num(r, "rate_end").unwrap_or(0.0) * 100.0,
                throttled: t.text(r, "throttled") == "true",
            })
        })
        .collect();
    let bracket = dir.threshold.as_ref().and_then(|j| {
        let f = |k: &str| j.get(k).and_then(|v| v.as_f64());
        let (s, lo, hi) = (
            f("sustainable_share")?,
            f("sustainable_share_low")?,
            f("sustainable_share_high")?,
        );
        let cycle = f("cycle_s")
            .map(|c| format!(" at {} s cycles", fmt_number(c)))
            .unwrap_or_default();
        Some((
            lo * 100.0,
            s * 100.0,
            hi * 100.0,
            format!(
                "sustainable share {:.1}% (between {:.1}% and {:.1}%){cycle}",
                s * 100.0,
                lo * 100.0,
                hi * 100.0
            ),
        ))
    });
    Some(ThresholdFigure {
        title: format!("{}: the search's probes", dir.scenario_name()),
        footer: footer(dir),
        probes,
        bracket,
    })
}

impl Figure for ThresholdFigure {
    fn stem(&self) -> String {
        "threshold".to_string()
    }

    fn size(&self) -> (u32, u32) {
        (1500, 900)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let body = frame(root, &self.title, &self.footer)?;
        let (w, _) = body.dim_in_pixel();
        let (body, legend) = body.split_horizontally(w as i32 - 340);
        let areas = body.split_evenly((2, 1));
        let legends = legend.split_evenly((2, 1));
        let n_max = self.probes.iter().map(|p| p.n).fold(1.0, f64::max) + 1.0;
        // Calibrate, burst and drain probes run at 100%: the duty probes near the
        // threshold set the scale, the others are named in the legend.
        let duty_max = self
            .probes
            .iter()
            .filter(|p| is_duty(p))
            .map(|p| p.duty_pct)
            .chain(self.bracket.as_ref().map(|b| b.2))
            .fold(0.0, f64::max);
        let y_max = if duty_max > 0.0 {
            (duty_max * 1.5).min(105.0)
        } else {
            105.0
        };
        let (ok, bad, other) = (color(3), color(2), RGBColor(0x88, 0x88, 0x88));

        let mut top = ChartBuilder::on(&areas[0])
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5..n_max, 0f64..y_max)?;
        top.configure_mesh()
            .y_desc("duty share of the probe (% of wall time)")
            .x_label_formatter(&|x| fmt_number(*x))
            .y_label_formatter(&|y| fmt_number(*y))
            .label_style(font(15))
            .axis_desc_style(font(17))
            .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
            .draw()?;
        let mut top_entries = Vec::new();
        if let Some((lo, s, hi, label)) = &self.bracket {
            let style = BLACK.stroke_width(2);
            top.draw_series(DashedLineSeries::new(
                vec![(-0.5, *s), (n_max, *s)],
                10,
                6,
                style,
            ))?;
            top_entries.push(LegendEntry::new(label.clone(), BLACK, Mark::Dashed));
            top.draw_series([Rectangle::new(
                [(-0.5, *lo), (n_max, *hi)],
                BLACK.mix(0.08).filled(),
            )])?;
        }
        // Which probes get which marker: 0 sustainable duty, 1 throttled duty, 2 the rest.
        let class = |p: &Probe| match (is_duty(p), p.throttled) {
            (true, false) => 0,
            (true, true) => 1,
            (false, _) => 2,
        };
        let kinds = [
            ("duty probe: sustainable", ok),
            ("duty probe: throttled", bad),
            (
                "calibrate / burst / drain (at 100%, drawn at the top)",
                other,
            ),
        ];
        for (k, (label, c)) in kinds.into_iter().enumerate() {
            let pts: Vec<(f64, f64)> = self
                .probes
                .iter()
                .filter(|p| class(p) == k)
                .map(|p| (p.n, p.duty_pct.min(y_max * 0.97)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            top.draw_series(pts.iter().map(|p| Circle::new(*p, 6, c.filled())))?;
            top_entries.push(LegendEntry::new(label, c, Mark::Dot));
        }
        draw_legend(&legends[0], None, &top_entries)?;

        let hi = self
            .probes
            .iter()
            .map(|p| p.rate_median_pct.max(p.rate_end_pct))
            .fold(110.0, f64::max);
        let mut bottom = ChartBuilder::on(&areas[1])
            .margin(14)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5..n_max, 0f64..hi * 1.05)?;
        bottom
            .configure_mesh()
            .x_desc("probe (in the order run)")
            .y_desc("work rate (% of the calibrated rate)")
            .x_label_formatter(&|x| fmt_number(*x))
            .y_label_formatter(&|y| fmt_number(*y))
            .label_style(font(15))
            .axis_desc_style(font(17))
            .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
            .draw()?;
        let half = BLACK.stroke_width(1);
        bottom.draw_series(DashedLineSeries::new(
            vec![(-0.5, 50.0), (n_max, 50.0)],
            8,
            6,
            half,
        ))?;
        let mut bottom_entries = vec![LegendEntry::new(
            "below half the calibrated rate: throttled",
            BLACK,
            Mark::Dashed,
        )];
        for (label, c, f) in [
            (
                "median over slices",
                color(0),
                (|p: &Probe| p.rate_median_pct) as fn(&Probe) -> f64,
            ),
            ("end of later on-periods", color(1), |p: &Probe| {
                p.rate_end_pct
            }),
        ] {
            bottom.draw_series(
                self.probes
                    .iter()
                    .map(|p| Circle::new((p.n, f(p)), 5, c.filled())),
            )?;
            bottom_entries.push(LegendEntry::new(label, c, Mark::Dot));
        }
        draw_legend(&legends[1], None, &bottom_entries)?;
        Ok(())
    }
}

fn is_duty(p: &Probe) -> bool {
    matches!(p.phase.as_str(), "duty" | "confirm")
}
