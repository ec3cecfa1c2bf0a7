//! Bounded mutation fuzzing of every parser of outside text: scenario files, cpu.stat,
//! /proc/stat, /proc/<pid>/stat, PSI, `check` expectations, durations, CPU lists, kernel
//! configs and logs, rngtest reports. Valid samples are mutated (bytes flipped, inserted,
//! deleted, lines duplicated or cut, numbers made huge or negative) by a seeded generator,
//! so a failure names an input that reproduces it. No parser may panic; errors are fine.
//! The valid samples themselves must parse to the values they hold, so a parser that
//! rejects everything cannot pass.
//!
//! Deterministic and bounded by count: `cargo test --workspace` runs it every time. The
//! inputs and time are printed (`cargo test fuzz -- --nocapture`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const NASTY: &[&str] = &[
    "18446744073709551616",
    "-1",
    "-9223372036854775808",
    "1e309",
    "NaN",
    "inf",
    "0",
    "\"",
    "[",
    "]]",
    "=",
    "\u{0}",
    "ms",
    "µs",
    "💥",
    "\n",
    ",",
    "-",
    "99999999999999999999s",
];

/// One mutation of `seed`.
fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut b: Vec<u8> = seed.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(7) {
            0 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] ^= 1 << rng.below(8);
            }
            1 => b.insert(at, rng.next() as u8),
            2 if !b.is_empty() => {
                let end = (at + rng.below(16)).min(b.len());
                b.drain(at.min(end)..end);
            }
            3 => b.truncate(at),
            4 => {
                let n = NASTY[rng.below(NASTY.len())].as_bytes();
                b.splice(at..at, n.iter().copied());
            }
            5 => {
                // Replace a run of digits with a nasty number.
                if let Some(i) = b[at.min(b.len())..].iter().position(u8::is_ascii_digit) {
                    let i = at + i;
                    let j = b[i..]
                        .iter()
                        .position(|c| !c.is_ascii_digit())
                        .map_or(b.len(), |k| i + k);
                    let n = NASTY[rng.below(3)].as_bytes();
                    b.splice(i..j, n.iter().copied());
                }
            }
            _ => {
                // Duplicate a line.
                let text = String::from_utf8_lossy(&b).to_string();
                let lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let l = lines[rng.below(lines.len())];
                    b.extend_from_slice(format!("\n{l}\n").as_bytes());
                }
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Feed `n` mutations of the seeds to `parse`; returns the inputs run.
fn fuzz(name: &str, seeds: &[&str], n: usize, parse: impl Fn(&str)) -> usize {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    let start = Instant::now();
    for s in seeds {
        parse(s);
    }
    for i in 0..n {
        let seed = seeds[i % seeds.len()];
        let input = mutate(&mut rng, seed);
        if catch_unwind(AssertUnwindSafe(|| parse(&input))).is_err() {
            panic!("{name}: the parser panicked on input {i}: {input:?}");
        }
    }
    println!(
        "fuzz {name}: {n} inputs in {:.2}s",
        start.elapsed().as_secs_f64()
    );
    n
}

const SCENARIO: &str = r#"name = "x"
description = "d"
repeats = 2
sample_interval = "10ms"
[limiter]
kind = "cfs"
quota = "40ms"
period = "100ms"
burst = "0ms"
[workload]
kind = "requests"
work = "200ms"
count = 10
interval = "1s"
threads = 1
cpus = "0"
[sweep]
"limiter.quota" = ["20ms", "40ms"]
[expect]
cpu_share = "< 0.5"
"#;

const GROUPS: &str = r#"name = "w"
[limiter]
kind = "weight"
[[group]]
name = "a"
weight = 150
workload = { kind = "duty", on = "1s", off = "0s", duration = "1s", threads = 2, cpus = "0-1" }
[[group]]
name = "b"
weight = 50
workload = { kind = "steal", duration = "1s", cpus = "0", threshold = "5us" }
"#;

#[test]
fn no_parser_panics_on_mutated_input() {
    // 450k inputs on one thread: a CPU the measuring tests must not share.
    let _x = crate::common::exclusive();
    let allowed: fibtest::cpulist::CpuList = "0-1".parse().unwrap();
    let mut total = 0;
    total += fuzz("scenario", &[SCENARIO, GROUPS], 4000, |t| {
        if let Ok(s) = throttlebench::scenario::parse(t, "fuzz.toml") {
            let _ = throttlebench::scenario::resolve(&s, "fuzz.toml", &allowed);
        }
    });
    total += fuzz("cpu.stat", &[CPU_STAT_V1, CPU_STAT_V2], 50_000, |t| {
        let _ = throttlebench::sample::cpustat::CpuStat::parse(t);
    });
    total += fuzz("/proc/stat", &[PROC_STAT], 50_000, |t| {
        let _ = throttlebench::sample::procstat::ProcStat::parse(t);
    });
    total += fuzz("/proc/pid/stat", &[PID_STAT], 50_000, |t| {
        let _ = throttlebench::process::ProcInfo::parse(t);
        if let Some(s) = throttlebench::process::PidStat::parse(t) {
            let _ = (s.cpu_ticks(), s.start_time(), s.exiting());
        }
    });
    total += fuzz("pressure", &[PRESSURE], 50_000, |t| {
        let _ = throttlebench::sample::pressure::Pressure::parse(t);
    });
    total += fuzz("expectation", EXPECTATIONS, 50_000, |t| {
        let _ = throttlebench::report::expect::parse(t);
        let _ = throttlebench::report::expect::parse_selection(t);
    });
    total += fuzz("duration", DURATIONS, 50_000, |t| {
        let _ = t.parse::<fibtest::span::Span>();
        let _ = t.parse::<throttlebench::scenario::Quota>();
    });
    total += fuzz("cpu list", CPU_LISTS, 50_000, |t| {
        let _ = t.parse::<fibtest::cpulist::CpuList>();
    });
    total += fuzz(
        "kernel config and log",
        &[KERNEL_CONFIG, KMSG, RELEASE],
        50_000,
        |t| {
            let _ = throttlebench::sample::host::kernel_config(t);
            let _ = throttlebench::probe::entropy::crng_done_at(t);
            let _ = throttlebench::probe::entropy::kernel_version(t);
        },
    );
    total += fuzz("rngtest report", &[RNGTEST], 50_000, |t| {
        let _ = throttlebench::probe::fips::parse_rngtest(t);
        let _ = throttlebench::probe::fips::test_bytes(t.as_bytes());
    });
    println!("fuzz: {total} inputs in all");
}

const CPU_STAT_V1: &str =
    "nr_periods 10\nnr_throttled 3\nthrottled_time 1234\nnr_bursts 2\nburst_time 77\n";
const CPU_STAT_V2: &str =
    "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 1\nnr_throttled 1\nthrottled_usec 9\n";
const PROC_STAT: &str = "cpu  100 2 30 4000 5 6 7 8 0 0\ncpu0 60 1 20 2000 3 4 5 6 0 0\ncpu1 40 1 10 2000 2 2 2 2 0 0\nintr 12345 1 2 3\nctxt 999\n";
const PID_STAT: &str =
    "1234 (a (weird) name) T 1 1234 1234 0 -1 4194304 100 0 0 0 5 6 0 0 20 0 1 0 987654 1000 100\n";
const PRESSURE: &str = "some avg10=0.00 avg60=0.00 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=678\n";
const EXPECTATIONS: &[&str] = &[
    "throttled_pct < 20",
    "[limiter=cfs] latency_p99_s <= 500ms",
    "median(cpu_share) >= 0.35",
    "[param_limiter.quota=40ms, group != site1] upper95(throttled_pct) != 20%",
    // A selection alone, as `--where` takes it.
    "param_limiter.quota=40ms,group!=site1",
];
const DURATIONS: &[&str] = &["40ms", "1.5s", "500us", "2m", "max"];
const CPU_LISTS: &[&str] = &["0", "1-3", "0,2-3"];
const KERNEL_CONFIG: &str = "CONFIG_HZ=250\nCONFIG_CFS_BANDWIDTH=y\n# CONFIG_X is not set\n";
const KMSG: &str = "5,400,60740,-;random: crng init done\n";
const RELEASE: &str = "6.18.44-fc";
const RNGTEST: &str = "rngtest: bits received from input: 160032\nrngtest: FIPS 140-2 successes: 7\nrngtest: FIPS 140-2 failures: 1\nrngtest: FIPS 140-2(2001-10-10) Monobit: 1\nrngtest: FIPS 140-2(2001-10-10) Poker: 0\nrngtest: FIPS 140-2(2001-10-10) Runs: 0\nrngtest: FIPS 140-2(2001-10-10) Long run: 0\nrngtest: FIPS 140-2(2001-10-10) Continuous run: 0\n";

/// The fuzzer only asks that no parser panics, which a parser rejecting everything
/// passes. So each valid seed it mutates must parse, to the values it holds.
#[test]
fn the_fuzzers_valid_seeds_parse_to_their_values() {
    use throttlebench::sample::cpustat::CpuStat;

    let allowed: fibtest::cpulist::CpuList = "0-1".parse().unwrap();
    let s = throttlebench::scenario::parse(SCENARIO, "fuzz.toml").unwrap();
    let plan = throttlebench::scenario::resolve(&s, "fuzz.toml", &allowed).unwrap();
    // Two quotas swept, two repeats each.
    assert_eq!(plan.swept, ["limiter.quota"]);
    assert_eq!(plan.runs.len(), 4);
    let quotas: Vec<&str> = plan.runs.iter().map(|r| r.params[0].1.as_str()).collect();
    assert_eq!(quotas, ["20ms", "20ms", "40ms", "40ms"]);
    let s = throttlebench::scenario::parse(GROUPS, "fuzz.toml").unwrap();
    let plan = throttlebench::scenario::resolve(&s, "fuzz.toml", &allowed).unwrap();
    assert_eq!(plan.runs.len(), 1);
    let groups: Vec<(&str, Option<u32>)> = plan.runs[0]
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.weight))
        .collect();
    assert_eq!(groups, [("a", Some(150)), ("b", Some(50))]);

    let v1 = CpuStat::parse(CPU_STAT_V1).unwrap();
    assert_eq!(
        (
            v1.nr_periods,
            v1.nr_throttled,
            v1.throttled_ns,
            v1.nr_bursts,
            v1.burst_ns
        ),
        (10, 3, 1234, 2, 77)
    );
    assert_eq!(v1.usage_ns, None, "v1 cpu.stat has no usage");
    assert!(v1.has.bandwidth && v1.has.burst);
    let v2 = CpuStat::parse(CPU_STAT_V2).unwrap();
    // v2 counts µs; the parser gives ns.
    assert_eq!(
        (v2.nr_periods, v2.nr_throttled, v2.throttled_ns, v2.usage_ns),
        (1, 1, 9_000, Some(5_000))
    );
    assert!(
        v2.has.bandwidth && !v2.has.burst,
        "no nr_bursts line: not reported"
    );

    let p = throttlebench::sample::procstat::ProcStat::parse(PROC_STAT).unwrap();
    let t = p.total;
    assert_eq!(
        [t.user, t.nice, t.system, t.idle, t.iowait, t.irq, t.softirq, t.steal],
        [100, 2, 30, 4000, 5, 6, 7, 8]
    );
    assert_eq!(p.cpus.len(), 2);
    assert_eq!(
        (p.cpus[0].user, p.cpus[1].user, p.cpus[1].steal),
        (60, 40, 2)
    );

    let info = throttlebench::process::ProcInfo::parse(PID_STAT).unwrap();
    assert_eq!(
        (
            info.pid,
            info.name.as_str(),
            info.state,
            info.ppid,
            info.session
        ),
        (1234, "a (weird) name", 'T', 1, 1234)
    );
    assert!(info.is_stopped() && !info.exiting);
    let st = throttlebench::process::PidStat::parse(PID_STAT).unwrap();
    // utime + stime + cutime + cstime (fields 14-17), and field 22.
    assert_eq!((st.cpu_ticks(), st.start_time()), (Some(11), Some(987654)));

    let psi = throttlebench::sample::pressure::Pressure::parse(PRESSURE).unwrap();
    assert_eq!((psi.some_us, psi.full_us), (12345, Some(678)));

    use throttlebench::report::expect::{parse, Aggregate, Op};
    let e = parse(EXPECTATIONS[0]).unwrap();
    assert_eq!(
        (
            e.column.as_str(),
            e.op,
            e.limit,
            e.aggregate,
            e.select.len()
        ),
        ("throttled_pct", Op::Lt, 20.0, Aggregate::Every, 0)
    );
    let e = parse(EXPECTATIONS[1]).unwrap();
    // 500ms in the column's unit (s), and one row condition.
    assert_eq!(
        (e.column.as_str(), e.op, e.limit),
        ("latency_p99_s", Op::Le, 0.5)
    );
    assert!(e.unit_given);
    let conds = |c: &[throttlebench::report::expect::Condition]| -> Vec<(String, bool, String)> {
        c.iter()
            .map(|c| (c.column.clone(), c.equal, c.value.clone()))
            .collect()
    };
    assert_eq!(conds(&e.select), [("limiter".into(), true, "cfs".into())]);
    let e = parse(EXPECTATIONS[2]).unwrap();
    assert_eq!(
        (e.column.as_str(), e.op, e.limit, e.aggregate),
        ("cpu_share", Op::Ge, 0.35, Aggregate::Median)
    );
    assert!(!e.unit_given);
    let e = parse(EXPECTATIONS[3]).unwrap();
    assert_eq!(
        (e.column.as_str(), e.op, e.limit, e.aggregate),
        ("throttled_pct", Op::Ne, 20.0, Aggregate::Upper(0.95))
    );
    let want: Vec<(String, bool, String)> = vec![
        ("param_limiter.quota".into(), true, "40ms".into()),
        ("group".into(), false, "site1".into()),
    ];
    assert_eq!(conds(&e.select), want);
    assert!(
        parse(EXPECTATIONS[4]).is_err(),
        "a selection has no comparison"
    );
    let sel = throttlebench::report::expect::parse_selection(EXPECTATIONS[4]).unwrap();
    assert_eq!(conds(&sel), want);

    use fibtest::span::Span;
    use std::time::Duration;
    let spans: Vec<Option<Duration>> = DURATIONS
        .iter()
        .map(|d| d.parse::<Span>().ok().map(|s| s.0))
        .collect();
    assert_eq!(
        spans,
        [
            Some(Duration::from_millis(40)),
            Some(Duration::from_millis(1500)),
            Some(Duration::from_micros(500)),
            Some(Duration::from_secs(120)),
            None, // "max" is a quota, not a duration
        ]
    );
    use throttlebench::scenario::Quota;
    assert_eq!("max".parse::<Quota>().unwrap(), Quota::Max);
    assert_eq!(
        "40ms".parse::<Quota>().unwrap(),
        Quota::Limit(Span::from_millis(40))
    );

    let lists: Vec<Vec<u32>> = CPU_LISTS
        .iter()
        .map(|l| {
            l.parse::<fibtest::cpulist::CpuList>()
                .unwrap()
                .iter()
                .collect()
        })
        .collect();
    assert_eq!(lists, [vec![0], vec![1, 2, 3], vec![0, 2, 3]]);

    assert_eq!(
        throttlebench::sample::host::kernel_config(KERNEL_CONFIG),
        (Some(250), Some(true))
    );
    assert_eq!(
        throttlebench::probe::entropy::crng_done_at(KMSG),
        Some(0.06074)
    );
    assert_eq!(
        throttlebench::probe::entropy::kernel_version(RELEASE),
        Some((6, 18))
    );

    let r = throttlebench::probe::fips::parse_rngtest(RNGTEST).unwrap();
    assert_eq!(
        (
            r.bits_received,
            r.blocks,
            r.successes,
            r.failures,
            r.monobit,
            r.poker
        ),
        (160032, 8, 7, 1, 1, 0)
    );
    // The report's text as input: its bytes counted, too short for one 20000-bit block.
    let own = throttlebench::probe::fips::test_bytes(RNGTEST.as_bytes());
    assert_eq!(
        (own.bits_received, own.blocks),
        (8 * RNGTEST.len() as u64, 0)
    );
}
