//! Bounded mutation fuzzing of every parser of outside text: scenario files, cpu.stat,
//! /proc/stat, /proc/<pid>/stat, PSI, `check` expectations, durations, CPU lists, kernel
//! configs and logs, rngtest reports. Valid samples are mutated (bytes flipped, inserted,
//! deleted, lines duplicated or cut, numbers made huge or negative) by a seeded generator,
//! so a failure names an input that reproduces it. No parser may panic; errors are fine.
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
    let allowed: fibtest::cpulist::CpuList = "0-1".parse().unwrap();
    let mut total = 0;
    total += fuzz("scenario", &[SCENARIO, GROUPS], 4000, |t| {
        if let Ok(s) = throttlebench::scenario::parse(t, "fuzz.toml") {
            let _ = throttlebench::scenario::resolve(&s, "fuzz.toml", &allowed);
        }
    });
    total += fuzz(
        "cpu.stat",
        &[
            "nr_periods 10\nnr_throttled 3\nthrottled_time 1234\nnr_bursts 0\nburst_time 0\n",
            "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 1\nnr_throttled 1\nthrottled_usec 9\n",
        ],
        50_000,
        |t| {
            let _ = throttlebench::sample::cpustat::CpuStat::parse(t);
        },
    );
    total += fuzz(
        "/proc/stat",
        &["cpu  100 2 30 4000 5 6 7 8 0 0\ncpu0 60 1 20 2000 3 4 5 6 0 0\ncpu1 40 1 10 2000 2 2 2 2 0 0\nintr 12345 1 2 3\nctxt 999\n"],
        50_000,
        |t| {
            let _ = throttlebench::sample::procstat::ProcStat::parse(t);
        },
    );
    total += fuzz(
        "/proc/pid/stat",
        &["1234 (a (weird) name) T 1 1234 1234 0 -1 4194304 100 0 0 0 5 6 0 0 20 0 1 0 987654 1000 100\n"],
        50_000,
        |t| {
            let _ = throttlebench::process::ProcInfo::parse(t);
            if let Some(s) = throttlebench::process::PidStat::parse(t) {
                let _ = (s.cpu_ticks(), s.start_time(), s.exiting());
            }
        },
    );
    total += fuzz(
        "pressure",
        &["some avg10=0.00 avg60=0.00 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=678\n"],
        50_000,
        |t| {
            let _ = throttlebench::sample::pressure::Pressure::parse(t);
        },
    );
    total += fuzz(
        "expectation",
        &[
            "throttled_pct < 20",
            "latency_p99_s <= 500ms where limiter = cfs",
            "cpu_share within 0.4 +- 5%",
            "share_error: |x| < 0.02",
        ],
        50_000,
        |t| {
            let _ = throttlebench::report::expect::parse(t);
            let _ = throttlebench::report::expect::parse_selection(t);
        },
    );
    total += fuzz(
        "duration",
        &["40ms", "1.5s", "500us", "2m", "max"],
        50_000,
        |t| {
            let _ = t.parse::<fibtest::span::Span>();
            let _ = t.parse::<throttlebench::scenario::Quota>();
        },
    );
    total += fuzz("cpu list", &["0", "1-3", "0,2-3"], 50_000, |t| {
        let _ = t.parse::<fibtest::cpulist::CpuList>();
    });
    total += fuzz(
        "kernel config and log",
        &[
            "CONFIG_HZ=250\nCONFIG_CFS_BANDWIDTH=y\n# CONFIG_X is not set\n",
            "5,400,60740,-;random: crng init done\n",
        ],
        50_000,
        |t| {
            let _ = throttlebench::sample::host::kernel_config(t);
            let _ = throttlebench::probe::entropy::crng_done_at(t);
            let _ = throttlebench::probe::entropy::kernel_version(t);
        },
    );
    total += fuzz(
        "rngtest report",
        &["rngtest: bits received from input: 160032\nrngtest: FIPS 140-2 successes: 7\nrngtest: FIPS 140-2 failures: 1\nrngtest: FIPS 140-2(2001-10-10) Monobit: 1\n"],
        50_000,
        |t| {
            let _ = throttlebench::probe::fips::parse_rngtest(t);
            let _ = throttlebench::probe::fips::test_bytes(t.as_bytes());
        },
    );
    println!("fuzz: {total} inputs in all");
}
