//! Reducing a long series to what a picture can show, in fixed memory: points are kept
//! as the minimum and maximum of each of at most `BUCKETS` time buckets, whose width
//! doubles (neighbours merged) whenever the series outgrows them. A plot is at most
//! about a thousand pixels wide, so two points per bucket lose nothing visible, and a
//! spike (a throttled period) stays a spike: its bucket's maximum is kept.

/// Buckets kept per series.
pub const BUCKETS: usize = 512;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// (t, v) of the smallest and of the largest value in the bucket.
    min: (f64, f64),
    max: (f64, f64),
}

/// A series reduced to min/max per time bucket.
#[derive(Debug, Clone)]
pub struct Reduced {
    width_s: f64,
    buckets: Vec<Option<Bucket>>,
    /// Points pushed.
    pub n: u64,
}

impl Reduced {
    /// A series whose first bucket width is `width_s` (the finest detail worth keeping,
    /// e.g. one CFS period).
    pub fn new(width_s: f64) -> Reduced {
        Reduced {
            width_s: width_s.max(1e-6),
            buckets: vec![None; BUCKETS],
            n: 0,
        }
    }

    /// Add a point; times are expected not to decrease much (any order is correct,
    /// only memory and time are bounded).
    pub fn push(&mut self, t: f64, v: f64) {
        if !(t.is_finite() && v.is_finite()) {
            return;
        }
        let mut i = (t.max(0.0) / self.width_s) as usize;
        while i >= BUCKETS {
            self.halve();
            i = (t.max(0.0) / self.width_s) as usize;
        }
        self.n += 1;
        let b = &mut self.buckets[i];
        match b {
            None => {
                *b = Some(Bucket {
                    min: (t, v),
                    max: (t, v),
                })
            }
            Some(b) => {
                if v < b.min.1 {
                    b.min = (t, v);
                }
                if v > b.max.1 {
                    b.max = (t, v);
                }
            }
        }
    }

    /// Merge neighbouring buckets: twice as wide, half as many.
    fn halve(&mut self) {
        for i in 0..BUCKETS / 2 {
            let (a, b) = (self.buckets[2 * i], self.buckets[2 * i + 1]);
            self.buckets[i] = match (a, b) {
                (None, x) | (x, None) => x,
                (Some(a), Some(b)) => Some(Bucket {
                    min: if b.min.1 < a.min.1 { b.min } else { a.min },
                    max: if b.max.1 > a.max.1 { b.max } else { a.max },
                }),
            };
        }
        for b in self.buckets[BUCKETS / 2..].iter_mut() {
            *b = None;
        }
        self.width_s *= 2.0;
    }

    /// The points to draw, in time order: each bucket's minimum and maximum.
    pub fn points(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(2 * BUCKETS);
        for b in self.buckets.iter().flatten() {
            let (p, q) = if b.min.0 <= b.max.0 {
                (b.min, b.max)
            } else {
                (b.max, b.min)
            };
            out.push(p);
            if q != p {
                out.push(q);
            }
        }
        out
    }

    /// The largest value pushed.
    pub fn max(&self) -> Option<f64> {
        self.buckets
            .iter()
            .flatten()
            .map(|b| b.max.1)
            .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
    }
}

/// Sums of a column over consecutive samples until `window_s` is covered, as a mean per
/// second, pushed at the window's end: the rate over one CFS period.
#[derive(Debug, Clone)]
pub struct Windowed {
    window_s: f64,
    sum: f64,
    dt: f64,
    /// Whether any sample had a value (an empty cell is "not reported", not 0).
    pub reported: bool,
    pub out: Reduced,
}

impl Windowed {
    pub fn new(window_s: f64) -> Windowed {
        Windowed {
            window_s,
            sum: 0.0,
            dt: 0.0,
            reported: false,
            out: Reduced::new(window_s),
        }
    }

    /// A sample at `t_s` covering `dt_s` with value `v` (None: not reported).
    pub fn push(&mut self, t_s: f64, dt_s: f64, v: Option<f64>) {
        if let Some(v) = v {
            self.reported = true;
            self.sum += v;
        }
        self.dt += dt_s;
        if self.dt >= self.window_s * 0.999 {
            if self.reported {
                self.out.push(
                    t_s,
                    if self.dt > 0.0 {
                        self.sum / self.dt
                    } else {
                        0.0
                    },
                );
            }
            self.sum = 0.0;
            self.dt = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_series_keeps_bounded_points_and_its_spikes() {
        let mut r = Reduced::new(0.1);
        // 100 000 points of 0 with one spike of 1 at t = 5000.0.
        for i in 0..100_000u32 {
            let t = i as f64 * 0.1;
            r.push(t, if i == 50_000 { 1.0 } else { 0.0 });
        }
        let p = r.points();
        assert!(p.len() <= 2 * BUCKETS, "{}", p.len());
        assert_eq!(r.n, 100_000);
        assert_eq!(r.max(), Some(1.0));
        assert!(p
            .iter()
            .any(|&(t, v)| v == 1.0 && (t - 5000.0).abs() < 1e-6));
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
    }

    #[test]
    fn windows_cover_one_period_and_absent_values_are_not_zero() {
        let mut w = Windowed::new(0.1);
        for k in 1..=10 {
            w.push(k as f64 * 0.05, 0.05, Some(0.02));
        }
        let p = w.out.points();
        assert_eq!(p.len(), 5);
        assert!(p.iter().all(|&(_, v)| (v - 0.4).abs() < 1e-9), "{p:?}");
        let mut none = Windowed::new(0.1);
        for k in 1..=10 {
            none.push(k as f64 * 0.05, 0.05, None);
        }
        assert!(!none.reported);
        assert!(none.out.points().is_empty());
    }
}
