//! `throttlebench cut FILE -c COLUMN,...`: some columns of a result CSV, chosen by name
//! (as csvcut does), so a command in the docs says `-c wall_s,cpu_share` and keeps
//! working when columns are added, where `cut -d, -f11,13` silently picks others.

use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct CutArgs {
    /// A CSV file (summary.csv, timeseries.csv, ...), or a result folder for its
    /// summary.csv.
    pub file: PathBuf,
    /// Columns to print, by name, in this order (a swept parameter by its scenario
    /// name, `limiter.quota`, or its column, `param_limiter.quota`).
    #[arg(short, long, value_delimiter = ',', required = true)]
    pub columns: Vec<String>,
    /// Print aligned columns for people instead of CSV.
    #[arg(long)]
    pub table: bool,
}

pub fn run(a: &CutArgs) -> Result<i32> {
    let path = if a.file.is_dir() {
        a.file.join("summary.csv")
    } else {
        a.file.clone()
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: no header line", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut picks = Vec::with_capacity(a.columns.len());
    for c in &a.columns {
        // A swept parameter may be named as in the scenario (`limiter.quota`) or as
        // its column (`param_limiter.quota`), as in expectations.
        let param = format!("param_{c}");
        match header.iter().position(|h| h == c || *h == param) {
            Some(i) => picks.push(i),
            None => {
                let hint = match crate::report::expect::suggest(c, &header) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the columns are {}", header.join(", ")),
                };
                return Err(super::exit::exit_with(
                    super::exit::EXIT_USAGE,
                    anyhow::anyhow!("{}: no column `{c}`; {hint}", path.display()),
                ));
            }
        }
    }
    let out = std::io::stdout().lock();
    let pick = |record: &csv::StringRecord| -> Vec<String> {
        picks
            .iter()
            .map(|&i| record.get(i).unwrap_or("").to_string())
            .collect()
    };
    if a.table {
        // Aligned columns need every width first: --table is for summaries, which are
        // short; the CSV form below streams files of any length.
        let mut rows = Vec::new();
        for record in reader.records() {
            rows.push(pick(
                &record.with_context(|| format!("{}", path.display()))?,
            ));
        }
        let widths: Vec<usize> = a
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                rows.iter()
                    .map(|r| r[i].len())
                    .chain([c.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| -> String {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut out = std::io::BufWriter::new(out);
        writeln!(out, "{}", line(&a.columns))?;
        for r in &rows {
            writeln!(out, "{}", line(r))?;
        }
        out.flush()?;
    } else {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(&a.columns)?;
        for record in reader.records() {
            w.write_record(pick(
                &record.with_context(|| format!("{}", path.display()))?,
            ))?;
        }
        w.flush()?;
    }
    Ok(0)
}
