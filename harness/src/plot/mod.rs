//! Plots of a stored result folder, as SVG and PNG (plotters; text through a bundled
//! DejaVu Sans, so no system fonts or C libraries are needed).
//!
//! Each kind of plot is a file of its own with two steps: `prepare` turns the folder's
//! tables into a figure (plain data: series of points with labels), and `draw` renders a
//! figure on any plotters backend. A new kind of result gets a plot by adding a file with
//! those two functions and a line in `figures`.
//!
//! | file | kind | made when |
//! | --- | --- | --- |
//! | `latency` | request / slow-unit latency by percentile, per run, log axes; Indeed's conceptual model [Unthrottled] for requests under a CFS quota | latency.csv has rows |
//! | `timeseries-run<N>` | CPU usage, throttled share per period, throttled time, steal / PSI / stalls over time, one file per run | timeseries.csv has rows |
//! | `sweep` | summary columns against the swept parameter (or the target share), one line per limiter | the folder has more than one configuration |
//! | `threshold` | a threshold search's probes and bracket | probes.csv exists |

mod latency;
mod reduce;
mod runs;
mod sweep;
mod threshold;
mod timeseries;

use crate::report::read::ResultDir;
use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The font every plot uses, bundled with its license (assets/DejaVuSans-LICENSE.txt).
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The family name plots ask for; the bundled font is registered under it.
const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled file is a valid TrueType font; a failure here is a build mistake.
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            panic!("the bundled font assets/DejaVuSans.ttf cannot be read");
        }
    });
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s.trim() {
            "svg" => Ok(Format::Svg),
            "png" => Ok(Format::Png),
            other => Err(format!("unknown format `{other}` (svg, png)")),
        }
    }
}

/// What `plot` makes.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// Folder the files go to.
    pub out: PathBuf,
    pub formats: Vec<Format>,
    /// Summary columns for the sweep plot (empty: a default set, those that have values).
    pub metrics: Vec<String>,
}

impl PlotOptions {
    /// SVG and PNG into `<dir>/plots`.
    pub fn for_dir(dir: &Path) -> PlotOptions {
        PlotOptions {
            out: dir.join("plots"),
            formats: vec![Format::Svg, Format::Png],
            metrics: Vec::new(),
        }
    }
}

pub(crate) type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// A figure: data ready to draw on any backend.
pub(crate) trait Figure {
    /// File name without extension.
    fn stem(&self) -> String;
    /// Size in pixels.
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

/// Every figure `dir` has data for.
fn figures(dir: &ResultDir, opts: &PlotOptions) -> Vec<Box<dyn AnyFigure>> {
    let mut v: Vec<Box<dyn AnyFigure>> = Vec::new();
    for f in latency::prepare(dir) {
        v.push(Box::new(f));
    }
    for f in timeseries::prepare(dir) {
        v.push(Box::new(f));
    }
    if let Some(f) = runs::prepare(dir) {
        v.push(Box::new(f));
    }
    if let Some(f) = sweep::prepare(dir, &opts.metrics) {
        v.push(Box::new(f));
    }
    if let Some(f) = threshold::prepare(dir) {
        v.push(Box::new(f));
    }
    v
}

/// Object-safe face of `Figure` for the two backends used here.
trait AnyFigure {
    fn stem(&self) -> String;
    fn render(&self, path: &Path, format: Format) -> Result<()>;
}

impl<F: Figure> AnyFigure for F {
    fn stem(&self) -> String {
        Figure::stem(self)
    }
    fn render(&self, path: &Path, format: Format) -> Result<()> {
        let size = self.size();
        let err =
            |e: Box<dyn std::error::Error>| anyhow::anyhow!("drawing {}: {e}", path.display());
        match format {
            Format::Svg => {
                let root = SVGBackend::new(path, size).into_drawing_area();
                self.draw(&root).map_err(err)?;
                root.present().map_err(|e| err(Box::new(e)))?;
            }
            Format::Png => {
                let root = BitMapBackend::new(path, size).into_drawing_area();
                self.draw(&root).map_err(err)?;
                root.present().map_err(|e| err(Box::new(e)))?;
            }
        }
        Ok(())
    }
}

/// Draw every plot the folder has data for; returns the files written.
pub fn plot_dir(dir: &ResultDir, opts: &PlotOptions) -> Result<Vec<PathBuf>> {
    register_font();
    let figs = figures(dir, opts);
    if figs.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let mut written = Vec::new();
    for f in &figs {
        for format in &opts.formats {
            let ext = match format {
                Format::Svg => "svg",
                Format::Png => "png",
            };
            let path = opts.out.join(format!("{}.{ext}", f.stem()));
            f.render(&path, *format)?;
            written.push(path);
        }
    }
    Ok(written)
}

// ---- shared look -------------------------------------------------------------------

/// Tableau 10: distinguishable, and readable by most colour-blind readers.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4E, 0x79, 0xA7),
    RGBColor(0xF2, 0x8E, 0x2B),
    RGBColor(0xE1, 0x57, 0x59),
    RGBColor(0x59, 0xA1, 0x4F),
    RGBColor(0xB0, 0x7A, 0xA1),
    RGBColor(0x76, 0xB7, 0xB2),
    RGBColor(0xED, 0xC9, 0x48),
    RGBColor(0x9C, 0x75, 0x5F),
    RGBColor(0xFF, 0x9D, 0xA7),
    RGBColor(0xBA, 0xB0, 0xAC),
];

pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub(crate) fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// Title on top and the result's provenance at the bottom; returns the area between.
pub(crate) fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    footer: &str,
) -> std::result::Result<DrawingArea<DB, Shift>, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (_, h) = root.dim_in_pixel();
    let area = root.titled(title, font(24))?;
    let (body, foot) = area.split_vertically(h as i32 - 40 - 30);
    foot.draw(&Text::new(
        footer.to_string(),
        (12, 10),
        font(14).color(&RGBColor(0x55, 0x55, 0x55)),
    ))?;
    Ok(body)
}

/// How a legend entry is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    Line,
    Dashed,
    Dot,
}

/// One entry of a legend drawn beside a chart.
#[derive(Debug, Clone)]
pub(crate) struct LegendEntry {
    pub label: String,
    pub color: RGBColor,
    pub mark: Mark,
}

impl LegendEntry {
    pub fn new(label: impl Into<String>, color: RGBColor, mark: Mark) -> LegendEntry {
        LegendEntry {
            label: label.into(),
            color,
            mark,
        }
    }
}

/// Words of `text` in lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A legend in its own area (beside a chart, so it never hides data): an optional
/// heading, then one entry a row, long labels wrapped.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: Option<&str>,
    entries: &[LegendEntry],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (w, _) = area.dim_in_pixel();
    let chars = ((w as usize).saturating_sub(50) / 8).max(16);
    let mut y = 12;
    if let Some(h) = heading {
        for line in wrap(h, chars) {
            area.draw(&Text::new(
                line,
                (8, y),
                font(15).color(&RGBColor(0x33, 0x33, 0x33)),
            ))?;
            y += 20;
        }
        y += 6;
    }
    for e in entries {
        let c = e.color;
        let mid = y + 9;
        match e.mark {
            Mark::Line => area.draw(&PathElement::new(
                vec![(8, mid), (36, mid)],
                c.stroke_width(3),
            ))?,
            Mark::Dashed => area.draw(&plotters::element::DashedPathElement::new(
                vec![(8, mid), (38, mid)],
                7,
                4,
                c.stroke_width(2),
            ))?,
            Mark::Dot => area.draw(&Circle::new((22, mid), 6, c.filled()))?,
        }
        for line in wrap(&e.label, chars) {
            area.draw(&Text::new(line, (44, y), font(14)))?;
            y += 19;
        }
        y += 5;
    }
    Ok(())
}

/// "scenario · folder · machine" for a figure's footer.
pub(crate) fn footer(dir: &ResultDir) -> String {
    let mut s = format!("{} · {}", dir.scenario_name(), dir.dir.display());
    if let Some(h) = dir.host_line() {
        s.push_str(&format!(" · {h}"));
    }
    s
}

/// Axis range [lo, hi] with some room, never empty.
pub(crate) fn padded(lo: f64, hi: f64, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    if from_zero {
        lo = lo.min(0.0);
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        hi = lo + lo.abs().max(1.0) * 0.1;
        lo -= lo.abs().max(1.0) * 0.1 * f64::from(u8::from(!from_zero));
    }
    let pad = (hi - lo) * 0.06;
    let lo = if from_zero && lo >= 0.0 { lo } else { lo - pad };
    (lo, hi + pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legend_text_wraps_on_words() {
        assert_eq!(
            wrap("run 1 (workload.phase=20ms): 10 requests", 20),
            vec!["run 1", "(workload.phase=20ms):", "10 requests"]
        );
        assert_eq!(wrap("short", 20), vec!["short"]);
    }

    #[test]
    fn axis_room() {
        assert_eq!(padded(1.0, 1.0, true).0, 0.0);
        assert!(padded(1.0, 1.0, true).1 > 1.0);
    }
}
