//! What Prometheus computes from scraped counter samples: `increase()` and `rate()` with
//! its extrapolation rules, and an alerting rule's `for:` state.
//!
//! Ported from Prometheus's `extrapolatedRate` ([Prometheus extrapolatedRate]), float samples without
//! start timestamps (what a scrape of the text format gives). Three versions differ:
//! - before 2.51 (Debian 12 ships 2.42): a range `[W]` evaluated at T holds the samples
//!   with T - W <= t <= T, and the extrapolation towards the start is first limited to
//!   where the counter would reach zero, then compared with the threshold;
//! - 2.51 to 2.55: the threshold comes first, then the zero limit;
//! - 3.0 and later: as 2.51, and the range is left-open: T - W < t <= T.
//!
//! The rule: with `n >= 2` samples in the range, the increase between the first and the
//! last (counter resets added back) is stretched to the range's edges where a sample is
//! closer to an edge than 1.1 times the average spacing of the samples; where it is not,
//! only by half that spacing (the series is assumed to start or end there). So an
//! `increase()` is not an exact count: `increase(x[5m])` over 15 s scrapes sees 4 min 45 s
//! or 5 min of samples and scales them to 5 min.

/// Which Prometheus's rules to follow (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromVersion {
    /// Before 2.51 (Debian 12's prometheus 2.42).
    Before2_51,
    /// 2.51 up to 3.0.
    Before3,
    /// 3.0 and later.
    V3,
}

impl PromVersion {
    /// The rules of a Prometheus version as its build info prints it ("2.42.0",
    /// "3.5.0-rc.1"); `None` for text that is not a version.
    pub fn from_version(text: &str) -> Option<PromVersion> {
        let mut it = text.trim().trim_start_matches('v').split(['.', '-', '+']);
        let major: u32 = it.next()?.parse().ok()?;
        let minor: u32 = it.next()?.parse().ok()?;
        Some(match (major, minor) {
            (0..=1, _) => PromVersion::Before2_51,
            (2, 0..=50) => PromVersion::Before2_51,
            (2, _) => PromVersion::Before3,
            _ => PromVersion::V3,
        })
    }

    fn left_open(self) -> bool {
        self == PromVersion::V3
    }
}

/// One scraped sample: Prometheus's timestamp (ms) and the counter's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t_ms: i64,
    pub v: f64,
}

/// The samples of `samples` (in time order) that a range `[range_ms]` evaluated at
/// `eval_ms` selects.
pub fn select(samples: &[Sample], eval_ms: i64, range_ms: i64, version: PromVersion) -> &[Sample] {
    let start = eval_ms - range_ms;
    let lo = if version.left_open() {
        samples.partition_point(|s| s.t_ms <= start)
    } else {
        samples.partition_point(|s| s.t_ms < start)
    };
    let hi = samples.partition_point(|s| s.t_ms <= eval_ms);
    &samples[lo..hi.max(lo)]
}

/// `increase(x[range])` evaluated at `eval_ms` over the scraped `samples` of one series
/// (in time order): `None` where Prometheus returns no value (fewer than two samples in
/// the range).
pub fn increase(
    samples: &[Sample],
    eval_ms: i64,
    range_ms: i64,
    version: PromVersion,
) -> Option<f64> {
    let s = select(samples, eval_ms, range_ms, version);
    if s.len() < 2 {
        return None;
    }
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut result = last.v - first.v;
    for w in s.windows(2) {
        if w[1].v < w[0].v {
            // A counter reset: the value before it was counted up from zero.
            result += w[0].v;
        }
    }
    let range_start = eval_ms - range_ms;
    let mut to_start = (first.t_ms - range_start) as f64 / 1000.0;
    let mut to_end = (eval_ms - last.t_ms) as f64 / 1000.0;
    let sampled = (last.t_ms - first.t_ms) as f64 / 1000.0;
    let average = sampled / (s.len() - 1) as f64;
    let threshold = average * 1.1;
    let to_zero = || (result > 0.0 && first.v >= 0.0).then(|| sampled * (first.v / result));
    match version {
        PromVersion::Before2_51 => {
            if let Some(z) = to_zero() {
                to_start = to_start.min(z);
            }
            if to_start >= threshold {
                to_start = average / 2.0;
            }
        }
        PromVersion::Before3 | PromVersion::V3 => {
            if to_start >= threshold {
                to_start = average / 2.0;
            }
            if let Some(z) = to_zero() {
                to_start = to_start.min(z);
            }
        }
    }
    if to_end >= threshold {
        to_end = average / 2.0;
    }
    let factor = if sampled != 0.0 {
        (sampled + to_start + to_end) / sampled
    } else {
        1.0
    };
    Some(result * factor)
}

/// `rate(x[range])`: `increase` per second of the range.
pub fn rate(samples: &[Sample], eval_ms: i64, range_ms: i64, version: PromVersion) -> Option<f64> {
    increase(samples, eval_ms, range_ms, version).map(|v| v / (range_ms as f64 / 1000.0))
}

/// An alert's state after an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// The expression was false (or had no value).
    Inactive,
    /// True, for less than `for:` so far.
    Pending,
    /// True at every evaluation for at least `for:`.
    Firing,
}

/// An alerting rule's `for:` bookkeeping (Prometheus's rules/alerting.go): an alert
/// becomes active at the first evaluation where its expression holds, fires once it has
/// held at every evaluation for `for:` (at once with `for: 0`), and is dropped at the first
/// evaluation where it does not hold.
#[derive(Debug, Clone, Copy)]
pub struct AlertTracker {
    for_ms: i64,
    active_at_ms: Option<i64>,
}

impl AlertTracker {
    pub fn new(for_ms: i64) -> AlertTracker {
        AlertTracker {
            for_ms,
            active_at_ms: None,
        }
    }

    /// One evaluation at `eval_ms` whose expression held (`true`) or not.
    pub fn step(&mut self, eval_ms: i64, holds: bool) -> AlertState {
        if !holds {
            self.active_at_ms = None;
            return AlertState::Inactive;
        }
        let since = *self.active_at_ms.get_or_insert(eval_ms);
        if self.for_ms == 0 || eval_ms - since >= self.for_ms {
            AlertState::Firing
        } else {
            AlertState::Pending
        }
    }
}
