//! Throttling episodes on the time-series plot: a group's runs of consecutive throttled
//! periods (`crate::episodes`, found in its timeseries.csv rows as they are read, by the
//! same rule as a watch's episodes.csv), drawn as boxes as wide as each episode and as
//! tall as its length in seconds, so a short burst shows even where the mean throttled
//! share of a long window is low.
//!
//! Memory is bounded like `reduce`: at most `BUCKETS` boxes, one per time bucket (the
//! bucket of the episode's start); when the series outgrows them, neighbours merge
//! (their span joined, the longest kept), which a picture a thousand pixels wide cannot
//! tell apart anyway.

use crate::episodes::{Episode, EpisodeTracker, ThrottleDelta};

use super::reduce::BUCKETS;

/// One drawn box: the span of the episodes in a bucket and the longest of them, s.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    start: f64,
    end: f64,
    longest: f64,
}

/// A group's episodes, found and reduced as its rows are read.
#[derive(Debug, Clone)]
pub struct EpisodeBoxes {
    tracker: EpisodeTracker,
    width_s: f64,
    buckets: Vec<Option<Span>>,
    /// Episodes found, the longest one's length, and those cut off at a gap or an end.
    pub count: u64,
    pub longest_s: f64,
    pub cut_off: u64,
}

impl EpisodeBoxes {
    /// For a group whose CFS period is `period_s`.
    pub fn new(period_s: f64) -> EpisodeBoxes {
        EpisodeBoxes {
            tracker: EpisodeTracker::new(period_s),
            width_s: period_s.max(1e-3),
            buckets: vec![None; BUCKETS],
            count: 0,
            longest_s: 0.0,
            cut_off: 0,
        }
    }

    /// The next row of the group.
    pub fn push(&mut self, d: &ThrottleDelta) {
        if let Some(e) = self.tracker.push(d) {
            self.add(&e);
        }
    }

    /// The rows ended: an episode going on is cut off there.
    pub fn finish(&mut self) {
        if let Some(e) = self.tracker.finish() {
            self.add(&e);
        }
    }

    /// Whether the rows had the throttling counters at all.
    pub fn reported(&self) -> bool {
        self.tracker.reported()
    }

    fn add(&mut self, e: &Episode) {
        self.count += 1;
        self.longest_s = self.longest_s.max(e.length_s());
        self.cut_off += u64::from(e.truncated);
        let mut i = (e.start_s.max(0.0) / self.width_s) as usize;
        while i >= BUCKETS {
            self.halve();
            i = (e.start_s.max(0.0) / self.width_s) as usize;
        }
        let s = Span {
            start: e.start_s,
            end: e.end_s,
            longest: e.length_s(),
        };
        self.buckets[i] = Some(match self.buckets[i] {
            None => s,
            Some(b) => merge(b, s),
        });
    }

    fn halve(&mut self) {
        for i in 0..BUCKETS / 2 {
            self.buckets[i] = match (self.buckets[2 * i], self.buckets[2 * i + 1]) {
                (None, x) | (x, None) => x,
                (Some(a), Some(b)) => Some(merge(a, b)),
            };
        }
        for b in self.buckets[BUCKETS / 2..].iter_mut() {
            *b = None;
        }
        self.width_s *= 2.0;
    }

    /// The boxes as one line: along 0, up to each box's height over its span.
    pub fn outline(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        for b in self.buckets.iter().flatten() {
            out.extend([
                (b.start, 0.0),
                (b.start, b.longest),
                (b.end, b.longest),
                (b.end, 0.0),
            ]);
        }
        out
    }
}

fn merge(a: Span, b: Span) -> Span {
    Span {
        start: a.start.min(b.start),
        end: a.end.max(b.end),
        longest: a.longest.max(b.longest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: f64, periods: u64, throttled: u64) -> ThrottleDelta {
        ThrottleDelta {
            t_s: t,
            dt_s: 0.1,
            nr_periods: Some(periods),
            nr_throttled: Some(throttled),
            throttled_s: Some(0.08 * throttled as f64),
        }
    }

    #[test]
    fn episodes_become_boxes_in_bounded_memory() {
        let mut b = EpisodeBoxes::new(0.1);
        // 100 000 periods, those numbered 0 to 4 modulo 100 throttled: runs of 5, cut off
        // at the start (1 to 4) and at the end (100 000 alone).
        for i in 1..=100_000u64 {
            let throttled = u64::from(i % 100 < 5);
            b.push(&row(i as f64 * 0.1, 1, throttled));
        }
        b.finish();
        assert_eq!((b.count, b.cut_off), (1001, 2));
        assert!((b.longest_s - 0.5).abs() < 1e-6, "{}", b.longest_s);
        let o = b.outline();
        assert!(o.len() <= 4 * BUCKETS, "{}", o.len());
        assert!(o.iter().all(|p| p.1 == 0.0 || (p.1 - 0.5).abs() < 1e-6));
        assert!(o.windows(2).all(|w| w[0].0 <= w[1].0 + 1e-9), "time order");
        // Without the counters: nothing to draw, and said so.
        let mut none = EpisodeBoxes::new(0.1);
        none.push(&ThrottleDelta {
            t_s: 0.1,
            dt_s: 0.1,
            ..ThrottleDelta::default()
        });
        assert!(!none.reported());
    }
}
