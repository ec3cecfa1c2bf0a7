//! Statistics, in one place for the whole suite (the harness and the workload
//! generator): sorting, nearest-rank percentiles, the median, mean and standard
//! deviation; Student's t (for `check`'s confidence bounds); the normal distribution;
//! and the Mann-Whitney U test with the Hodges-Lehmann shift interval (for `compare`).
//!
//! One rule each, used everywhere:
//! - a percentile is by nearest rank (`percentile`): the smallest value with at least
//!   p% of the values at or below it, so a reported p99 is a latency that happened;
//! - a median is the middle value, or the mean of the middle two (`median`); only the
//!   threshold search's judgement of on-periods takes the lower middle, and says why
//!   (`lower_median`).
//!
//! It lives in the `fibtest` crate, the one both binaries build on, so that the
//! workload generator's own summary uses the same percentile as the harness's files.
//! The special functions are small textbook approximations (Lanczos' ln Γ, Numerical
//! Recipes' continued fraction for the incomplete beta, Cody's erfc), each tested
//! against published tables: no statistics crate offers the exact small-sample U
//! distribution that `compare` needs for 3 + 3 runs.

/// The p-th percentile (0 < p <= 100) of `sorted` by the nearest-rank method: the
/// smallest value such that at least p% of values are at or below it. Exact (no
/// interpolation), so a reported p99 is a latency that really happened.
///
/// ```
/// use fibtest::stats::{percentile, sorted};
/// let latencies = sorted([0.44, 0.38, 0.50, 0.44]);
/// assert_eq!(percentile(&latencies, 50.0), Some(0.44));
/// assert_eq!(percentile(&latencies, 99.0), Some(0.50));
/// ```
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Sort values for `percentile` (NaN last).
pub fn sorted(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Median of a sample: the middle value, or the mean of the middle two for an even count.
/// This is the median everywhere in the suite (summaries, `check`, `compare`, the
/// threshold search's rates); see `lower_median` for the one place that needs another.
pub fn median(values: &[f64]) -> Option<f64> {
    let s = sorted(values.iter().copied());
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

/// The arithmetic mean.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The lower middle of a sample (for an even count, the smaller of the middle two), for
/// a decision that must not be carried by the better half: the threshold search judges
/// a duty share by its on-periods, and of two on-periods where a late limiter let one
/// run free on a debt and held the next, the held one must decide (with the mean of the
/// two, a throttled share would read as sustainable).
pub fn lower_median(values: &[f64]) -> Option<f64> {
    let s = sorted(values.iter().copied());
    (!s.is_empty()).then(|| s[(s.len() - 1) / 2])
}

/// Sample standard deviation (n − 1).
pub fn std_dev(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized incomplete beta I_x(a, b) (continued fraction, Numerical Recipes' betacf).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(b, a, 1.0 - x);
    }
    let tiny = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < tiny { tiny } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < tiny { tiny } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + aa * d;
        d = if d.abs() < tiny { tiny } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < tiny { tiny } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    front * h / a
}

/// Student's t distribution function with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The `p` quantile (0.5 <= p < 1) of Student's t with `df` degrees of freedom.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1e4);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Number of ways to get each U in 0..=n*m with samples of n and m without ties:
/// counts[u] / C(n+m, n) is P(U = u) under no difference.
pub fn u_counts(n: usize, m: usize) -> Vec<f64> {
    // f[i][j][u]: arrangements of i and j values with U = u (recurrence on the largest value).
    let mut f = vec![vec![Vec::<f64>::new(); m + 1]; n + 1];
    for i in 0..=n {
        for j in 0..=m {
            let mut v = vec![0.0; i * j + 1];
            if i == 0 || j == 0 {
                v[0] = 1.0;
            } else {
                // Largest value from the first sample: it exceeds all j of the second.
                for (u, x) in f[i - 1][j].iter().enumerate() {
                    v[u + j] += x;
                }
                for (u, x) in f[i][j - 1].iter().enumerate() {
                    v[u] += x;
                }
            }
            f[i][j] = v;
        }
    }
    f[n][m].clone()
}

/// P(U <= k) under no difference, exact (no ties).
fn u_cdf(counts: &[f64], k: usize) -> f64 {
    let total: f64 = counts.iter().sum();
    counts.iter().take(k + 1).sum::<f64>() / total
}

/// The smallest two-sided p any data can give with n and m runs.
pub fn smallest_p(n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 {
        return 1.0;
    }
    // 2 / C(n+m, n)
    let mut c = 1.0;
    for i in 0..n {
        c = c * (m + n - i) as f64 / (i + 1) as f64;
    }
    (2.0 / c).min(1.0)
}

/// Standard normal distribution function.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Complementary error function (W. J. Cody's rational approximation as in Numerical
/// Recipes' erfcc; relative error below 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Two-sided p of the Mann-Whitney U test of `a` against `b`.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return 1.0;
    }
    let mut u: f64 = 0.0;
    for x in a {
        for y in b {
            u += if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            };
        }
    }
    let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
    all.sort_by(|x, y| x.total_cmp(y));
    let mut tie_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1] == all[i] {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        tie_sum += t * t * t - t;
        i = j + 1;
    }
    let nm = (n * m) as f64;
    if tie_sum == 0.0 && n <= 20 && m <= 20 {
        let counts = u_counts(n, m);
        let lo = u.min(nm - u) as usize;
        return (2.0 * u_cdf(&counts, lo)).min(1.0);
    }
    let big_n = (n + m) as f64;
    let var = nm / 12.0 * ((big_n + 1.0) - tie_sum / (big_n * (big_n - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = ((u - nm / 2.0).abs() - 0.5).max(0.0) / var.sqrt();
    (2.0 * (1.0 - normal_cdf(z))).min(1.0)
}

/// Hodges-Lehmann shift of `b` over `a` (median of all differences b − a) and its
/// interval at level 1 − alpha, or the widest interval with the level it reaches.
pub fn hodges_lehmann(a: &[f64], b: &[f64], alpha: f64) -> (f64, Option<(f64, f64, f64)>) {
    let mut d: Vec<f64> = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| y - x))
        .collect();
    d.sort_by(|x, y| x.total_cmp(y));
    let shift = median(&d).unwrap_or(0.0);
    let (n, m) = (a.len(), b.len());
    if n < 2 || m < 2 {
        return (shift, None);
    }
    let nm = n * m;
    // c: the largest count with P(U <= c - 1) <= alpha / 2; the interval is the c-th
    // smallest and c-th largest difference, at level 1 - 2 P(U <= c - 1). With too few
    // runs no c >= 1 qualifies and the widest interval (c = 1) is given with its level.
    let c = if n <= 20 && m <= 20 {
        let counts = u_counts(n, m);
        let mut c = 0;
        while c < nm / 2 && u_cdf(&counts, c) <= alpha / 2.0 {
            c += 1;
        }
        let c = c.max(1);
        (c, 1.0 - 2.0 * u_cdf(&counts, c - 1))
    } else {
        let z = z_quantile(1.0 - alpha / 2.0);
        let sd = ((nm * (n + m + 1)) as f64 / 12.0).sqrt();
        let c = ((nm as f64 / 2.0 - z * sd).floor().max(1.0)) as usize;
        (c, 1.0 - alpha)
    };
    let (c, level) = c;
    let c = c.min(nm.div_ceil(2));
    (shift, Some((d[c - 1], d[nm - c], level)))
}

pub fn z_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0, 10.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v = sorted((1..=100).map(|x| x as f64));
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 99.9), Some(100.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.5), Some(1.0));
    }

    #[test]
    fn small_samples_return_real_values() {
        let v = sorted([0.44, 0.39, 0.455, 0.41]);
        assert_eq!(percentile(&v, 50.0), Some(0.41));
        assert_eq!(percentile(&v, 90.0), Some(0.455));
        assert_eq!(percentile(&[7.0], 99.9), Some(7.0));
    }

    #[test]
    fn empty_or_bad_p_is_none() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1.0], 0.0), None);
        assert_eq!(percentile(&[1.0], 101.0), None);
    }

    #[test]
    fn median_and_mean() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(mean(&[1.0, 2.0]), Some(1.5));
        assert_eq!(lower_median(&[4.0, 1.0, 2.0, 3.0]), Some(2.0));
        assert_eq!(lower_median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(lower_median(&[]), None);
    }

    #[test]
    fn t_quantiles_match_tables() {
        for (p, df, t) in [
            (0.95, 1.0, 6.313752),
            (0.95, 4.0, 2.131847),
            (0.975, 2.0, 4.302653),
            (0.99, 10.0, 2.763769),
            (0.95, 1000.0, 1.646379),
        ] {
            let q = t_quantile(p, df);
            assert!((q - t).abs() < 1e-4, "t({p}, {df}) = {q}, not {t}");
        }
    }

    #[test]
    fn exact_u_distribution() {
        // n = m = 3: C(6,3) = 20 arrangements, one each with U = 0 and U = 9.
        let c = u_counts(3, 3);
        assert_eq!(c.iter().sum::<f64>(), 20.0);
        assert_eq!((c[0], c[9], c[4]), (1.0, 1.0, 3.0));
        assert!((smallest_p(3, 3) - 0.1).abs() < 1e-12);
        assert!((mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]) - 0.1).abs() < 1e-12);
        // Completely separated samples of 5: p = 2/252.
        let p = mann_whitney(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert!((p - 2.0 / 252.0).abs() < 1e-12);
        // Interleaved: no evidence.
        assert!(mann_whitney(&[1.0, 3.0, 5.0, 7.0], &[2.0, 4.0, 6.0, 8.0]) > 0.5);
    }

    #[test]
    fn normal_approximation_with_ties() {
        let a: Vec<f64> = (0..30).map(|i| (i % 5) as f64).collect();
        let b: Vec<f64> = (0..30).map(|i| (i % 5) as f64 + 2.0).collect();
        assert!(mann_whitney(&a, &b) < 1e-4);
        assert!(mann_whitney(&a, &a) > 0.9);
        assert!((normal_cdf(1.959964) - 0.975).abs() < 1e-6);
    }

    #[test]
    fn hodges_lehmann_interval() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let b: Vec<f64> = a.iter().map(|x| x + 10.0).collect();
        let (shift, ci) = hodges_lehmann(&a, &b, 0.05);
        assert_eq!(shift, 10.0);
        let (lo, hi, level) = ci.unwrap();
        assert!(
            lo <= 10.0 && hi >= 10.0 && lo > 4.0 && hi < 16.0,
            "{lo} {hi}"
        );
        assert!(level >= 0.95);
        // 3 + 3 runs: no 95% interval; the widest has 90%.
        let (_, ci) = hodges_lehmann(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], 0.05);
        let (lo, hi, level) = ci.unwrap();
        assert_eq!((lo, hi), (1.0, 5.0));
        assert!((level - 0.9).abs() < 1e-12);
    }
}
