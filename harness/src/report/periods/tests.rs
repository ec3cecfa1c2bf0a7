//! Tests of `periods`: the phase found from sampled counters, and requests looked up.

use super::*;

/// Samples every `interval` s (jittered by up to a fifth of it, deterministically) of a
/// group whose periods of `period` s start at `phase` s and whose periods `throttled`
/// (by number) ended throttled: (t, dt, nr_periods, nr_throttled) rows for `seconds`.
fn samples(
    period: f64,
    phase: f64,
    interval: f64,
    seconds: f64,
    throttled: &[i64],
) -> Vec<(f64, f64, u64, u64)> {
    let mut rows = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut prev = 0.0;
    let mut t = interval;
    while t < seconds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let jitter = (x % 1000) as f64 / 1000.0 * interval / 5.0;
        let now = t + jitter;
        // Boundaries phase + k·period in (prev, now].
        let first = ((prev - phase) / period).floor() as i64 + 1;
        let last = ((now - phase) / period).floor() as i64;
        let ended: Vec<i64> = (first..=last).map(|j| j - 1).collect();
        let n = ended.len() as u64;
        let thr = ended.iter().filter(|k| throttled.contains(k)).count() as u64;
        rows.push((now, now - prev, n, thr));
        prev = now;
        t += interval;
    }
    rows
}

fn grid_of(rows: &[(f64, f64, u64, u64)], period: f64) -> Grid {
    let mut v = PhaseVotes::new(period);
    for &(t, dt, n, _) in rows {
        v.add(t, dt, n);
    }
    v.grid().expect("boundaries were seen")
}

/// Distance between two phases on the circle of one period.
fn circular(a: f64, b: f64, period: f64) -> f64 {
    let d = (a - b).rem_euclid(period);
    d.min(period - d)
}

#[test]
fn the_phase_is_found_to_within_a_sample_interval() {
    for (period, phase, interval) in [
        (0.1, 0.037, 0.01),
        (0.1, 0.0995, 0.01),
        (0.05, 0.012, 0.005),
    ] {
        let rows = samples(period, phase, interval, 5.0, &[]);
        let g = grid_of(&rows, period);
        assert!(
            circular(g.phase_s, phase, period) <= interval / 2.0,
            "period {period} phase {phase}: found {g:?}"
        );
        // Samples on a jittered grid narrow the phase to the overlap of their intervals.
        assert!(g.spread_s <= interval, "{g:?}");
    }
}

#[test]
fn samples_as_long_as_half_a_period_say_nothing_of_the_phase() {
    let rows = samples(0.1, 0.03, 0.06, 5.0, &[]);
    let mut v = PhaseVotes::new(0.1);
    for &(t, dt, n, _) in &rows {
        v.add(t, dt, n);
    }
    assert_eq!(v.grid(), None);
}

#[test]
fn requests_are_looked_up_by_the_periods_of_their_due_time_and_end() {
    let (period, phase) = (0.1, 0.037);
    let throttled = [3, 4, 9];
    let rows = samples(period, phase, 0.01, 2.0, &throttled);
    let mut book = PeriodBook::new(grid_of(&rows, period));
    for &(t, dt, _, thr) in &rows {
        book.observe(t, dt, thr);
    }
    // Period k runs from phase + k·period.
    let at = |k: i64, frac: f64| phase + (k as f64 + frac) * period;
    // Due and ended in period 2, not throttled.
    let p = book.periods(at(2, 0.1), at(2, 0.9));
    assert_eq!((p.start, p.end), (2, 2));
    assert_eq!(p.start_throttled, Some(false));
    assert_eq!(p.throttled, Some(0));
    // Due in 2, ended in 5: touched 3 and 4.
    let p = book.periods(at(2, 0.5), at(5, 0.2));
    assert_eq!((p.start, p.end), (2, 5));
    assert_eq!(p.end_throttled, Some(false));
    assert_eq!(p.throttled, Some(2));
    // Due and ended in 9, which was throttled.
    let p = book.periods(at(9, 0.05), at(9, 0.95));
    assert_eq!(p.start_throttled, Some(true));
    assert_eq!(p.end_throttled, Some(true));
    assert_eq!(p.throttled, Some(1));
    // A period that had not ended when the series stopped is not known.
    let last = book.index(2.0);
    let p = book.periods(at(last, 0.1), at(last, 0.5));
    assert_eq!(p.end_throttled, None);
    assert_eq!(p.throttled, None);
}

#[test]
fn a_book_forgets_periods_older_than_its_ring() {
    let grid = Grid {
        period_s: 0.001,
        phase_s: 0.0,
        spread_s: 0.0,
        votes: 1,
    };
    let mut book = PeriodBook::new(grid);
    // Period 10 ends throttled: seen in a row just after its end.
    book.observe(0.0111, 0.001, 1);
    assert_eq!(book.throttled(10), Some(true));
    assert_eq!(book.throttled(9), Some(false));
    // Far later: period 10 has left the ring; a recent one is known and clear.
    let later = (RING as f64 + 100.0) * 0.001;
    book.observe(later, 0.001, 0);
    assert_eq!(book.throttled(10), None);
    assert_eq!(book.throttled(book.index(later) - 2), Some(false));
}
