//! Statistics over per-unit values.

/// The p-th percentile (0 < p <= 100) of `sorted` by the nearest-rank method: the
/// smallest value such that at least p% of values are at or below it. Exact (no
/// interpolation), so a reported p99 is a latency that really happened.
///
/// ```
/// use throttlebench::report::stats::{percentile, sorted};
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

/// Median of a sample (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let s = sorted(values.iter().copied());
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
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
    }
}
