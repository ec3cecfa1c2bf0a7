//! Episodes found in constructed series: fine and coarse samples, gaps, absent counters.

use super::*;

const P: f64 = 0.1;

/// A sample ending at `t_s` after `dt_s`, counting `p` periods of which `k` throttled,
/// with `thr_s` throttled time.
fn d(t_s: f64, dt_s: f64, p: u64, k: u64, thr_s: f64) -> ThrottleDelta {
    ThrottleDelta {
        t_s,
        dt_s,
        nr_periods: Some(p),
        nr_throttled: Some(k),
        throttled_s: Some(thr_s),
    }
}

/// Fine samples (10 ms) of a group whose periods end at 0.1, 0.2, ...: each entry of
/// `periods` is (throttled, throttled time in that period). Times are built from integer
/// milliseconds so that consecutive samples meet exactly.
fn fine(periods: &[(bool, f64)]) -> Vec<ThrottleDelta> {
    let mut v = Vec::new();
    for (i, &(thr, thr_s)) in periods.iter().enumerate() {
        for j in 1..=10 {
            let t = ((i * 100 + j * 10) as f64) / 1000.0;
            if j == 10 {
                v.push(d(t, 0.01, 1, thr as u64, thr_s));
            } else {
                v.push(d(t, 0.01, 0, 0, 0.0));
            }
        }
    }
    v
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn fine_samples_give_exact_runs_of_throttled_periods() {
    // clear, 3 throttled (60 ms each), clear, clear, 1 throttled (20 ms), clear
    let s = fine(&[
        (false, 0.0),
        (true, 0.06),
        (true, 0.06),
        (true, 0.06),
        (false, 0.0),
        (false, 0.0),
        (true, 0.02),
        (false, 0.0),
    ]);
    let list = find_episodes(&s, P).unwrap();
    assert_eq!(list.periods, 8);
    assert_eq!(list.throttled_periods, 4);
    assert_eq!(list.gaps, 0);
    assert_eq!(list.episodes.len(), 2, "{list:?}");
    let e = &list.episodes[0];
    assert!(close(e.start_s, 0.1) && close(e.end_s, 0.4), "{e:?}");
    assert!(close(e.length_s(), 0.3));
    assert_eq!((e.periods, e.throttled_periods), (3, 3));
    assert!(close(e.throttled_s.unwrap(), 0.18));
    assert!(close(e.peak_throttled_share.unwrap(), 0.6));
    assert!(e.exact && !e.truncated);
    let e = &list.episodes[1];
    assert!(close(e.start_s, 0.6) && close(e.end_s, 0.7), "{e:?}");
    assert_eq!(e.periods, 1);
    assert!(close(e.peak_throttled_share.unwrap(), 0.2));
}

#[test]
fn throttled_time_that_lands_between_period_ends_counts_for_the_next_period() {
    // An unthrottle on another CPU can land a sample after the period was counted.
    let mut s = fine(&[(false, 0.0), (true, 0.05), (true, 0.05), (false, 0.0)]);
    // Move 10 ms of the second throttled period's time into the sample before its end.
    s[28].throttled_s = Some(0.01);
    s[29].throttled_s = Some(0.04);
    let list = find_episodes(&s, P).unwrap();
    let e = &list.episodes[0];
    assert!(close(e.throttled_s.unwrap(), 0.10), "{e:?}");
    assert!(close(e.peak_throttled_share.unwrap(), 0.5));
}

#[test]
fn an_episode_at_either_end_of_the_series_is_truncated() {
    let s = fine(&[(true, 0.05), (true, 0.05), (false, 0.0), (true, 0.05)]);
    let list = find_episodes(&s, P).unwrap();
    assert_eq!(list.episodes.len(), 2);
    assert!(
        list.episodes[0].truncated,
        "may have begun before the series"
    );
    assert!(list.episodes[1].truncated, "still going at the end");
    assert_eq!(list.episodes[0].periods, 2);
}

#[test]
fn a_time_gap_ends_an_episode_and_the_next_one_is_truncated_at_its_start() {
    let mut s = fine(&[(false, 0.0), (true, 0.05), (true, 0.05)]);
    // 200 ms of samples lost, then two more throttled periods and a clear one.
    let later = fine(&[
        (false, 0.0),
        (false, 0.0),
        (false, 0.0),
        (false, 0.0),
        (false, 0.0),
        (true, 0.05),
        (true, 0.05),
        (false, 0.0),
    ]);
    s.extend(later.into_iter().skip(50));
    let list = find_episodes(&s, P).unwrap();
    assert_eq!(list.gaps, 1);
    assert_eq!(list.episodes.len(), 2, "{list:?}");
    assert!(list.episodes[0].truncated && close(list.episodes[0].end_s, 0.3));
    assert_eq!(list.episodes[0].periods, 2);
    let e = &list.episodes[1];
    assert!(e.truncated, "it may have begun in the gap: {e:?}");
    assert!(close(e.end_s, 0.7));
    // The time in the gap is unknown, so is its first period's throttled time.
    assert_eq!(e.throttled_s, None);
}

#[test]
fn a_sample_without_counters_is_a_gap_not_a_zero() {
    let mut s = fine(&[(false, 0.0), (true, 0.05), (true, 0.05), (true, 0.05)]);
    // The read for the sample that ends the second throttled period failed.
    s[29].nr_periods = None;
    s[29].nr_throttled = None;
    let list = find_episodes(&s, P).unwrap();
    assert_eq!(list.gaps, 1);
    assert_eq!(list.episodes.len(), 2, "{list:?}");
    assert!(list.episodes.iter().all(|e| e.truncated));
    assert_eq!(list.throttled_periods, 2);
}

#[test]
fn absent_counters_are_not_reported_never_zero_episodes() {
    let s: Vec<ThrottleDelta> = (1..=100)
        .map(|i| ThrottleDelta {
            t_s: i as f64 * 0.01,
            dt_s: 0.01,
            nr_periods: None,
            nr_throttled: None,
            throttled_s: None,
        })
        .collect();
    assert_eq!(find_episodes(&s, P), Err(NotReported));
    assert_eq!(find_episodes(&[], P), Err(NotReported));
    assert_eq!(
        NotReported.to_string(),
        "throttling not reported by the kernel"
    );
    // Reported but never throttled: an empty list with the periods counted.
    let list = find_episodes(&fine(&[(false, 0.0), (false, 0.0)]), P).unwrap();
    assert!(list.episodes.is_empty());
    assert_eq!(list.periods, 2);
}

#[test]
fn throttled_time_not_reported_leaves_time_and_share_empty() {
    let mut s = fine(&[(false, 0.0), (true, 0.05), (false, 0.0)]);
    for x in &mut s {
        x.throttled_s = None;
    }
    let e = find_episodes(&s, P).unwrap().episodes[0];
    assert_eq!((e.throttled_s, e.peak_throttled_share), (None, None));
    assert_eq!(e.throttled_periods, 1);
}

#[test]
fn coarse_samples_join_mixed_samples_and_say_so() {
    // 1 s samples of a 100 ms period: clear, all 10 throttled, 4 of 10 throttled, clear.
    let s = [
        d(1.0, 1.0, 10, 0, 0.0),
        d(2.0, 1.0, 10, 10, 0.6),
        d(3.0, 1.0, 10, 4, 0.2),
        d(4.0, 1.0, 10, 0, 0.0),
    ];
    let list = find_episodes(&s, P).unwrap();
    assert_eq!(list.episodes.len(), 1);
    let e = &list.episodes[0];
    assert!(close(e.start_s, 1.0) && close(e.end_s, 3.0), "{e:?}");
    assert_eq!((e.periods, e.throttled_periods), (20, 14));
    assert!(
        !e.exact,
        "a mixed sample's throttled periods may not be consecutive"
    );
    assert!(!e.truncated);
    assert!(close(e.peak_throttled_share.unwrap(), 0.6));
    assert!(close(e.throttled_s.unwrap(), 0.8));
    // All throttled coarse samples: still exact.
    let s = [
        d(1.0, 1.0, 10, 0, 0.0),
        d(2.0, 1.0, 10, 10, 0.6),
        d(3.0, 1.0, 10, 10, 0.6),
        d(4.0, 1.0, 10, 0, 0.0),
    ];
    let e = find_episodes(&s, P).unwrap().episodes[0];
    assert!(e.exact && close(e.length_s(), 2.0));
}

#[test]
fn samples_that_count_no_period_neither_extend_nor_end_an_episode() {
    // Periods of 1 s sampled every 100 ms: an episode of two throttled periods stays one
    // episode across the 9 samples between their ends.
    let mut s = Vec::new();
    for i in 1..=40u32 {
        let t = f64::from(i) / 10.0;
        let period_end = i % 10 == 0;
        let throttled = period_end && (i == 20 || i == 30);
        s.push(d(
            t,
            0.1,
            period_end as u64,
            throttled as u64,
            if throttled { 0.3 } else { 0.0 },
        ));
    }
    let list = find_episodes(&s, 1.0).unwrap();
    assert_eq!(list.episodes.len(), 1, "{list:?}");
    let e = list.episodes[0];
    assert!(close(e.start_s, 1.0) && close(e.end_s, 3.0));
    assert_eq!(e.periods, 2);
}

#[test]
fn a_timer_overrun_counts_several_periods_in_one_sample() {
    let s = [
        d(0.1, 0.1, 1, 0, 0.0),
        d(0.4, 0.3, 3, 3, 0.2),
        d(0.5, 0.1, 1, 0, 0.0),
    ];
    let e = find_episodes(&s, P).unwrap().episodes[0];
    assert_eq!(e.periods, 3);
    assert!(close(e.start_s, 0.1) && close(e.end_s, 0.4));
    assert!(e.exact);
    assert!(close(e.peak_throttled_share.unwrap(), 0.2 / 0.3));
}

#[test]
fn the_tracker_reports_an_episode_when_it_ends() {
    let s = fine(&[(false, 0.0), (true, 0.05), (true, 0.05), (false, 0.0)]);
    let mut t = EpisodeTracker::new(P);
    let mut ended = Vec::new();
    for (i, x) in s.iter().enumerate() {
        if let Some(e) = t.push(x) {
            ended.push((i, e));
        }
        if i == 25 {
            let open = t.open().expect("an episode is going on");
            assert_eq!(open.periods, 1);
        }
    }
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].0, 39, "ended by the first clear period");
    assert_eq!(t.totals(), (4, 2));
    assert!(t.finish().is_none());
}

#[test]
fn more_throttled_than_counted_is_clamped() {
    let s = [
        d(0.1, 0.1, 1, 0, 0.0),
        d(0.2, 0.1, 1, 2, 0.05),
        d(0.3, 0.1, 1, 0, 0.0),
    ];
    let list = find_episodes(&s, P).unwrap();
    assert_eq!(list.throttled_periods, 1);
    assert!(list.episodes[0].exact);
}

#[test]
fn the_table_has_one_line_per_episode_and_dashes_for_unknowns() {
    let mut s = fine(&[(false, 0.0), (true, 0.05), (false, 0.0), (true, 0.05)]);
    for x in &mut s[..20] {
        x.throttled_s = None;
    }
    let text = table(&find_episodes(&s, P).unwrap());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].contains(" - "), "{text}");
    assert!(lines[2].ends_with("cut off"), "{text}");
}
