//! `throttlebench report DIR...`: result folders from many machines in one table (and,
//! with `--plot`, one figure) keyed by host, kernel and scenario; or, with
//! `--as-scraped INTERVAL`, each folder's throttling as a Prometheus scrape at that
//! interval and an `increase()` window see it, beside the per-period truth.

use crate::as_scraped::promql::PromVersion;
use crate::as_scraped::ScrapeConfig;
use crate::report::export::{render, Format};
use crate::report::read::ResultDir;
use crate::report::{fleet, scraped};
use crate::scenario::Span;
use anyhow::{anyhow, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Result folders of run, watch or find-threshold, from one machine or many.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Show each folder as a Prometheus scrape every INTERVAL sees it (cAdvisor's is 15s
    /// or more), through `increase()` over --window and kubernetes-mixin's
    /// CPUThrottlingHigh alert, beside the truth of every period.
    #[arg(long, value_name = "INTERVAL")]
    pub as_scraped: Option<Span>,
    /// The `increase()` window of the alert's expression (the mixin's is 5m).
    #[arg(long, default_value = "5m", value_name = "W")]
    pub window: Span,
    /// How often the rule is evaluated (Prometheus's default evaluation_interval).
    #[arg(long, default_value = "1m")]
    pub eval_interval: Span,
    /// The alert's `for:` (the mixin's is 15m).
    #[arg(long = "for", default_value = "15m", value_name = "D")]
    pub for_: Span,
    /// The alert fires above this throttled ratio (the mixin's 25%: 0.25).
    #[arg(long, default_value_t = 0.25)]
    pub threshold: f64,
    /// Whose `increase()` rules to follow: 2.42 (Debian 12), 2.51, 3 (they differ at the
    /// window's edges; docs/fleet.md).
    #[arg(long, default_value = "3", value_name = "VERSION")]
    pub prometheus: String,
    /// With --as-scraped: list at most this many of each group's averaged-away episodes
    /// (the longest).
    #[arg(long, default_value_t = 10)]
    pub episodes: usize,
    /// Output format: text, csv, json or markdown (for a CI job summary or a pull-request
    /// comment). CSV holds the first table only.
    #[arg(long, default_value = "text")]
    pub format: Format,
    /// Also draw the merged table into DIR/report.svg and DIR/report.png.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
}

fn version(text: &str) -> Result<PromVersion> {
    let t = if text.contains('.') {
        text.to_string()
    } else {
        format!("{text}.0")
    };
    PromVersion::from_version(&t).ok_or_else(|| {
        anyhow!("--prometheus `{text}`: a Prometheus version such as 2.42, 2.51 or 3")
    })
}

pub fn run(args: &ReportArgs) -> Result<()> {
    let dirs: Vec<ResultDir> = args
        .dirs
        .iter()
        .map(|d| ResultDir::open(d))
        .collect::<Result<_, _>>()?;
    let tables = match args.as_scraped {
        Some(interval) => {
            anyhow::ensure!(
                interval.0.as_secs_f64() > 0.0 && args.window.0 > interval.0,
                "--window ({}) must be longer than the scrape interval ({interval})",
                args.window
            );
            let config = ScrapeConfig {
                eval_interval_s: args.eval_interval.as_secs_f64(),
                threshold: args.threshold,
                for_s: args.for_.as_secs_f64(),
                version: version(&args.prometheus)?,
                ..ScrapeConfig::cpu_throttling_high(
                    interval.as_secs_f64(),
                    args.window.as_secs_f64(),
                )
            };
            let mut seen = Vec::new();
            for d in &dirs {
                seen.extend(scraped::replay(d, &config)?);
            }
            scraped::tables(&seen, &config, args.episodes)
        }
        None => vec![fleet::table(&fleet::rows(&dirs))],
    };
    print!("{}", render(&tables, args.format));
    if let Some(out) = &args.plot {
        for f in crate::plot::fleet::draw(fleet::rows(&dirs), out)? {
            eprintln!("throttlebench: {}", f.display());
        }
    }
    Ok(())
}
