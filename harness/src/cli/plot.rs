//! `throttlebench plot DIR`: draw every plot a stored result folder has data for (also
//! called at the end of `run` unless `--no-plot`).

use crate::plot::{plot_dir, Format, PlotOptions};
use crate::report::read::ResultDir;
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A result folder of `run`, `check` or `find-threshold`.
    pub dir: PathBuf,
    /// Where the plots go (default: DIR/plots).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Formats to write, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "svg,png")]
    pub format: Vec<Format>,
    /// Summary column for the sweep plot (repeatable; default: a set of those with values).
    #[arg(long = "metric", value_name = "COLUMN")]
    pub metrics: Vec<String>,
}

pub fn run(args: &PlotArgs) -> Result<()> {
    let dir = ResultDir::open(&args.dir)?;
    let opts = PlotOptions {
        out: args.out.clone().unwrap_or_else(|| args.dir.join("plots")),
        formats: args.format.clone(),
        metrics: args.metrics.clone(),
    };
    let files = plot_dir(&dir, &opts)?;
    if files.is_empty() {
        eprintln!(
            "throttlebench: nothing to plot in {}: no latencies, samples, sweep or probes",
            args.dir.display()
        );
    }
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}

/// After a run: plot its folder, and say where the plots are. A plot that fails does not
/// fail the run (its results are written): it is reported on stderr.
pub fn after_run(dir: &Path) {
    let made = ResultDir::open(dir)
        .map_err(anyhow::Error::from)
        .and_then(|d| plot_dir(&d, &PlotOptions::for_dir(dir)))
        .with_context(|| format!("plotting {}", dir.display()));
    match made {
        Ok(files) if !files.is_empty() => eprintln!(
            "throttlebench: {} plot file(s) in {}",
            files.len(),
            dir.join("plots").display()
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "throttlebench: warning: {e:#} (throttlebench plot {} retries)",
            dir.display()
        ),
    }
}
