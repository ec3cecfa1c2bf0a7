//! One group's exported values in atomics: written by one sampler thread, read by any
//! number of scrapes, with no lock and no allocation on either side.
//!
//! A sequence lock keeps a scrape from mixing two ticks (throttled periods from one tick
//! with periods from the one before would make a ratio above 1): the writer makes the
//! sequence odd, stores the values, and makes it even again; a reader copies the values and
//! keeps the copy only if the sequence was even and unchanged around it, else it copies
//! again. The writer never waits; a reader retries at most while one tick is being stored
//! (a dozen stores). The orderings are the standard seqlock fences (Boehm, "Can seqlocks
//! get along with programming language memory models?").

use std::sync::atomic::{fence, AtomicU64, Ordering::*};

/// The bit pattern of an absent value: a NaN that no arithmetic produces.
const ABSENT: u64 = u64::MAX;

/// The values a group exports, one cell each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Periods,
    Throttled,
    ThrottledS,
    Bursts,
    BurstS,
    UsageS,
    PressureWaitingS,
    StealS,
    QuotaS,
    PeriodS,
    BurstLimitS,
    EpisodeOngoingS,
}

const N_SLOTS: usize = 12;

/// Upper bounds of the episode-length histogram, s (the last bucket is +Inf).
pub const EPISODE_BUCKETS_S: [f64; 10] = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0];
/// Upper bounds of the latency histogram, s (the last bucket is +Inf).
pub const LATENCY_BUCKETS_S: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const N_EPISODE: usize = EPISODE_BUCKETS_S.len() + 1;
const N_LATENCY: usize = LATENCY_BUCKETS_S.len() + 1;

/// A histogram's cells: a count per bucket (not cumulative) and the sum.
#[derive(Debug)]
struct HistCells<const N: usize> {
    counts: [AtomicU64; N],
    sum_bits: AtomicU64,
}

impl<const N: usize> HistCells<N> {
    fn new() -> Self {
        HistCells {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Single writer: a load and a store, no read-modify-write needed.
    fn observe(&self, bounds: &[f64], v: f64) {
        let i = bounds.partition_point(|&b| b < v);
        let c = &self.counts[i];
        c.store(c.load(Relaxed) + 1, Relaxed);
        let sum = f64::from_bits(self.sum_bits.load(Relaxed)) + v;
        self.sum_bits.store(sum.to_bits(), Relaxed);
    }

    fn read(&self) -> HistSnapshot<N> {
        HistSnapshot {
            counts: std::array::from_fn(|i| self.counts[i].load(Relaxed)),
            sum: f64::from_bits(self.sum_bits.load(Relaxed)),
        }
    }
}

/// A histogram as one scrape saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HistSnapshot<const N: usize> {
    /// Observations per bucket (not cumulative); the last is +Inf.
    pub counts: [u64; N],
    pub sum: f64,
}

impl<const N: usize> HistSnapshot<N> {
    /// (upper bound, count in that bucket) pairs, +Inf last, as the encoder takes them.
    pub fn buckets(&self, bounds: &[f64]) -> [(f64, u64); N] {
        std::array::from_fn(|i| {
            (
                bounds.get(i).copied().unwrap_or(f64::INFINITY),
                self.counts[i],
            )
        })
    }
}

/// All of a group's cells.
#[derive(Debug)]
pub(crate) struct Cells {
    seq: AtomicU64,
    values: [AtomicU64; N_SLOTS],
    episodes: HistCells<N_EPISODE>,
    latency: HistCells<N_LATENCY>,
}

/// A consistent copy of a group's cells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Snapshot {
    values: [u64; N_SLOTS],
    pub episodes: HistSnapshot<N_EPISODE>,
    pub latency: HistSnapshot<N_LATENCY>,
}

impl Snapshot {
    pub fn get(&self, slot: Slot) -> Option<f64> {
        let bits = self.values[slot as usize];
        (bits != ABSENT).then(|| f64::from_bits(bits))
    }
}

/// What a write may do (only inside `Cells::write`).
pub(crate) struct Writer<'a>(&'a Cells);

impl Writer<'_> {
    pub fn set(&self, slot: Slot, v: Option<f64>) {
        let bits = match v {
            Some(x) if !x.is_nan() => x.to_bits(),
            _ => ABSENT,
        };
        self.0.values[slot as usize].store(bits, Relaxed);
    }

    pub fn observe_episode(&self, length_s: f64) {
        self.0.episodes.observe(&EPISODE_BUCKETS_S, length_s);
    }

    pub fn observe_latency(&self, latency_s: f64) {
        self.0.latency.observe(&LATENCY_BUCKETS_S, latency_s);
    }
}

impl Cells {
    /// Every value absent, histograms empty.
    pub fn new() -> Cells {
        Cells {
            seq: AtomicU64::new(0),
            values: std::array::from_fn(|_| AtomicU64::new(ABSENT)),
            episodes: HistCells::new(),
            latency: HistCells::new(),
        }
    }

    /// Store values. Only one thread may write at a time: `GroupHandle`, which owns the
    /// writing side, is neither `Clone` nor `Sync`-shared and writes through `&mut self`.
    pub fn write(&self, f: impl FnOnce(&Writer)) {
        let s = self.seq.load(Relaxed);
        self.seq.store(s.wrapping_add(1), Relaxed);
        fence(Release);
        f(&Writer(self));
        self.seq.store(s.wrapping_add(2), Release);
    }

    /// A consistent copy: retried while a write is under way.
    pub fn read(&self) -> Snapshot {
        let mut spins = 0u32;
        loop {
            let s1 = self.seq.load(Acquire);
            if s1 & 1 == 0 {
                let snap = Snapshot {
                    values: std::array::from_fn(|i| self.values[i].load(Relaxed)),
                    episodes: self.episodes.read(),
                    latency: self.latency.read(),
                };
                fence(Acquire);
                if self.seq.load(Relaxed) == s1 {
                    return snap;
                }
            }
            spins += 1;
            if spins & 63 == 0 {
                // The writer was preempted in the middle of a tick: let it finish.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}
