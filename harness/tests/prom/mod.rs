//! The exposition against Prometheus's own tools: `promtool check metrics` parses it, and
//! a real Prometheus scraping it while a real cgroup is throttled computes the same
//! throttled ratio, CPU rate and throttled time as the cgroup's files, the same
//! `increase()` as `as_scraped::promql`, and fires the deploy folder's episode alert.
//!
//! The cgroup is sampled here by a small loop of the test's own (cpu.stat and
//! cpuacct.usage every 10 ms into the exposition); `watch --serve` will take its place.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use throttlebench::as_scraped::promql::{self, PromVersion, Sample};
use throttlebench::exposition::{CpuCounters, CpuLimits, Exposition, GroupLabels, Server};
use throttlebench::sample::cpustat::CpuStat;

use crate::common::prometheus::{deploy_dir, prometheus_or_skip, rule_file_of, Prometheus};
use crate::common::{exclusive, real_cgroups_or_skip, tb, TempDir, CGROUP_ROOT};

fn labels(group: &str, cgroup: &str) -> GroupLabels {
    GroupLabels {
        cgroup: cgroup.into(),
        group: group.into(),
        limiter: "cfs".into(),
        scenario: "prom-test".into(),
        host: "tb-host".into(),
    }
}

#[test]
fn promtool_accepts_the_exposition() {
    if !prometheus_or_skip("promtool_accepts_the_exposition") {
        return;
    }
    let e = Exposition::new();
    // Every family present: a throttled group with a latency histogram and an ended
    // episode, the host row with steal and PSI, and a group without the cpu controller.
    let mut g = e.add_group(labels("main", "/throttlebench/run-1"), true);
    g.set_limits(&CpuLimits {
        quota_s: Some(0.02),
        period_s: Some(0.1),
        burst_s: Some(0.0),
    });
    let mut c = CpuCounters {
        nr_periods: Some(0),
        nr_throttled: Some(0),
        throttled_s: Some(0.0),
        nr_bursts: Some(0),
        burst_s: Some(0.0),
        usage_s: Some(0.0),
        pressure_waiting_s: Some(0.0),
        steal_s: None,
    };
    for tick in 1..=100u32 {
        if tick % 10 == 0 {
            c.nr_periods = c.nr_periods.map(|v| v + 1);
            if tick < 50 {
                c.nr_throttled = c.nr_throttled.map(|v| v + 1);
                c.throttled_s = c.throttled_s.map(|v| v + 0.08);
            }
        }
        g.update(f64::from(tick) / 100.0, &c);
    }
    g.observe_latency(0.44);
    let mut host = e.add_group(labels("host", "/"), false);
    host.update(
        1.0,
        &CpuCounters {
            steal_s: Some(1.5),
            pressure_waiting_s: Some(3.0),
            ..CpuCounters::default()
        },
    );
    let mut bare = e.add_group(labels("no-controller", "/unified/x"), false);
    bare.update(
        1.0,
        &CpuCounters {
            usage_s: Some(2.0),
            ..CpuCounters::default()
        },
    );
    let text = e.encode_text();
    for name in throttlebench::exposition::exported_series() {
        assert!(text.contains(&name), "{name} missing:\n{text}");
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics: {said}\n{text}"
    );
    assert_eq!(said.trim(), "", "promtool's lint found problems:\n{text}");
}

/// A v1 cgroup pair (cpu and cpuacct) under `throttlebench/`, removed when dropped, with
/// the parents if this made them.
struct TestCgroup {
    dirs: Vec<PathBuf>,
    made_parents: Vec<PathBuf>,
    child: Option<Child>,
}

impl TestCgroup {
    fn new(name: &str) -> TestCgroup {
        let mut t = TestCgroup {
            dirs: Vec::new(),
            made_parents: Vec::new(),
            child: None,
        };
        for controller in ["cpu", "cpuacct"] {
            let parent = Path::new(CGROUP_ROOT)
                .join(controller)
                .join("throttlebench");
            if !parent.exists() {
                std::fs::create_dir(&parent).unwrap();
                t.made_parents.push(parent.clone());
            }
            let dir = parent.join(name);
            std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            t.dirs.push(dir);
        }
        t
    }

    fn cpu(&self) -> &Path {
        &self.dirs[0]
    }

    fn cpuacct(&self) -> &Path {
        &self.dirs[1]
    }

    /// Start `cmd` and move it into both cgroups.
    fn run(&mut self, mut cmd: Command) {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        self.child = Some(child);
        for d in &self.dirs {
            std::fs::write(d.join("cgroup.procs"), &pid).unwrap();
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in &self.dirs {
            // The kernel frees a cgroup shortly after its last task has exited.
            let start = Instant::now();
            while std::fs::remove_dir(d).is_err()
                && d.exists()
                && start.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for p in &self.made_parents {
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// One reading of the cgroup: unix time (s) and counters in base units.
type Reading = (f64, CpuCounters);

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// cpu.stat of the cpu hierarchy's folder and cpuacct.usage of the cpuacct one, in base
/// units (v1: ns).
fn read_counters(cpu: &Path, cpuacct: &Path) -> CpuCounters {
    let stat = CpuStat::parse(&std::fs::read_to_string(cpu.join("cpu.stat")).unwrap()).unwrap();
    let usage_ns: u64 = std::fs::read_to_string(cpuacct.join("cpuacct.usage"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    CpuCounters {
        nr_periods: Some(stat.nr_periods),
        nr_throttled: Some(stat.nr_throttled),
        throttled_s: Some(stat.throttled_ns as f64 / 1e9),
        nr_bursts: stat.has.burst.then_some(stat.nr_bursts),
        burst_s: stat.has.burst.then_some(stat.burst_ns as f64 / 1e9),
        usage_s: Some(usage_ns as f64 / 1e9),
        pressure_waiting_s: None,
        steal_s: None,
    }
}

/// The reading in effect at unix time `t`: the last one taken at or before it.
fn at(readings: &[Reading], t: f64) -> CpuCounters {
    let i = readings.partition_point(|r| r.0 <= t);
    assert!(i > 0, "no reading before {t}");
    readings[i - 1].1
}

#[test]
fn prometheus_sees_the_throttling_of_a_real_cgroup() {
    let test = "prometheus_sees_the_throttling_of_a_real_cgroup";
    if !real_cgroups_or_skip(test) || !prometheus_or_skip(test) {
        return;
    }
    if !Path::new(CGROUP_ROOT).join("cpu/cpu.cfs_quota_us").exists() {
        // This test makes a v1 cgroup pair (the machines of this project are v1).
        eprintln!("skipped: {test}: written for cgroup v1 (cpu and cpuacct hierarchies)");
        return;
    }
    let _x = exclusive();
    let name = format!("tb-prom-{}", std::process::id());
    let mut cg = TestCgroup::new(&name);
    std::fs::write(cg.cpu().join("cpu.cfs_period_us"), "100000").unwrap();
    std::fs::write(cg.cpu().join("cpu.cfs_quota_us"), "20000").unwrap();

    // The exposition and its server.
    let exposition = Exposition::new();
    let mut group = exposition.add_group(labels("spin", &format!("/throttlebench/{name}")), false);
    group.set_limits(&CpuLimits {
        quota_s: Some(0.02),
        period_s: Some(0.1),
        burst_s: None,
    });
    let server = Server::start("127.0.0.1:0", exposition.clone()).unwrap();

    // A workload that spins 1.5 s and sleeps 1.5 s: under 20 ms per 100 ms it is
    // throttled in every period of each on-phase, an episode of about 1.5 s.
    let mut spin = tb();
    spin.args([
        "fibtest",
        "duty",
        "--on",
        "1500ms",
        "--off",
        "1500ms",
        "--duration",
        "180s",
    ]);
    cg.run(spin);

    // The test's own sampler: every 10 ms into the exposition and a log.
    let readings: Arc<Mutex<Vec<Reading>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (readings, stop) = (readings.clone(), stop.clone());
        let (cpu, cpuacct) = (cg.cpu().to_path_buf(), cg.cpuacct().to_path_buf());
        std::thread::spawn(move || {
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let c = read_counters(&cpu, &cpuacct);
                let t = unix_now();
                group.update(start.elapsed().as_secs_f64(), &c);
                readings.lock().unwrap().push((t, c));
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let dir = TempDir::new("prom-rules");
    let rules = std::fs::read_to_string(deploy_dir().join("prometheusrule.yaml")).unwrap();
    let rule_file = dir.file("rules.yaml", &rule_file_of(&rules));
    let prom = Prometheus::start(server.local_addr(), "1s", &[rule_file]);
    let version = prom.version();
    let rules_version =
        PromVersion::from_version(&version).unwrap_or_else(|| panic!("version {version}"));

    // Wait for 35 scrapes (a 30 s window and some), asking Prometheus itself.
    let start = Instant::now();
    loop {
        let n = prom.query_value(
            "count_over_time(throttlebench_cpu_cfs_periods_total[40s])",
            None,
        );
        if n.is_some_and(|n| n >= 35.0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "35 scrapes took over 2 minutes (have {n:?})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let t = ((unix_now() - 1.5) * 1000.0).floor() / 1000.0;

    let readings = readings.lock().unwrap().clone();
    let window = |selector: &str| prom.samples(&format!("{selector}[30s]"), t);
    let periods = window("throttlebench_cpu_cfs_periods_total");
    let (first, last) = (
        periods[0].0 as f64 / 1000.0,
        periods.last().unwrap().0 as f64 / 1000.0,
    );
    let (c0, c1) = (at(&readings, first), at(&readings, last));
    let span = last - first;

    // The throttled ratio: Prometheus's rate ratio against the files' over the same scrapes.
    let prom_ratio = prom
        .query_value(
            "rate(throttlebench_cpu_cfs_throttled_periods_total[30s]) / rate(throttlebench_cpu_cfs_periods_total[30s])",
            Some(t),
        )
        .expect("a ratio");
    let p = (c1.nr_periods.unwrap() - c0.nr_periods.unwrap()) as f64;
    let k = (c1.nr_throttled.unwrap() - c0.nr_throttled.unwrap()) as f64;
    let file_ratio = k / p;
    eprintln!("throttled ratio: Prometheus {prom_ratio:.4}, files {file_ratio:.4} ({k}/{p} over {span:.1} s)");
    assert!(
        (prom_ratio - file_ratio).abs() < 0.02,
        "Prometheus {prom_ratio}, files {file_ratio}"
    );
    assert!(
        file_ratio > 0.5 && file_ratio <= 1.0,
        "{file_ratio}: not throttled as a duty cycle under 20% is"
    );

    // Units: CPU and throttled time in seconds per second, as the files say.
    let rate_of = |name: &str| {
        prom.query_value(&format!("rate({name}[30s])"), Some(t))
            .expect(name)
    };
    let usage = rate_of("throttlebench_cpu_usage_seconds_total");
    let file_usage = (c1.usage_s.unwrap() - c0.usage_s.unwrap()) / span;
    assert!(
        (usage - file_usage).abs() < 0.02 * file_usage.max(0.01),
        "usage {usage} vs {file_usage}"
    );
    assert!(
        usage > 0.02 && usage < 0.25,
        "{usage} CPUs under a 0.2 CPU quota, half the time on"
    );
    let throttled = rate_of("throttlebench_cpu_cfs_throttled_seconds_total");
    let file_throttled = (c1.throttled_s.unwrap() - c0.throttled_s.unwrap()) / span;
    assert!(
        (throttled - file_throttled).abs() < 0.02 * file_throttled.max(0.01),
        "throttled {throttled} vs {file_throttled}"
    );

    // Our port of increase() against Prometheus's own, at two unaligned times.
    for when in [t, t - 7.321] {
        let raw = prom.samples("throttlebench_cpu_cfs_periods_total[40s]", when);
        let samples: Vec<Sample> = raw.iter().map(|&(t_ms, v)| Sample { t_ms, v }).collect();
        let ours = promql::increase(
            &samples,
            (when * 1000.0).round() as i64,
            30_000,
            rules_version,
        )
        .unwrap();
        let theirs = prom
            .query_value(
                "increase(throttlebench_cpu_cfs_periods_total[30s])",
                Some(when),
            )
            .unwrap();
        assert!(
            (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
            "increase at {when}: ours {ours}, Prometheus {version}'s {theirs}"
        );
    }

    // The deploy folder's alerts: the episode alert fires; the mixin-like one waits for
    // its 15 minutes.
    let alert = |name: &str, state: &str| {
        prom.query_value(
            &format!("ALERTS{{alertname=\"{name}\",alertstate=\"{state}\"}}"),
            Some(t),
        )
    };
    assert_eq!(alert("ThrottlebenchThrottlingEpisode", "firing"), Some(1.0));
    assert_eq!(
        alert("ThrottlebenchCPUThrottlingHigh", "pending"),
        Some(1.0)
    );
    assert_eq!(alert("ThrottlebenchCPUThrottlingHigh", "firing"), None);
    assert_eq!(alert("ThrottlebenchThrottlingOngoing", "firing"), None);

    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    drop(prom);
    server.stop();
    drop(cg);
}
