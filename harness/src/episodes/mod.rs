//! Throttling episodes: runs of consecutive throttled CFS periods in one group's samples.
//!
//! A run's throttled percentage over minutes can be low while the group was throttled in
//! every period for seconds at a time. An episode is such a run. This module finds them in
//! a series of counter changes (`ThrottleDelta`, one per sample), either all at once
//! (`find_episodes`) or one sample at a time while sampling (`EpisodeTracker`, which
//! allocates nothing).
//!
//! # What the kernel counts, and when
//!
//! The CFS period timer increments `nr_periods` when a period ends (by the number of
//! periods that elapsed, usually one), and `nr_throttled` by the same number if the group
//! was throttled at that moment. A group throttled in a period stays throttled until the
//! refill at the period's end, so `nr_throttled` counts exactly the periods in which the
//! group ran out of quota. The timer stops only after a period in which the group used no
//! quota and was not throttled, and that period is counted too: two throttled periods with
//! no unthrottled period counted between them were consecutive in time. Throttled *time*
//! is added when a run queue is unthrottled, which happens at the refill, so it arrives in
//! the sample that counts the period.
//!
//! # What "consecutive" means here
//!
//! Periods are seen through samples. Each sample says how many periods ended in it (`p`)
//! and how many of those were throttled (`k`):
//! - A sample with `p == 0` (samples finer than the period: at the default 10 ms sampling
//!   of a 100 ms period, nine of ten samples) says nothing about periods. It neither
//!   extends nor ends an episode.
//! - An episode is a maximal run of samples with `k >= 1`, skipping those with `p == 0`.
//!   A sample with `k == 0` (and `p >= 1`) ends it: a period that was not throttled.
//! - With samples finer than the period every sample has `p <= 1`, so an episode is
//!   exactly a run of consecutive throttled periods (`exact`).
//! - With samples coarser than the period a sample can hold throttled and unthrottled
//!   periods (`0 < k < p`) in an order the counters do not tell. Such a sample joins the
//!   episode it touches, and the episode is marked not `exact`: its periods all lie within
//!   its span, but not all of them were throttled and the throttled ones may not all be
//!   consecutive. `throttled_periods` against `periods` says how far it is from a solid
//!   run.
//! - A missing sample (a time gap between one sample's end and the next one's start) or a
//!   sample without the counters ends the episode, which is then `truncated`: it may have
//!   gone on. So is an episode that touches the start or the end of the series.
//!
//! Times: an episode's periods ended between its first sample's end minus the periods
//! that sample counted (`start_s`, one period before the first throttled period ended
//! when samples are fine) and the end of its last sample (`end_s`). The error of either is
//! at most one sample interval.
//!
//! A counter the kernel does not print (`None`) is never read as 0: a series in which no
//! sample has both `nr_periods` and `nr_throttled` gives `NotReported`, not "no episodes".

use std::fmt;

/// Tolerance for "this sample starts where the previous one ended", in s. Times come from
/// nanosecond clocks through f64; anything larger is a gap.
const GAP_TOLERANCE_S: f64 = 1e-6;

/// One sample's change of a group's CFS counters. `None`: the kernel did not print the
/// counter (v2 without the cpu controller, no CONFIG_CFS_BANDWIDTH) or it could not be
/// read for this sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ThrottleDelta {
    /// End of the sample's interval, s since the series' time zero.
    pub t_s: f64,
    /// Length of the interval, s (the interval is `t_s - dt_s .. t_s`).
    pub dt_s: f64,
    /// Periods that ended in the interval (`nr_periods` change).
    pub nr_periods: Option<u64>,
    /// Of those, periods in which the group was throttled (`nr_throttled` change).
    pub nr_throttled: Option<u64>,
    /// Throttled time added in the interval, thread-seconds (summed over run queues).
    pub throttled_s: Option<f64>,
}

/// The kernel did not report the throttling counters for this series: there are no
/// episodes to find, which is not the same as finding none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotReported;

impl fmt::Display for NotReported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("throttling not reported by the kernel")
    }
}

impl std::error::Error for NotReported {}

/// One run of consecutive throttled periods (see the module doc for the exact rule).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episode {
    /// Earliest start of its first period, s (the first sample's end minus the periods
    /// that sample counted times the period length).
    pub start_s: f64,
    /// End of the sample that counted its last throttled period, s.
    pub end_s: f64,
    /// Periods counted in its samples: its length in periods.
    pub periods: u64,
    /// Of those, throttled periods. Equal to `periods` when `exact`.
    pub throttled_periods: u64,
    /// Throttled time in it, thread-seconds; `None` when the kernel did not report
    /// throttled time for one of its samples.
    pub throttled_s: Option<f64>,
    /// The highest throttled time per second of period time in one of its samples (with
    /// samples finer than the period: in one period), thread-seconds per second: 0.6 is
    /// 60 ms throttled in a 100 ms period; above 1 when threads on several CPUs were
    /// throttled at once.
    pub peak_throttled_share: Option<f64>,
    /// Every sample in it counted only throttled periods, so they are consecutive.
    pub exact: bool,
    /// It touches a gap or an end of the series and may be longer than seen.
    pub truncated: bool,
}

impl Episode {
    /// Its length in seconds: `end_s - start_s`.
    pub fn length_s(&self) -> f64 {
        self.end_s - self.start_s
    }
}

/// The episodes of one series and the totals they are part of.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EpisodeList {
    pub episodes: Vec<Episode>,
    /// Periods counted over the whole series.
    pub periods: u64,
    /// Throttled periods counted over the whole series.
    pub throttled_periods: u64,
    /// Samples without the counters, and time gaps between samples.
    pub gaps: usize,
}

/// Find the episodes in a series of samples in time order. `period_s` is the CFS period.
pub fn find_episodes(series: &[ThrottleDelta], period_s: f64) -> Result<EpisodeList, NotReported> {
    let mut tracker = EpisodeTracker::new(period_s);
    let mut list = EpisodeList::default();
    for d in series {
        if let Some(e) = tracker.push(d) {
            list.episodes.push(e);
        }
    }
    if let Some(e) = tracker.finish() {
        list.episodes.push(e);
    }
    if !tracker.reported() {
        return Err(NotReported);
    }
    list.periods = tracker.periods;
    list.throttled_periods = tracker.throttled_periods;
    list.gaps = tracker.gaps;
    Ok(list)
}

/// Finds episodes one sample at a time: `push` each sample, it returns an episode when one
/// ends. Fixed size; nothing is allocated, so it can run in a sampler's tick.
#[derive(Debug, Clone)]
pub struct EpisodeTracker {
    period_s: f64,
    prev_end_s: Option<f64>,
    open: Option<Episode>,
    /// Throttled time since the last sample that counted a period: it belongs to the next
    /// such sample. `None` once a sample without throttled time was in the window.
    window_throttled_s: Option<f64>,
    /// An unthrottled period was seen since the series started or the last gap, so an
    /// episode that starts now is not cut off at its start.
    clear_seen: bool,
    reported: bool,
    periods: u64,
    throttled_periods: u64,
    gaps: usize,
}

impl EpisodeTracker {
    /// A tracker for a group whose CFS period is `period_s` seconds.
    pub fn new(period_s: f64) -> EpisodeTracker {
        EpisodeTracker {
            period_s,
            prev_end_s: None,
            open: None,
            window_throttled_s: Some(0.0),
            clear_seen: false,
            reported: false,
            periods: 0,
            throttled_periods: 0,
            gaps: 0,
        }
    }

    /// Change the CFS period (the group's limit was changed); episodes keep their counts.
    pub fn set_period(&mut self, period_s: f64) {
        self.period_s = period_s;
    }

    /// Whether any sample so far had the period counters.
    pub fn reported(&self) -> bool {
        self.reported
    }

    /// The episode going on now, if any (its `end_s` is the last sample's end).
    pub fn open(&self) -> Option<&Episode> {
        self.open.as_ref()
    }

    /// Periods and throttled periods counted so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.periods, self.throttled_periods)
    }

    /// Take the next sample; returns the episode it ended, if it ended one.
    pub fn push(&mut self, d: &ThrottleDelta) -> Option<Episode> {
        let mut closed = None;
        let gap = self
            .prev_end_s
            .is_some_and(|prev| d.t_s - d.dt_s > prev + GAP_TOLERANCE_S);
        self.prev_end_s = Some(d.t_s);
        if gap {
            self.gaps += 1;
            closed = self.cut();
        }
        let (Some(p), Some(k)) = (d.nr_periods, d.nr_throttled) else {
            // No counters in this sample: what happened in it is unknown.
            if !gap {
                self.gaps += 1;
            }
            return closed.or_else(|| self.cut());
        };
        self.reported = true;
        // Two reads of cpu.stat can disagree by a period; never more throttled than counted.
        let k = k.min(p);
        self.window_throttled_s = match (self.window_throttled_s, d.throttled_s) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        if p == 0 {
            return closed;
        }
        self.periods += p;
        self.throttled_periods += k;
        let window = self.window_throttled_s.replace(0.0);
        if k == 0 {
            self.clear_seen = true;
            return closed.or_else(|| self.open.take());
        }
        let share = window.map(|w| w / (p as f64 * self.period_s));
        let e = self.open.get_or_insert(Episode {
            start_s: d.t_s - p as f64 * self.period_s,
            end_s: d.t_s,
            periods: 0,
            throttled_periods: 0,
            throttled_s: Some(0.0),
            peak_throttled_share: share,
            exact: true,
            truncated: !self.clear_seen,
        });
        e.end_s = d.t_s;
        e.periods += p;
        e.throttled_periods += k;
        e.throttled_s = match (e.throttled_s, window) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        e.peak_throttled_share = match (e.peak_throttled_share, share) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        e.exact &= k == p;
        if k < p {
            self.clear_seen = true;
        }
        closed
    }

    /// The series ended: the episode going on, if any, cut off at the end.
    pub fn finish(&mut self) -> Option<Episode> {
        self.open.take().map(|mut e| {
            e.truncated = true;
            e
        })
    }

    /// A gap: close the open episode as cut off, and forget the window before it.
    fn cut(&mut self) -> Option<Episode> {
        self.clear_seen = false;
        self.window_throttled_s = None;
        self.open.take().map(|mut e| {
            e.truncated = true;
            e
        })
    }
}

/// The episodes as a text table, one line each (times in s, shares in thread-seconds per
/// second); "-" for a value the kernel did not report.
pub fn table(list: &EpisodeList) -> String {
    use std::fmt::Write;
    let mut out = String::from(
        "start_s   end_s     length_s  periods  throttled  throttled_s  peak_share  note\n",
    );
    for e in &list.episodes {
        let opt = |v: Option<f64>, prec: usize| match v {
            Some(x) => format!("{x:.prec$}"),
            None => "-".to_string(),
        };
        let mut note = Vec::new();
        if !e.exact {
            note.push("coarse samples");
        }
        if e.truncated {
            note.push("cut off");
        }
        let _ = writeln!(
            out,
            "{:<9.3} {:<9.3} {:<9.3} {:<8} {:<10} {:<12} {:<11} {}",
            e.start_s,
            e.end_s,
            e.length_s(),
            e.periods,
            e.throttled_periods,
            opt(e.throttled_s, 3),
            opt(e.peak_throttled_share, 2),
            note.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests;
