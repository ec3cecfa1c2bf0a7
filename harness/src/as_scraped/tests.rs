//! The scraped view of constructed series: Prometheus's increase() by hand, the mixin's
//! "12 seconds of maxed out CPU will appear as 20%", averaged-away episodes, the alert's
//! `for:`.

use super::promql::{increase, rate, select, AlertState, AlertTracker, PromVersion, Sample};
use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

fn samples(points: &[(i64, f64)]) -> Vec<Sample> {
    points.iter().map(|&(t_ms, v)| Sample { t_ms, v }).collect()
}

#[test]
fn versions_parse_from_build_info() {
    assert_eq!(
        PromVersion::from_version("2.42.0"),
        Some(PromVersion::Before2_51)
    );
    assert_eq!(
        PromVersion::from_version("2.53.1"),
        Some(PromVersion::Before3)
    );
    assert_eq!(
        PromVersion::from_version("v3.5.0-rc.0"),
        Some(PromVersion::V3)
    );
    assert_eq!(PromVersion::from_version("banana"), None);
}

#[test]
fn a_range_is_closed_before_3_and_left_open_from_3() {
    let s = samples(&[
        (0, 0.0),
        (15_000, 1.0),
        (30_000, 2.0),
        (45_000, 3.0),
        (60_000, 4.0),
    ]);
    assert_eq!(select(&s, 60_000, 60_000, PromVersion::Before2_51).len(), 5);
    assert_eq!(select(&s, 60_000, 60_000, PromVersion::Before3).len(), 5);
    assert_eq!(select(&s, 60_000, 60_000, PromVersion::V3).len(), 4);
    assert_eq!(select(&s, 10_000, 5_000, PromVersion::V3).len(), 0);
}

#[test]
fn increase_extrapolates_to_the_edges_within_one_and_a_tenth_spacings() {
    // Samples 10 s apart at 5..55 s in a [0, 60] range, 1 per second: 50 seen over 50 s,
    // 5 s to each edge (< 11 s), so stretched to 60 s: 60.
    let s: Vec<Sample> = (0..6)
        .map(|i| Sample {
            t_ms: 5_000 + i * 10_000,
            v: 1000.0 + 10.0 * i as f64,
        })
        .collect();
    for v in [
        PromVersion::Before2_51,
        PromVersion::Before3,
        PromVersion::V3,
    ] {
        assert!(
            close(increase(&s, 60_000, 60_000, v).unwrap(), 60.0),
            "{v:?}"
        );
        assert!(close(rate(&s, 60_000, 60_000, v).unwrap(), 1.0));
    }
    // A series that starts 25 s into the range (further than 11 s): only half a spacing
    // (5 s) is added at the start, and the 5 s to the end: 30 s seen, 40 s assumed.
    let late = &s[2..];
    assert!(close(
        increase(late, 60_000, 60_000, PromVersion::V3).unwrap(),
        30.0 * 40.0 / 30.0
    ));
    // One sample: no value.
    assert_eq!(increase(&s[..1], 60_000, 60_000, PromVersion::V3), None);
}

#[test]
fn increase_adds_back_counter_resets() {
    let s = samples(&[(0, 10.0), (10_000, 20.0), (20_000, 5.0), (30_000, 15.0)]);
    // 10 up to the reset, 5 counted from zero after it, 10 more: 25.
    assert!(close(
        increase(&s, 30_000, 30_000, PromVersion::Before2_51).unwrap(),
        25.0
    ));
}

#[test]
fn the_zero_limit_came_before_the_threshold_until_2_51() {
    // Samples 10 s apart (threshold 11 s), 20 up over 20 s, the first 30 s after the
    // range's start, the counter's zero point `z` s before the first sample.
    let run = |first: f64| {
        let s = samples(&[
            (30_000, first),
            (40_000, first + 10.0),
            (50_000, first + 20.0),
        ]);
        let old = increase(&s, 50_000, 50_000, PromVersion::Before2_51).unwrap();
        let new = increase(&s, 50_000, 50_000, PromVersion::V3).unwrap();
        (old, new)
    };
    // z = 150 s: both find the start too far (30 s > 11 s) and add half a spacing, 5 s.
    assert_eq!(run(150.0), (25.0, 25.0));
    // z = 3 s: 2.42 takes min(30, 3) = 3 s, under 11 s; 3.x takes 5 s, limited to 3 s.
    assert_eq!(run(3.0), (23.0, 23.0));
    // z = 8 s: 2.42 takes min(30, 8) = 8 s, under 11 s, whole; 3.x takes half a spacing,
    // 5 s, which the zero point does not limit. Here they differ.
    assert_eq!(run(8.0), (28.0, 25.0));
    // z = 15 s: 2.42's min(30, 15) = 15 s is over 11 s, so half a spacing: both 5 s.
    assert_eq!(run(15.0), (25.0, 25.0));
}

/// The mixin's example in numbers: "if we sample every 15s, and do a rate[1m], even 12
/// seconds of maxed out CPU will appear as 20% CPU utilisation".
#[test]
fn twelve_seconds_of_maxed_out_cpu_appear_as_twenty_percent() {
    // A CPU usage counter (s) of a container busy for 12 s from 20 s to 32 s, idle
    // otherwise, scraped every 15 s; it had used 500 s before.
    let usage_at = |t: f64| 500.0 + (t.clamp(20.0, 32.0) - 20.0);
    let s: Vec<Sample> = (0..=4)
        .map(|i| Sample {
            t_ms: i * 15_000,
            v: usage_at(i as f64 * 15.0),
        })
        .collect();
    // Prometheus before 3.0: the 1 m range holds all five scrapes, 0 to 60 s: exactly 20%.
    let r = rate(&s, 60_000, 60_000, PromVersion::Before2_51).unwrap();
    assert!(close(r, 0.2), "{r}");
    // Prometheus 3: the range is left-open, so the scrape at 0 s is out; the four left
    // span 45 s and are stretched to 60 s: 12 s in 45 s reads as 26.7%.
    let r = rate(&s, 60_000, 60_000, PromVersion::V3).unwrap();
    assert!(close(r, 12.0 / 45.0), "{r}");
    // Either way, a monitor that alerts on more than 50% of a CPU never sees a CPU that
    // was 100% busy for 12 s.
}

/// 10 ms samples of a group whose 100 ms periods all end with runnable threads, for
/// `secs` seconds; periods inside `[a, b)` (s, by their end) are throttled for 60 ms.
fn series(secs: u32, throttled: &[(f64, f64)]) -> Vec<ThrottleDelta> {
    let mut v = Vec::new();
    for i in 1..=secs * 100 {
        let t = f64::from(i) / 100.0;
        let period_end = i % 10 == 0;
        let thr = period_end && throttled.iter().any(|&(a, b)| t > a && t <= b);
        v.push(ThrottleDelta {
            t_s: t,
            dt_s: 0.01,
            nr_periods: Some(period_end as u64),
            nr_throttled: Some(thr as u64),
            throttled_s: Some(if thr { 0.06 } else { 0.0 }),
        });
    }
    v
}

fn config(interval_s: f64, window_s: f64, version: PromVersion) -> ScrapeConfig {
    ScrapeConfig {
        version,
        start_totals: StartTotals {
            nr_periods: 1_000_000,
            nr_throttled: 10_000,
        },
        ..ScrapeConfig::cpu_throttling_high(interval_s, window_s)
    }
}

#[test]
fn twelve_seconds_of_throttled_periods_read_as_twenty_percent_over_a_minute() {
    // Every period from 20 s to 32 s throttled, a minute of samples.
    let s = series(60, &[(20.0, 32.0)]);
    let mut c = config(15.0, 60.0, PromVersion::Before2_51);
    c.eval_interval_s = 60.0;
    let v = as_scraped(&s, 0.1, &c).unwrap();
    let last = v.evaluations.last().unwrap();
    assert!(close(last.t_s, 60.0));
    assert!(close(last.scraped_ratio.unwrap(), 0.2), "{last:?}");
    assert!(close(last.true_ratio.unwrap(), 0.2));
    // The truth per period: one episode of 120 periods, every one throttled.
    assert_eq!(v.episodes.len(), 1);
    let e = v.episodes[0].episode;
    assert_eq!((e.periods, e.throttled_periods), (120, 120));
    assert!(close(e.length_s(), 12.0));
    assert!(close(e.peak_throttled_share.unwrap(), 0.6));
}

#[test]
fn the_five_minute_window_averages_a_twelve_second_episode_away() {
    // 30 minutes; one 12 s episode at 10 min, throttled in every period.
    let s = series(1800, &[(600.0, 612.0)]);
    for version in [PromVersion::Before2_51, PromVersion::V3] {
        let v = as_scraped(&s, 0.1, &config(15.0, 300.0, version)).unwrap();
        assert_eq!(v.episodes.len(), 1);
        let seen = v.episodes[0];
        let max = seen.max_scraped_ratio.unwrap();
        // 120 throttled of 3000 periods: 4% (4.2% with 3.x's 285 s of samples).
        assert!(max > 0.039 && max < 0.043, "{version:?}: {max}");
        assert!(!seen.crossed_threshold && !seen.alert_firing);
        assert_eq!(v.averaged_away().count(), 1);
        assert!(!v.fired());
        // The true ratio over any 5 minutes is just as low: the window, not the scrape,
        // hides it.
        assert!(v.max_true_ratio().unwrap() < 0.041);
    }
}

#[test]
fn an_episode_above_the_threshold_is_seen_but_too_short_for_the_alert() {
    // Two minutes throttled in every period: 1200 of 3000 periods in a 5 m window, 40%.
    let s = series(1800, &[(600.0, 720.0)]);
    let v = as_scraped(&s, 0.1, &config(15.0, 300.0, PromVersion::V3)).unwrap();
    let seen = v.episodes[0];
    assert!(seen.crossed_threshold, "{seen:?}");
    assert!(seen.max_scraped_ratio.unwrap() > 0.39);
    // Above 25% for at most 7 minutes: pending, never firing (for: 15m).
    assert!(!seen.alert_firing && !v.fired());
    assert!(v.evaluations.iter().any(|e| e.alert == AlertState::Pending));
    assert_eq!(v.averaged_away().count(), 0);
}

#[test]
fn sustained_throttling_fires_after_for() {
    // Every other second throttled (50% of periods) from 5 min to 30 min.
    let spans: Vec<(f64, f64)> = (150..900)
        .map(|i| (i as f64 * 2.0, i as f64 * 2.0 + 1.0))
        .collect();
    let s = series(1800, &spans);
    let v = as_scraped(&s, 0.1, &config(15.0, 300.0, PromVersion::V3)).unwrap();
    // Above 25% once the window holds more than half of throttling: from 7.5 min, so the
    // first evaluation above it is at 8 min, and firing 15 min later, at 23 min.
    let first_above = v
        .evaluations
        .iter()
        .find(|e| e.scraped_ratio.is_some_and(|r| r > 0.25))
        .unwrap()
        .t_s;
    assert!(close(first_above, 480.0), "{first_above}");
    assert!(close(v.first_firing_s.unwrap(), 480.0 + 900.0));
    // 750 episodes of 1 s each, none averaged away: each lies within 5 minutes before an
    // evaluation above 25%, the first episodes within the window of the one at 8 min.
    assert_eq!(v.episodes.len(), 750);
    assert_eq!(v.averaged_away().count(), 0);
}

#[test]
fn the_alert_fires_after_holding_for_its_for_and_resets_when_it_does_not_hold() {
    let mut a = AlertTracker::new(900_000);
    assert_eq!(a.step(0, true), AlertState::Pending);
    assert_eq!(a.step(840_000, true), AlertState::Pending);
    assert_eq!(a.step(900_000, true), AlertState::Firing);
    assert_eq!(a.step(960_000, false), AlertState::Inactive);
    assert_eq!(a.step(1_020_000, true), AlertState::Pending);
    let mut now = AlertTracker::new(0);
    assert_eq!(now.step(5, true), AlertState::Firing);
}

#[test]
fn a_series_without_counters_is_not_reported() {
    let mut s = series(10, &[]);
    for d in &mut s {
        d.nr_periods = None;
        d.nr_throttled = None;
    }
    assert_eq!(
        as_scraped(&s, 0.1, &config(15.0, 300.0, PromVersion::V3)),
        Err(NotReported)
    );
    assert_eq!(
        as_scraped(&[], 0.1, &config(15.0, 300.0, PromVersion::V3)),
        Err(NotReported)
    );
}

#[test]
fn a_scrape_offset_changes_what_a_window_holds() {
    // 12 s throttled in a minute; with scrapes at 7.5 s, 22.5 s, ... (offset 7.5 s) the
    // window ending at 60 s (3.x) holds 4 scrapes spanning 45 s, 7.5 s from each edge,
    // and stretches them over 60 s. Periods and throttled periods stretch alike, so the
    // ratio is that of the 45 s the scrapes span, not of the minute.
    let s = series(60, &[(20.0, 32.0)]);
    let mut c = config(15.0, 60.0, PromVersion::V3);
    c.scrape_offset_s = 7.5;
    let v = as_scraped(&s, 0.1, &c).unwrap();
    let last = v.evaluations.last().unwrap();
    // Scrapes at 7.5 .. 52.5 s: 120 throttled of 450 periods.
    assert!(
        close(last.scraped_ratio.unwrap(), 120.0 / 450.0),
        "{last:?}"
    );
    assert!(close(last.true_ratio.unwrap(), 0.2));
}
