//! "What your monitoring sees": a group's throttling as a Prometheus scrape every S seconds
//! and `increase(...[W])` show it, beside the per-period truth.
//!
//! kubernetes-mixin's CPUThrottlingHigh alert ([CPUThrottlingHigh]) is
//! `increase(container_cpu_cfs_throttled_periods_total[5m]) /
//! increase(container_cpu_cfs_periods_total[5m]) > 0.25` held `for: 15m`, over cAdvisor
//! counters scraped every 15 s or more. Its maintainers note that this averages spikes
//! away: sampled every 15 s with a 1 m window, "12 seconds of maxed out CPU will appear as
//! 20%" ([kubernetes-mixin #108]). This module replays a recorded series
//! that way:
//! 1. the counters are rebuilt from the per-sample changes (from `start_totals`);
//! 2. a scrape at time τ reads the value of the last sample that ended at or before τ (what
//!    an exposition updated every sample serves; cAdvisor reads at the scrape, within one
//!    sample interval of this);
//! 3. at every rule evaluation the ratio of the two `increase()`s is computed with
//!    Prometheus's extrapolation (`promql::increase`), and the alert's `for:` is tracked;
//! 4. the episodes of the series (`crate::episodes`) are matched with the evaluations whose
//!    window covered them: an episode none of those pushed above the threshold was
//!    averaged away.
//!
//! Beside each evaluation is the true ratio over the same window (every period counted,
//! no scrape, no extrapolation), and the episodes are the per-period truth: in each, every
//! period was throttled.

pub mod promql;

use crate::episodes::{find_episodes, Episode, NotReported, ThrottleDelta};
use promql::{AlertState, AlertTracker, PromVersion, Sample};

/// How the monitoring scrapes and evaluates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScrapeConfig {
    /// Scrape interval, s.
    pub interval_s: f64,
    /// The `increase()` window, s.
    pub window_s: f64,
    /// First scrape this long after the series' start, s (Prometheus spreads targets over
    /// the interval; 0 <= offset < interval).
    pub scrape_offset_s: f64,
    /// Rule evaluation interval, s.
    pub eval_interval_s: f64,
    /// First evaluation this long after the series' start, s.
    pub eval_offset_s: f64,
    /// The alert fires above this ratio (0.25 = 25%).
    pub threshold: f64,
    /// The alert's `for:`, s.
    pub for_s: f64,
    /// Whose extrapolation and range rules.
    pub version: PromVersion,
    /// The counters' values when the series starts: 0 for a cgroup made at its start;
    /// a watch of an existing cgroup knows them from its first read.
    pub start_totals: StartTotals,
}

/// Cumulative counter values at the start of a series.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StartTotals {
    pub nr_periods: u64,
    pub nr_throttled: u64,
}

impl ScrapeConfig {
    /// kubernetes-mixin's CPUThrottlingHigh (> 25% for 15 m) over a scrape every
    /// `interval_s` with an `increase()` window of `window_s` (the mixin's is 300 s), rules
    /// evaluated every minute (Prometheus's default `evaluation_interval`), by current
    /// Prometheus (3.x).
    pub fn cpu_throttling_high(interval_s: f64, window_s: f64) -> ScrapeConfig {
        ScrapeConfig {
            interval_s,
            window_s,
            scrape_offset_s: 0.0,
            eval_interval_s: 60.0,
            eval_offset_s: 0.0,
            threshold: 0.25,
            for_s: 900.0,
            version: PromVersion::V3,
            start_totals: StartTotals::default(),
        }
    }
}

/// One rule evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Evaluation time, s since the series' start.
    pub t_s: f64,
    /// `increase(throttled_periods[W])`, `None` without two samples in the window.
    pub throttled_increase: Option<f64>,
    /// `increase(periods[W])`.
    pub periods_increase: Option<f64>,
    /// Their ratio: what the alert compares with its threshold. `None` where Prometheus has
    /// no value or NaN (no periods in the window).
    pub scraped_ratio: Option<f64>,
    /// Throttled periods / periods over the same window from every sample (no scrape, no
    /// extrapolation); `None` when no period ended in it.
    pub true_ratio: Option<f64>,
    /// The alert after this evaluation.
    pub alert: AlertState,
}

/// An episode and what the scraped view made of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeSeen {
    pub episode: Episode,
    /// The highest scraped ratio of the evaluations whose window held part of it (at or
    /// after its start, less than one window after its end); `None` when none had a value.
    pub max_scraped_ratio: Option<f64>,
    /// Some such evaluation's ratio was above the threshold.
    pub crossed_threshold: bool,
    /// The alert was firing at some such evaluation.
    pub alert_firing: bool,
}

/// A series as the monitoring saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct AsScraped {
    pub config: ScrapeConfig,
    pub evaluations: Vec<Evaluation>,
    pub episodes: Vec<EpisodeSeen>,
    /// Time of the first evaluation at which the alert fired, s.
    pub first_firing_s: Option<f64>,
    /// Periods and throttled periods over the whole series.
    pub periods: u64,
    pub throttled_periods: u64,
}

impl AsScraped {
    /// Whether the alert fired at any evaluation.
    pub fn fired(&self) -> bool {
        self.first_firing_s.is_some()
    }

    /// The episodes that no evaluation pushed above the threshold.
    pub fn averaged_away(&self) -> impl Iterator<Item = &EpisodeSeen> {
        self.episodes.iter().filter(|e| !e.crossed_threshold)
    }

    /// The highest scraped ratio of any evaluation.
    pub fn max_scraped_ratio(&self) -> Option<f64> {
        max_opt(self.evaluations.iter().map(|e| e.scraped_ratio))
    }

    /// The highest true ratio over any evaluation's window.
    pub fn max_true_ratio(&self) -> Option<f64> {
        max_opt(self.evaluations.iter().map(|e| e.true_ratio))
    }
}

fn max_opt(it: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    it.flatten()
        .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
}

/// Replay `series` (one group's samples in time order, CFS period `period_s`) as the
/// monitoring in `config` would see it.
pub fn as_scraped(
    series: &[ThrottleDelta],
    period_s: f64,
    config: &ScrapeConfig,
) -> Result<AsScraped, NotReported> {
    let list = find_episodes(series, period_s)?;
    let (Some(first), Some(last)) = (series.first(), series.last()) else {
        return Err(NotReported);
    };
    let t0 = first.t_s - first.dt_s;
    let end = last.t_s;
    let ms = |t: f64| (t * 1000.0).round() as i64;

    // Scrapes: the counters as of the last sample at or before each scrape.
    let scrape_times = grid(t0 + config.scrape_offset_s, config.interval_s, end);
    let scraped = values_at(series, config.start_totals, &scrape_times);
    let to_samples = |pick: fn(&(f64, f64)) -> f64| -> Vec<Sample> {
        scrape_times
            .iter()
            .zip(&scraped)
            .map(|(&t, v)| Sample {
                t_ms: ms(t),
                v: pick(v),
            })
            .collect()
    };
    let periods = to_samples(|v| v.0);
    let throttled = to_samples(|v| v.1);

    // Evaluations, and the exact counters at each one's window edges.
    let eval_times = grid(t0 + config.eval_offset_s, config.eval_interval_s, end);
    let mut edges: Vec<f64> = eval_times
        .iter()
        .flat_map(|&t| [t - config.window_s, t])
        .collect();
    edges.sort_by(f64::total_cmp);
    let exact = values_at(series, config.start_totals, &edges);
    let exact_at = |t: f64| {
        let i = edges.partition_point(|&e| e < t);
        exact[i]
    };

    let range_ms = ms(config.window_s);
    let mut alert = AlertTracker::new(ms(config.for_s));
    let mut first_firing_s = None;
    let mut evaluations = Vec::with_capacity(eval_times.len());
    for &t in &eval_times {
        let th = promql::increase(&throttled, ms(t), range_ms, config.version);
        let pe = promql::increase(&periods, ms(t), range_ms, config.version);
        let scraped_ratio = match (th, pe) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let (p1, k1) = exact_at(t);
        let (p0, k0) = exact_at(t - config.window_s);
        let true_ratio = (p1 > p0).then(|| (k1 - k0) / (p1 - p0));
        let state = alert.step(ms(t), scraped_ratio.is_some_and(|r| r > config.threshold));
        if state == AlertState::Firing && first_firing_s.is_none() {
            first_firing_s = Some(t);
        }
        evaluations.push(Evaluation {
            t_s: t,
            throttled_increase: th,
            periods_increase: pe,
            scraped_ratio,
            true_ratio,
            alert: state,
        });
    }

    let episodes = list
        .episodes
        .iter()
        .map(|e| {
            let covering = evaluations
                .iter()
                .filter(|v| v.t_s >= e.start_s && v.t_s < e.end_s + config.window_s);
            let max_scraped_ratio = max_opt(covering.clone().map(|v| v.scraped_ratio));
            EpisodeSeen {
                episode: *e,
                max_scraped_ratio,
                crossed_threshold: max_scraped_ratio.is_some_and(|r| r > config.threshold),
                alert_firing: covering.clone().any(|v| v.alert == AlertState::Firing),
            }
        })
        .collect();

    Ok(AsScraped {
        config: *config,
        evaluations,
        episodes,
        first_firing_s,
        periods: list.periods,
        throttled_periods: list.throttled_periods,
    })
}

/// `start, start + step, ...` up to `end` (computed by multiplication, so no drift).
fn grid(start: f64, step: f64, end: f64) -> Vec<f64> {
    if step <= 0.0 || start > end {
        return Vec::new();
    }
    let n = ((end - start) / step + 1e-9).floor() as usize;
    (0..=n).map(|i| start + i as f64 * step).collect()
}

/// The cumulative (periods, throttled periods) as of the last sample that ended at or
/// before each of `times` (sorted). One pass; a sample without the counters adds nothing.
fn values_at(series: &[ThrottleDelta], start: StartTotals, times: &[f64]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(times.len());
    let mut cum = (start.nr_periods as f64, start.nr_throttled as f64);
    let mut it = series.iter().peekable();
    for &t in times {
        while let Some(d) = it.next_if(|d| d.t_s <= t + 1e-9) {
            if let (Some(p), Some(k)) = (d.nr_periods, d.nr_throttled) {
                cum.0 += p as f64;
                cum.1 += k.min(p) as f64;
            }
        }
        out.push(cum);
    }
    out
}

#[cfg(test)]
mod tests;
