//! Which CFS period each request fell in, and whether that period was throttled.
//!
//! The kernel says nothing per period; what the sampler records is how many periods
//! ended (`nr_periods`) and how many of them ended throttled (`nr_throttled`) between
//! two samples. Both counters move only when the period timer fires, at a period
//! boundary, so a sample interval in which `nr_periods` went up holds a boundary.
//! Boundaries lie on a grid `phase + k × period` (the timer is forwarded by whole
//! periods, even across idle stretches), so folding every such interval onto one period
//! and counting where they overlap finds the phase to within about one sample interval
//! (`PhaseVotes`; run.json gives the spread). A request due or ending that close to a
//! boundary may be filed under the neighbouring period. With the grid
//! known, each throttled count marks the period that ended at the boundary in its
//! interval (`PeriodBook`), and a request is looked up by the periods of its due time and
//! its end.
//!
//! Memory does not depend on the run's length: the votes are 1000 counters per group,
//! and a book keeps the last `RING` periods (about 1.8 hours of 100 ms periods); a
//! request whose due time is older than that reads as unknown. Requests come nearly in
//! the order they ended, so the time series is read alongside them, once.

/// Bins the period is folded into to find its phase.
const BINS: usize = 1000;

/// Periods a book remembers.
pub const RING: usize = 1 << 16;

/// Where the boundaries fall, folded onto one period.
#[derive(Debug, Clone)]
pub struct PhaseVotes {
    period_s: f64,
    bins: Vec<u32>,
    votes: u32,
}

/// The period grid of a group: boundaries at `phase_s + k × period_s`, in s since the
/// run's first sample; `spread_s` is how wide the best-supported stretch of phases was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub period_s: f64,
    pub phase_s: f64,
    pub spread_s: f64,
    /// Sample intervals that held a boundary and narrowed it.
    pub votes: u32,
}

impl PhaseVotes {
    pub fn new(period_s: f64) -> PhaseVotes {
        PhaseVotes {
            period_s,
            bins: vec![0; BINS],
            votes: 0,
        }
    }

    /// A sample at `t_s` whose interval of `dt_s` saw `nr_periods` period ends. Only an
    /// interval shorter than half a period with one boundary narrows the phase.
    pub fn add(&mut self, t_s: f64, dt_s: f64, nr_periods: u64) {
        if nr_periods != 1 || dt_s <= 0.0 || dt_s > self.period_s / 2.0 {
            return;
        }
        let p = self.period_s;
        let from = (t_s - dt_s).rem_euclid(p) / p * BINS as f64;
        let to = from + dt_s / p * BINS as f64;
        // Bins whose centre lies in (from, to], wrapping around the period.
        let first = (from - 0.5).floor() as i64 + 1;
        let last = (to - 0.5).floor() as i64;
        for b in first..=last {
            self.bins[b.rem_euclid(BINS as i64) as usize] += 1;
        }
        self.votes += 1;
    }

    /// The grid, when any interval voted: the middle of the longest run of bins with the
    /// most votes.
    pub fn grid(&self) -> Option<Grid> {
        if self.votes == 0 {
            return None;
        }
        let top = *self.bins.iter().max().expect("bins");
        // Longest circular run of top bins.
        let (mut best_start, mut best_len) = (0usize, 0usize);
        let mut i = 0;
        while i < BINS {
            if self.bins[i] == top {
                let mut len = 0;
                while len < BINS && self.bins[(i + len) % BINS] == top {
                    len += 1;
                }
                if len > best_len {
                    best_start = i;
                    best_len = len;
                }
                i += len.max(1);
            } else {
                i += 1;
            }
        }
        let bin_s = self.period_s / BINS as f64;
        let mid = best_start as f64 + best_len as f64 / 2.0;
        Some(Grid {
            period_s: self.period_s,
            phase_s: (mid * bin_s).rem_euclid(self.period_s),
            spread_s: best_len as f64 * bin_s,
            votes: self.votes,
        })
    }
}

/// Throttled periods of one group, the last `RING` of them, as read so far.
#[derive(Debug, Clone)]
pub struct PeriodBook {
    pub grid: Grid,
    bits: Vec<u64>,
    /// The newest period in the ring (its slot and those before it are valid).
    newest: i64,
    /// Time series read up to here, in s: periods that ended by then are known.
    read_to_s: f64,
}

impl PeriodBook {
    pub fn new(grid: Grid) -> PeriodBook {
        PeriodBook {
            grid,
            bits: vec![0; RING / 64],
            newest: i64::MIN,
            read_to_s: f64::NEG_INFINITY,
        }
    }

    /// The period that holds time `t_s`.
    pub fn index(&self, t_s: f64) -> i64 {
        ((t_s - self.grid.phase_s) / self.grid.period_s).floor() as i64
    }

    /// When period `k` ends.
    pub fn end_s(&self, k: i64) -> f64 {
        self.grid.phase_s + (k + 1) as f64 * self.grid.period_s
    }

    fn slot(k: i64) -> (usize, u64) {
        let i = k.rem_euclid(RING as i64) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    /// Make `k` the newest period, clearing the slots of the periods that enter.
    fn advance(&mut self, k: i64) {
        if self.newest == i64::MIN || k - self.newest >= RING as i64 {
            self.bits.iter_mut().for_each(|w| *w = 0);
            self.newest = k;
            return;
        }
        while self.newest < k {
            self.newest += 1;
            let (w, b) = Self::slot(self.newest);
            self.bits[w] &= !b;
        }
    }

    /// A time-series row: at `t_s`, over `dt_s`, `nr_throttled` periods ended throttled.
    pub fn observe(&mut self, t_s: f64, dt_s: f64, nr_throttled: u64) {
        let now = self.index(t_s);
        self.advance(now);
        self.read_to_s = self.read_to_s.max(t_s);
        if nr_throttled == 0 {
            return;
        }
        // The boundaries in (t - dt, t]: the last is that of period `now`'s start. With
        // none in the interval (the phase is known to a sample's jitter), the nearest.
        let p = self.grid.period_s;
        let last_boundary = self.grid.phase_s + now as f64 * p;
        let in_interval = ((last_boundary - (t_s - dt_s)) / p).ceil().max(0.0) as u64;
        let (ended_last, count) = if in_interval > 0 {
            (now - 1, nr_throttled.min(in_interval))
        } else {
            let nearest = ((t_s - self.grid.phase_s) / p).round() as i64;
            (nearest - 1, 1)
        };
        for k in (ended_last - count as i64 + 1)..=ended_last {
            self.mark(k);
        }
    }

    fn mark(&mut self, k: i64) {
        if k > self.newest || k <= self.newest - RING as i64 {
            return;
        }
        let (w, b) = Self::slot(k);
        self.bits[w] |= b;
    }

    /// Whether period `k` was throttled; None when it had not ended by the last row
    /// read, or is older than the ring.
    pub fn throttled(&self, k: i64) -> Option<bool> {
        if self.newest == i64::MIN || k <= self.newest - RING as i64 {
            return None;
        }
        if self.end_s(k) > self.read_to_s {
            return None;
        }
        let (w, b) = Self::slot(k);
        Some(self.bits[w] & b != 0)
    }

    /// How many of periods `a..=b` were throttled (None when any is unknown).
    pub fn throttled_in(&self, a: i64, b: i64) -> Option<u64> {
        let mut n = 0;
        for k in a..=b {
            n += self.throttled(k)? as u64;
        }
        Some(n)
    }
}

/// A request's periods: the one it was due in and the one it ended in, whether each was
/// throttled, and how many periods from the first to the last were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    pub start: i64,
    pub start_throttled: Option<bool>,
    pub end: i64,
    pub end_throttled: Option<bool>,
    pub throttled: Option<u64>,
}

impl PeriodBook {
    /// The periods of a request due at `due_s` that ended at `end_s`.
    pub fn periods(&self, due_s: f64, end_s: f64) -> Periods {
        let (start, end) = (self.index(due_s), self.index(end_s.max(due_s)));
        Periods {
            start,
            start_throttled: self.throttled(start),
            end,
            end_throttled: self.throttled(end),
            throttled: self.throttled_in(start, end),
        }
    }
}

#[cfg(test)]
mod tests;
