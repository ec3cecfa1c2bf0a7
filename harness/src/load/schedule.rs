//! When each request is due: the open-loop schedule, fixed before the run and never
//! moved by how fast the service answers.
//!
//! Every connection has its own stream of due times at `rate / connections`:
//! - constant: connection c's k-th request is due at `(c + k * connections) / rate`, so
//!   the connections together give exactly one request every `1 / rate`, in order;
//! - Poisson: exponential gaps of mean `connections / rate`, from a generator seeded by
//!   the run's seed and the connection number. Independent Poisson streams add up to a
//!   Poisson stream of the total rate, so the whole run is Poisson at `rate`, and the same
//!   seed gives the same due times.
//!
//! A request's number is `k * connections + c` (in due order for the constant schedule).

/// How arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// One request every `1 / rate`.
    Constant,
    /// Exponential gaps (a Poisson process) from this seed.
    Poisson { seed: u64 },
}

/// SplitMix64: a small, fast, well-mixed generator; enough for arrival gaps, and
/// reproducible from a seed without a dependency.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The due times of one connection's requests, in ns since time zero.
#[derive(Debug, Clone)]
pub struct ConnSchedule {
    arrivals: Arrivals,
    conn: u64,
    connections: u64,
    rate: f64,
    /// Requests of this connection already taken.
    k: u64,
    /// Due time of the next one (Poisson: running sum of gaps, kept in f64 ns so the
    /// rounding of each gap does not add up).
    next_f: f64,
    rng: SplitMix64,
}

impl ConnSchedule {
    /// Connection `conn` of `connections`, at a total of `rate` requests per second.
    pub fn new(arrivals: Arrivals, rate: f64, conn: u32, connections: u32) -> ConnSchedule {
        let seed = match arrivals {
            Arrivals::Poisson { seed } => seed ^ (u64::from(conn) << 32 | 0x5EED),
            Arrivals::Constant => 0,
        };
        let mut s = ConnSchedule {
            arrivals,
            conn: u64::from(conn),
            connections: u64::from(connections.max(1)),
            rate,
            k: 0,
            next_f: 0.0,
            rng: SplitMix64::new(seed),
        };
        s.next_f = s.due_f(0, 0.0);
        s
    }

    /// Mean gap of one connection, in ns.
    fn mean_gap_ns(&self) -> f64 {
        self.connections as f64 * 1e9 / self.rate
    }

    /// Due time of request k, given that of request k - 1.
    fn due_f(&mut self, k: u64, previous: f64) -> f64 {
        match self.arrivals {
            Arrivals::Constant => (self.conn + k * self.connections) as f64 * 1e9 / self.rate,
            Arrivals::Poisson { .. } => {
                // Inverse transform: -ln(1 - u) is exponential with mean 1.
                previous - (1.0 - self.rng.next_f64()).ln() * self.mean_gap_ns()
            }
        }
    }

    /// When the next request is due, in ns since time zero.
    #[inline]
    pub fn next_due_ns(&self) -> u64 {
        self.next_f as u64
    }

    /// The next request's number across all connections.
    #[inline]
    pub fn next_index(&self) -> u64 {
        self.k * self.connections + self.conn
    }

    /// Move on to the request after the next.
    #[inline]
    pub fn advance(&mut self) {
        self.k += 1;
        self.next_f = self.due_f(self.k, self.next_f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every due time of `connections` schedules before `end_ns`, sorted.
    fn merged(arrivals: Arrivals, rate: f64, connections: u32, end_ns: u64) -> Vec<(u64, u64)> {
        let mut all = Vec::new();
        for c in 0..connections {
            let mut s = ConnSchedule::new(arrivals, rate, c, connections);
            while s.next_due_ns() < end_ns {
                all.push((s.next_due_ns(), s.next_index()));
                s.advance();
            }
        }
        all.sort();
        all
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced_across_connections() {
        // 1000/s over 3 connections for 1 s: exactly 1000 requests, one per ms, numbered
        // in due order.
        let all = merged(Arrivals::Constant, 1000.0, 3, 1_000_000_000);
        assert_eq!(all.len(), 1000);
        for (i, &(due, index)) in all.iter().enumerate() {
            assert_eq!(index, i as u64);
            assert!(due.abs_diff(i as u64 * 1_000_000) <= 1, "{i}: {due}");
        }
    }

    #[test]
    fn constant_schedule_does_not_drift() {
        // 3 per second: gaps of 333,333,333.3 ns must not lose a ns each.
        let mut s = ConnSchedule::new(Arrivals::Constant, 3.0, 0, 1);
        for _ in 0..3_000 {
            s.advance();
        }
        assert!(s.next_due_ns().abs_diff(1_000_000_000_000) <= 1);
    }

    #[test]
    fn poisson_arrivals_have_the_rate_and_exponential_gaps() {
        // 200,000 arrivals at 10,000/s over 4 connections.
        let rate = 10_000.0;
        let all = merged(Arrivals::Poisson { seed: 7 }, rate, 4, 20_000_000_000);
        let n = all.len() as f64;
        assert!((n / 200_000.0 - 1.0).abs() < 0.02, "{n} arrivals");
        let gaps: Vec<f64> = all.windows(2).map(|w| (w[1].0 - w[0].0) as f64).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean / 1e5 - 1.0).abs() < 0.02, "mean gap {mean} ns");
        // An exponential's standard deviation equals its mean, and e^-1 of the gaps are
        // longer than the mean.
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((sd / mean - 1.0).abs() < 0.03, "sd/mean {}", sd / mean);
        let longer = gaps.iter().filter(|&&g| g > mean).count() as f64 / gaps.len() as f64;
        assert!((longer - (-1.0f64).exp()).abs() < 0.01, "{longer}");
    }

    #[test]
    fn poisson_is_reproducible_from_its_seed() {
        let a = merged(Arrivals::Poisson { seed: 1 }, 500.0, 2, 1_000_000_000);
        let b = merged(Arrivals::Poisson { seed: 1 }, 500.0, 2, 1_000_000_000);
        let c = merged(Arrivals::Poisson { seed: 2 }, 500.0, 2, 1_000_000_000);
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Connections draw different gaps.
        let c0 = ConnSchedule::new(Arrivals::Poisson { seed: 1 }, 500.0, 0, 2).next_due_ns();
        let c1 = ConnSchedule::new(Arrivals::Poisson { seed: 1 }, 500.0, 1, 2).next_due_ns();
        assert_ne!(c0, c1);
    }
}
