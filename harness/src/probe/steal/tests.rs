//! Tests of the steal probe: the gap recorder against a fake clock with injected gaps,
//! the throttling attribution, the report, steal as mpstat computes it.

use super::report::build as report;
use super::*;

/// Each read advances by `step` ns, except the reads listed in `jumps` (iteration
/// number, extra ns), which come after a gap.
struct FakeClock {
    t: u64,
    n: u64,
    step: u64,
    jumps: Vec<(u64, u64)>,
}

impl Clock for FakeClock {
    fn now_ns(&mut self) -> u64 {
        self.n += 1;
        self.t += self.step;
        if let Some(j) = self.jumps.iter().find(|j| j.0 == self.n) {
            self.t += j.1;
        }
        self.t
    }
}

fn spin_fake(jumps: Vec<(u64, u64)>, until: u64) -> GapRecorder {
    let mut clock = FakeClock {
        t: 1_000_000_000,
        n: 0,
        step: 30,
        jumps,
    };
    let mut rec = GapRecorder::new(5_000, 1_000_000_000, until);
    spin(
        &mut clock,
        &mut rec,
        1_000_000_000 + until,
        &AtomicBool::new(false),
    );
    rec
}

#[test]
fn injected_gaps_are_counted_measured_and_binned() {
    // Gaps of 4 µs (below the threshold), 10 µs, 2 ms and 50 ms into a 200 ms loop.
    let rec = spin_fake(
        vec![
            (1_000, 4_000),
            (2_000, 10_000),
            (3_000, 2_000_000),
            (4_000, 50_000_000),
        ],
        200_000_000,
    );
    assert_eq!(rec.gaps, 3);
    // Each gap is its jump plus the one step of the read after it.
    assert_eq!(rec.lost_ns, 10_030 + 2_000_030 + 50_000_030);
    assert_eq!(rec.max_ns, 50_000_030);
    assert!((rec.loop_ns() - 30.0).abs() < 0.5, "{}", rec.loop_ns());
    // 10 µs falls in [5, 10) × 2^1 = [10, 20) µs; 2 ms in [1.28, 2.56) ms; 50 ms in
    // [40.96, 81.92) ms.
    assert_eq!(rec.buckets[1], (1, 10_030));
    assert_eq!(rec.buckets[8], (1, 2_000_030));
    assert_eq!(rec.buckets[13], (1, 50_000_030));
    assert_eq!(rec.buckets.iter().map(|b| b.0).sum::<u64>(), 3);
    // p50 of three gaps is the middle one (HDR: 3 significant digits).
    let p50 = rec.hist.value_at_quantile(0.5);
    assert!((1_998_000..=2_002_000).contains(&p50), "{p50}");
    // The 50 ms gap spans about 51 fine bins; their sum is the whole gap.
    let start = rec.start_ns;
    assert_eq!(rec.lost_between(start, start + 200_000_000), rec.lost_ns);
    let nonzero = rec.fine.iter().filter(|b| **b > 0).count();
    assert!((50..=53).contains(&nonzero), "{nonzero}");
}

#[test]
fn a_quiet_loop_has_no_gaps() {
    let rec = spin_fake(vec![], 10_000_000);
    assert_eq!(rec.gaps, 0);
    assert_eq!(rec.lost_ns, 0);
    assert!(rec.iterations >= 10_000_000 / 30);
}

#[test]
fn the_report_attributes_stalls_to_throttling_interval_by_interval() {
    // Two intervals of 100 ms; a 60 ms gap in the first while the cgroup was throttled
    // 60 ms, and a 5 ms gap in the second without throttling.
    let t0 = 1_000_000_000u64;
    let mut rec = GapRecorder::new(5_000, t0, 200_000_000);
    rec.first_ns = t0;
    rec.record(t0 + 20_000_000, t0 + 80_000_000);
    rec.record(t0 + 150_000_000, t0 + 155_000_000);
    rec.last_ns = t0 + 200_000_000;
    rec.iterations = 1_000;
    let reads = Reads {
        t_ns: vec![t0, t0 + 100_000_000, t0 + 200_000_000],
        times: [10, 10, 11]
            .map(|steal| CpuTimes {
                steal,
                ..CpuTimes::default()
            })
            .to_vec(),
        throttled_ns: vec![0, 60_000_000, 60_000_000],
        nr_throttled: vec![0, 1, 1],
    };
    let cfg = StealConfig {
        cpus: CpuList::from_cpus([0]),
        duration: Duration::from_millis(200),
        threshold_ns: 5_000,
        interval: Duration::from_millis(100),
        proc_root: "/proc".into(),
        cgroup_stat: None,
        idle: Duration::ZERO,
    };
    let r = report(&[(0, rec)], &reads, t0, &cfg, 100.0, true);
    let s = &r.summary;
    assert!((s.stall_s - 0.065).abs() < 1e-9, "{s:?}");
    assert!((s.steal_s - 0.01).abs() < 1e-9);
    assert_eq!(s.throttle_stall_s, Some(0.06));
    assert!((s.other_stall_s.unwrap() - 0.005).abs() < 1e-9);
    assert_eq!(s.nr_throttled, Some(1));
    let all: Vec<&SeriesRow> = r.series.iter().filter(|x| x.cpu == "all").collect();
    assert_eq!(all.len(), 2);
    assert!((all[0].stall_s - 0.06).abs() < 1e-9);
    assert!((all[1].stall_s - 0.005).abs() < 1e-9);
    assert_eq!(all[1].throttle_stall_s, Some(0.0));
    assert_eq!(r.cpus.last().unwrap().cpu, "all");
    // Buckets are cut after the largest used: 60 ms is in [40.96, 81.92) ms, bucket 13.
    assert_eq!(r.gaps.len(), 14);
}

const STAT_1: &str = include_str!("fixtures/proc-stat-1");
const STAT_2: &str = include_str!("fixtures/proc-stat-2");

/// sysstat's formula written out on the fixtures' columns (rd_stats.c,
/// "get_per_cpu_interval", and mpstat's `%steal` = Δsteal ÷ that interval × 100):
/// user + nice + system + idle + iowait + irq + softirq + steal, without guest and
/// guest_nice, plus the amount by which user − guest (nice − guest_nice) went down.
fn sysstat_steal_share(a: [u64; 10], b: [u64; 10]) -> f64 {
    let sum = |v: [u64; 10]| v[..8].iter().sum::<u64>() as i64;
    let shift = |u: usize, g: usize| {
        let (p, c) = (a[u] as i64 - a[g] as i64, b[u] as i64 - b[g] as i64);
        (p - c).max(0)
    };
    let interval = sum(b) - sum(a) + shift(0, 8) + shift(1, 9);
    (b[7] - a[7]) as f64 / interval as f64
}

/// The columns of the line of /proc/stat starting with `name` (e.g. "cpu0").
fn columns(text: &str, name: &str) -> [u64; 10] {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap();
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    v.try_into().unwrap()
}

#[test]
fn steal_share_is_mpstats_formula_on_the_fixtures() {
    let (a, b) = (
        ProcStat::parse(STAT_1).unwrap(),
        ProcStat::parse(STAT_2).unwrap(),
    );
    // The fixtures' figures (fixtures/README.md): 10 / 260 and 27 / (197 + 10).
    assert_eq!(steal_share(&a.cpus[0], &b.cpus[0]), 10.0 / 260.0);
    assert_eq!(steal_share(&a.cpus[1], &b.cpus[1]), 27.0 / 207.0);
    for (c, name) in ["cpu0", "cpu1"].iter().enumerate() {
        let want = sysstat_steal_share(columns(STAT_1, name), columns(STAT_2, name));
        assert_eq!(steal_share(&a.cpus[c], &b.cpus[c]), want, "{name}");
    }
    // mpstat's all row: all steal over the sum of the per-CPU intervals, 37 / (260 + 207);
    // not the `cpu` line's interval, 457, where CPU 1's guest shortfall does not show.
    let all = steal_share_of([(&a.cpus[0], &b.cpus[0]), (&a.cpus[1], &b.cpus[1])]);
    assert_eq!(all, 37.0 / 467.0);
    // No tick at all: 0, as mpstat prints for a CPU that did not tick.
    assert_eq!(steal_share(&a.cpus[0], &a.cpus[0]), 0.0);
}

/// The probe's own reads (a fake /proc holding the first fixture, then the second) give
/// steal.csv's steal ticks and steal_share per CPU and for `all` as mpstat's formula does.
#[test]
fn the_report_has_mpstats_steal_from_its_own_reads() {
    let dir = std::env::temp_dir().join(format!("tb-steal-mpstat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    std::fs::write(dir.join("stat"), STAT_1).unwrap();
    let mut sources = Sources {
        procstat: ProcStatReader::open(&dir).unwrap(),
        stat: ProcStat::default(),
        cgroup: None,
    };
    let cpus = [0u32, 1];
    let mut reads = Reads {
        t_ns: Vec::new(),
        times: Vec::new(),
        throttled_ns: Vec::new(),
        nr_throttled: Vec::new(),
    };
    let t0 = 1_000_000_000u64;
    sources.read(&cpus, &mut reads, t0).unwrap();
    // Written in place: the reader keeps its handle and reads again from the start.
    std::fs::write(dir.join("stat"), STAT_2).unwrap();
    sources.read(&cpus, &mut reads, t0 + 2_000_000_000).unwrap();

    let recs: Vec<(u32, GapRecorder)> = cpus
        .iter()
        .map(|c| {
            let mut r = GapRecorder::new(5_000, t0, 2_000_000_000);
            (r.first_ns, r.last_ns, r.iterations) = (t0, t0 + 2_000_000_000, 1_000);
            (*c, r)
        })
        .collect();
    let cfg = StealConfig {
        cpus: CpuList::from_cpus([0, 1]),
        duration: Duration::from_secs(2),
        threshold_ns: 5_000,
        interval: Duration::from_secs(2),
        proc_root: dir.clone(),
        cgroup_stat: None,
        idle: Duration::ZERO,
    };
    let r = report(&recs, &reads, t0, &cfg, 100.0, true);
    let row = |name: &str| r.cpus.iter().find(|x| x.cpu == name).unwrap();
    for (cpu, line, ticks) in [("0", "cpu0", 10), ("1", "cpu1", 27)] {
        let want = sysstat_steal_share(columns(STAT_1, line), columns(STAT_2, line));
        assert_eq!(row(cpu).steal_ticks, ticks, "cpu {cpu}");
        assert_eq!(row(cpu).steal_share, want, "cpu {cpu}");
        // mpstat's interval (260, 207 ticks) is not the wall time (200 ticks in 2 s): the
        // share is of the CPU's accounted ticks, not of the duration.
        assert_ne!(row(cpu).steal_share, row(cpu).steal_s / row(cpu).duration_s);
    }
    let all = 37.0 / 467.0;
    assert_eq!(row("all").steal_ticks, 37);
    assert_eq!(row("all").steal_share, all);
    assert_eq!(r.summary.steal_share, all);
}
