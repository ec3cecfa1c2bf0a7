//! The spinning thread's loop and what it records: a thread reads CLOCK_MONOTONIC in a
//! tight loop, and every gap above the threshold between two reads is time it did not
//! run. Everything is allocated before the loop; recording a gap never allocates.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, Ordering};

/// Width of the bins of lost time the time series is made from.
pub(super) const FINE_BIN_NS: u64 = 1_000_000;
/// Log2 buckets from the threshold: the last holds everything above 2^38 thresholds.
pub(super) const BUCKETS: usize = 40;
/// Largest gap the histogram tracks exactly (longer ones are recorded as this), in ns.
pub(super) const HIST_MAX_NS: u64 = 3_600_000_000_000;

/// A monotonic clock in ns (the real one, or a fake in tests).
pub trait Clock {
    fn now_ns(&mut self) -> u64;
}

/// CLOCK_MONOTONIC through the vDSO, as the C loop it is compared with reads it.
pub struct Monotonic;

impl Clock for Monotonic {
    #[inline(always)]
    fn now_ns(&mut self) -> u64 {
        fibtest::clock::mono_ns()
    }
}

/// What one spinning thread saw. Allocated before the loop; recording never allocates.
pub struct GapRecorder {
    pub(super) threshold_ns: u64,
    /// Time zero of the fine bins.
    pub(super) start_ns: u64,
    /// First and last clock reads of the loop.
    pub first_ns: u64,
    pub last_ns: u64,
    pub iterations: u64,
    pub gaps: u64,
    pub lost_ns: u64,
    pub max_ns: u64,
    pub(super) hist: Histogram<u64>,
    /// (count, total ns) of gaps in [threshold × 2^i, threshold × 2^(i+1)).
    pub(super) buckets: [(u64, u64); BUCKETS],
    /// Lost ns per FINE_BIN_NS since `start_ns` (a gap is split over the bins it spans).
    pub(super) fine: Vec<u64>,
}

impl GapRecorder {
    /// Room for `span_ns` of fine bins from `start_ns`; gaps past the end land in the last bin.
    pub fn new(threshold_ns: u64, start_ns: u64, span_ns: u64) -> GapRecorder {
        GapRecorder {
            threshold_ns: threshold_ns.max(1),
            start_ns,
            first_ns: start_ns,
            last_ns: start_ns,
            iterations: 0,
            gaps: 0,
            lost_ns: 0,
            max_ns: 0,
            hist: Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("valid bounds"),
            buckets: [(0, 0); BUCKETS],
            fine: vec![0; (span_ns / FINE_BIN_NS) as usize + 2],
        }
    }

    /// Move time zero of the fine bins (before the loop starts).
    pub fn set_start(&mut self, start_ns: u64) {
        self.start_ns = start_ns;
    }

    /// A gap from `from` to `to` (the two clock reads around it).
    #[cold]
    #[inline(never)]
    pub(super) fn record(&mut self, from: u64, to: u64) {
        let len = to - from;
        self.gaps += 1;
        self.lost_ns += len;
        self.max_ns = self.max_ns.max(len);
        self.hist.saturating_record(len.min(HIST_MAX_NS));
        let ratio = len / self.threshold_ns;
        let b = ((63 - ratio.max(1).leading_zeros()) as usize).min(BUCKETS - 1);
        self.buckets[b].0 += 1;
        self.buckets[b].1 += len;
        let last = self.fine.len() - 1;
        let bin = |t: u64| ((t.saturating_sub(self.start_ns) / FINE_BIN_NS) as usize).min(last);
        let (b0, b1) = (bin(from), bin(to));
        if b0 == b1 {
            self.fine[b0] += len;
            return;
        }
        // Split over the bins the gap spans.
        let mut t = from;
        for b in b0..b1 {
            let edge = self.start_ns + (b as u64 + 1) * FINE_BIN_NS;
            let edge = edge.clamp(t, to);
            self.fine[b] += edge - t;
            t = edge;
        }
        self.fine[b1] += to - t;
    }

    /// Lost ns in [from, to) (clock times), at the fine bins' resolution.
    pub(super) fn lost_between(&self, from: u64, to: u64) -> u64 {
        let last = self.fine.len();
        let bin = |t: u64| ((t.saturating_sub(self.start_ns) / FINE_BIN_NS) as usize).min(last);
        self.fine[bin(from)..bin(to)].iter().sum()
    }

    /// Mean time of one loop iteration that was not a gap, in ns.
    pub fn loop_ns(&self) -> f64 {
        let busy = (self.last_ns - self.first_ns).saturating_sub(self.lost_ns);
        let n = self.iterations.saturating_sub(self.gaps);
        if n == 0 {
            0.0
        } else {
            busy as f64 / n as f64
        }
    }

    /// Time the loop ran, in ns.
    pub fn span_ns(&self) -> u64 {
        self.last_ns - self.first_ns
    }
}

/// Spin until the clock reaches `end_ns` or `stop` is set (looked at every 1024
/// iterations), recording every gap above the threshold.
pub fn spin<C: Clock>(clock: &mut C, rec: &mut GapRecorder, end_ns: u64, stop: &AtomicBool) {
    let threshold = rec.threshold_ns;
    let mut prev = clock.now_ns();
    rec.first_ns = prev;
    let mut n: u64 = 0;
    loop {
        let t = clock.now_ns();
        if t - prev > threshold {
            rec.record(prev, t);
        }
        prev = t;
        n += 1;
        if t >= end_ns || (n & 1023 == 0 && stop.load(Ordering::Relaxed)) {
            break;
        }
    }
    rec.iterations = n;
    rec.last_ns = prev;
}
