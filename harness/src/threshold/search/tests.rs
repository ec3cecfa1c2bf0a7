//! Tests of `search`.

use super::*;

/// A simulated burstable CPU with known truth: credits earned at `baseline`, spent at
/// full speed, held at the baseline when empty. Work is counted in 100 ms slices at
/// 1e9 steps/s when running free.
struct Sim {
    baseline: f64,
    balance: f64,
    max: f64,
    limited: bool,
    /// Simulated time, in s; shared with the search's clock.
    clock: std::rc::Rc<std::cell::Cell<f64>>,
    noise: f64,
}

impl Sim {
    fn step(&mut self, want: bool, dt: f64) -> f64 {
        self.clock.set(self.clock.get() + dt);
        if !want {
            self.balance = (self.balance + self.baseline * dt).min(self.max);
            return 0.0;
        }
        let share = if !self.limited || self.balance > 0.0 {
            1.0
        } else {
            self.baseline
        };
        self.balance = (self.balance + self.baseline * dt - share * dt).clamp(0.0, self.max);
        // A few % of ordinary stalls must not look like throttling.
        share * (1.0 - self.noise)
    }
}

/// On-period `k` of thread 0: whole slices of `dt` with these step counts.
fn period(k: usize, slice_steps: Vec<u64>, dt: f64) -> DutyPeriod {
    DutyPeriod {
        thread: 0,
        period: k as u64,
        start_s: 0.0,
        on_s: slice_steps.len() as f64 * dt,
        cpu_s: 0.0,
        steps: slice_steps.iter().sum(),
        steps_per_s: 0.0,
        slice_steps,
        slice_s: dt,
    }
}

impl Prober for Sim {
    fn probe(&mut self, s: &ProbeSpec) -> anyhow::Result<ProbeResult> {
        let dt = s.slice.as_secs_f64();
        let (on, cycle) = (s.on.as_secs_f64(), (s.on + s.off).as_secs_f64());
        let cycles = (s.duration.as_secs_f64() / cycle).floor().max(1.0) as usize;
        let mut periods = Vec::new();
        for k in 0..cycles {
            let n = (on / dt).round() as usize;
            let slices: Vec<u64> = (0..n)
                .map(|_| (self.step(true, dt) * 1e9 * dt) as u64)
                .collect();
            for _ in 0..((cycle - on) / dt).round() as usize {
                self.step(false, dt);
            }
            periods.push(period(k, slices, dt));
        }
        Ok(ProbeResult {
            periods,
            complete: true,
            ..ProbeResult::default()
        })
    }
    fn start_limit(&mut self) -> anyhow::Result<()> {
        self.limited = true;
        Ok(())
    }
}

fn params(cycle_s: u64) -> SearchParams {
    SearchParams {
        cycle: Duration::from_secs(cycle_s),
        max_burst: Duration::from_secs(120),
        resolution: 0.005,
        cycles: 3,
        budget: Duration::from_secs(7200),
        slice: Duration::from_millis(100),
        sustainable: 0.5,
    }
}

fn find(sim: &mut Sim, p: &SearchParams) -> Findings {
    let clock = sim.clock.clone();
    let mut now = || clock.get();
    search(sim, p, &mut now, &mut |_, _| {}).unwrap().0
}

#[test]
fn finds_the_t2_micro_threshold_of_a_simulated_credit_machine() {
    for (baseline, balance) in [(0.1, 30.0), (0.05, 20.0), (0.2, 10.0)] {
        let mut sim = Sim {
            baseline,
            balance,
            max: balance,
            limited: false,
            clock: Default::default(),
            noise: 0.03,
        };
        let f = find(&mut sim, &params(10));
        assert!(
            (f.sustainable_share - baseline).abs() <= 0.01,
            "baseline {baseline}: found {} [{}, {:?}]",
            f.sustainable_share,
            f.sustainable_share_low,
            f.sustainable_share_high
        );
        assert!(
            f.sustainable_share_low <= baseline + 0.01
                && f.sustainable_share_high.unwrap() >= baseline - 0.01
        );
        let b = f.burst_balance_s.unwrap();
        assert!(
            (b - balance).abs() <= 0.1 * balance,
            "burst balance {b} for {balance}"
        );
        let t = f.throttled_share.unwrap();
        assert!((t - baseline).abs() < 0.01, "throttled share {t}");
    }
}

#[test]
fn noise_alone_is_not_throttling() {
    // A machine that never limits (start_limit is not overridden), with 5% of stalls.
    struct Free(Sim);
    impl Prober for Free {
        fn probe(&mut self, s: &ProbeSpec) -> anyhow::Result<ProbeResult> {
            self.0.probe(s)
        }
    }
    let mut free = Free(Sim {
        baseline: 0.1,
        balance: 0.0,
        max: 0.0,
        limited: false,
        clock: Default::default(),
        noise: 0.05,
    });
    let (f, records) = search(&mut free, &params(10), &mut || 0.0, &mut |_, _| {}).unwrap();
    assert_eq!(f.burst_budget_s, None);
    assert_eq!(f.throttled_share, None);
    assert_eq!(f.sustainable_share, 1.0);
    assert!(records.iter().all(|r| !r.throttled));
}

#[test]
fn a_short_last_slice_is_rated_over_its_own_length() {
    let p = DutyPeriod {
        thread: 0,
        period: 0,
        start_s: 0.0,
        on_s: 0.26,
        cpu_s: 0.0,
        steps: 0,
        steps_per_s: 0.0,
        slice_steps: vec![100, 100, 60],
        slice_s: 0.1,
    };
    let r: Vec<f64> = slice_rates(&p).collect();
    assert_eq!(r.len(), 3);
    assert!((r[2] - 1000.0).abs() < 1e-6, "{r:?}");
    let tiny = DutyPeriod {
        on_s: 0.205,
        slice_steps: vec![100, 100, 5],
        ..p
    };
    assert_eq!(slice_rates(&tiny).count(), 2);
}

#[test]
fn the_search_is_bounded() {
    let mut sim = Sim {
        baseline: 0.1,
        balance: 30.0,
        max: 30.0,
        limited: false,
        clock: Default::default(),
        noise: 0.03,
    };
    let f = find(&mut sim, &params(10));
    // Calibrate, burst, then a drain and a duty probe per step: a few dozen probes,
    // a few hundred simulated seconds for a 30 CPU-s budget at 10 s cycles.
    assert!(f.probes > 5 && f.probes < 40, "{f:?}");
    assert!(f.elapsed_s < 900.0, "{f:?}");
    assert!(!f.budget_exhausted);
}

#[test]
fn a_limiter_that_holds_every_other_on_period_is_throttling() {
    // A coarse limiter: above 30% it lets one on-period run free on the debt it then
    // repays by holding the next. The held periods decide, not the free ones.
    struct Alternating;
    impl Prober for Alternating {
        fn probe(&mut self, s: &ProbeSpec) -> anyhow::Result<ProbeResult> {
            let dt = s.slice.as_secs_f64();
            let (on, cycle) = (s.on.as_secs_f64(), (s.on + s.off).as_secs_f64());
            let cycles = (s.duration.as_secs_f64() / cycle).floor().max(1.0) as usize;
            let share = on / cycle;
            let n = ((on / dt).round() as usize).max(1);
            let periods = (0..cycles)
                .map(|k| {
                    let slice_steps: Vec<u64> = (0..n)
                        .map(|i| {
                            let t = (k * n + i) as f64 * dt;
                            let held = if s.off.is_zero() {
                                t >= 2.0
                            } else {
                                share > 0.3 && k % 2 == 1
                            };
                            if held {
                                25
                            } else {
                                100
                            }
                        })
                        .collect();
                    period(k, slice_steps, dt)
                })
                .collect();
            Ok(ProbeResult {
                periods,
                complete: true,
                ..ProbeResult::default()
            })
        }
    }
    let (f, records) = search(&mut Alternating, &params(10), &mut || 0.0, &mut |_, _| {}).unwrap();
    assert!(
        (f.sustainable_share - 0.3).abs() <= 0.01,
        "found {} [{}, {:?}]",
        f.sustainable_share,
        f.sustainable_share_low,
        f.sustainable_share_high
    );
    assert!(records
        .iter()
        .any(|r| r.phase == "duty" && r.throttled && r.rate_end < 0.5));
}

#[test]
fn a_machine_that_never_throttles_has_no_upper_end_not_a_bracket_of_100_percent() {
    // A balance far larger than the burst probe can spend: the rate never collapses.
    let mut sim = Sim {
        baseline: 0.1,
        balance: 1e6,
        max: 1e6,
        limited: false,
        clock: Default::default(),
        noise: 0.03,
    };
    let f = find(&mut sim, &params(10));
    assert_eq!(f.throttled_share, None);
    assert_eq!(f.sustainable_share_high, None);
    assert_eq!(f.burst_budget_s, None);
}

#[test]
fn a_probe_cut_short_is_discarded_not_recorded() {
    /// Calibrates, then is interrupted in the burst probe.
    struct Interrupted(u32);
    impl Prober for Interrupted {
        fn probe(&mut self, s: &ProbeSpec) -> anyhow::Result<ProbeResult> {
            self.0 += 1;
            let dt = s.slice.as_secs_f64();
            let n = (s.on.as_secs_f64() / dt).round() as usize;
            Ok(ProbeResult {
                periods: vec![period(0, vec![100_000_000; n.min(10)], dt)],
                complete: self.0 == 1,
                ..ProbeResult::default()
            })
        }
    }
    let mut seen = Vec::new();
    let e = search(
        &mut Interrupted(0),
        &params(10),
        &mut || 0.0,
        &mut |r, _| seen.push(r.phase),
    )
    .unwrap_err();
    assert_eq!(seen, ["calibrate"], "only the whole probe was reported");
    assert!(e.to_string().contains("discarded"), "{e}");
}

#[test]
fn a_stall_the_work_recovers_from_is_not_a_throttled_share() {
    // Calibrated at 1e9 steps/s; the burst probe stalls for half a second (another
    // process had the CPU) and then runs faster than calibrated (the calibration had
    // company). This once made a "throttled share" above 1 and a negative off-time.
    struct Stall {
        calls: u32,
    }
    impl Prober for Stall {
        fn probe(&mut self, s: &ProbeSpec) -> anyhow::Result<ProbeResult> {
            self.calls += 1;
            let dt = s.slice.as_secs_f64();
            let n = ((s.on.as_secs_f64() / dt).round() as usize).min(600);
            let full = (1e9 * dt) as u64;
            let slices: Vec<u64> = (0..n)
                .map(|i| match (self.calls, i) {
                    (1, _) => full,
                    (_, 20..=24) => full / 10,
                    _ => full * 12 / 10,
                })
                .collect();
            Ok(ProbeResult {
                periods: vec![period(0, slices, dt)],
                complete: true,
                ..ProbeResult::default()
            })
        }
    }
    let (f, records) = search(
        &mut Stall { calls: 0 },
        &params(10),
        &mut || 0.0,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(f.throttled_share, None, "{f:?}");
    assert_eq!(f.sustainable_share_high, None);
    assert!(records
        .iter()
        .all(|r| r.off_s >= 0.0 && r.duty_share <= 1.0));
}
