//! The exposition against Prometheus's own tools: `promtool check metrics` parses it, and
//! a real Prometheus scraping `watch --serve` of a real cgroup (made by the test, with a
//! workload the test starts in it) computes the throttled ratio, CPU rate and throttled
//! time that the watch's own rows and summary hold, the same `increase()` as
//! `as_scraped::promql`, and fires the deploy folder's episode alert.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use throttlebench::as_scraped::promql::{self, PromVersion, Sample};
use throttlebench::exposition::{CpuCounters, CpuLimits, Exposition, GroupLabels};

use crate::common::cgroup::{duty, spawn_tb, v1, TestCgroup};
use crate::common::prometheus::{deploy_dir, prometheus_or_skip, rule_file_of, Prometheus};
use crate::common::{ci, exclusive, num, read_csv, real_cgroups_or_skip, TempDir};

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

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The cumulative counters of one group of a watch at each of its rows: (unix time of
/// the read, periods, throttled periods, throttled s, usage s), from its first read on.
fn cumulative(dir: &Path) -> Vec<(f64, f64, f64, f64, f64)> {
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let t0 = j["t0_unix_s"].as_f64().unwrap();
    let g = &j["groups"][0]["start"];
    let mut c = (
        t0,
        g["nr_periods"].as_f64().unwrap(),
        g["nr_throttled"].as_f64().unwrap(),
        g["throttled_s"].as_f64().unwrap(),
        g["usage_s"].as_f64().unwrap(),
    );
    let mut out = vec![c];
    for r in read_csv(&dir.join("timeseries.csv")) {
        c.0 = t0 + num(&r, "t_s");
        c.1 += num(&r, "nr_periods");
        c.2 += num(&r, "nr_throttled");
        c.3 += num(&r, "throttled_s");
        c.4 += num(&r, "usage_s");
        out.push(c);
    }
    out
}

/// How long before a scrape a read may be that was not yet published when it was served
/// (a few of the watch's 10 ms ticks).
const PUBLISH_SLACK_S: f64 = 0.05;

/// The row a scrape stamped at unix time `t` saw, found by the `periods` it returned: the
/// last read at or before `t`, one just before it not yet published, or one made while the
/// scrape was under way. Prometheus stamps a scrape when it starts it, and the exporter
/// answers up to `scrape_s` (the longest `scrape_duration_seconds`) later; with reads every
/// 10 ms one can land in between. Panics when no read in that span has the scraped value,
/// which would mean the exporter served a figure the watch never recorded.
fn seen_by_scrape(
    rows: &[(f64, f64, f64, f64, f64)],
    t: f64,
    periods: f64,
    scrape_s: f64,
) -> (f64, f64, f64, f64, f64) {
    let i = rows.partition_point(|r| r.0 <= t);
    assert!(i > 0, "no read before {t}");
    let end = rows.partition_point(|r| r.0 <= t + scrape_s);
    let start = rows
        .partition_point(|r| r.0 < t - PUBLISH_SLACK_S)
        .min(i - 1);
    let candidates = &rows[start..end];
    *candidates
        .iter()
        .filter(|r| r.1 == periods)
        .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
        .unwrap_or_else(|| {
            panic!(
                "the scrape at {t} returned {periods} periods; the watch read {:?} from {PUBLISH_SLACK_S} s before it to {scrape_s} s after",
                candidates.iter().map(|r| r.1).collect::<Vec<_>>()
            )
        })
}

#[test]
fn prometheus_sees_the_throttling_that_a_watch_of_a_real_cgroup_records() {
    let test = "prometheus_sees_the_throttling_that_a_watch_of_a_real_cgroup_records";
    if !real_cgroups_or_skip(test) || !prometheus_or_skip(test) {
        return;
    }
    if !v1() {
        // This test makes a v1 cgroup pair (the machines of this project are v1); a CI
        // machine without them cannot pass by skipping it.
        assert!(
            !ci(),
            "{test}: written for cgroup v1 (cpu and cpuacct hierarchies)"
        );
        eprintln!("skipped: {test}: written for cgroup v1 (cpu and cpuacct hierarchies)");
        return;
    }
    let _x = exclusive();
    let mut cg = TestCgroup::new(&format!("tb-prom-{}", std::process::id()));
    cg.limit(20_000, 100_000);
    // A workload that spins 1.5 s and sleeps 1.5 s: under 20 ms per 100 ms it is
    // throttled in every period of each on-phase, an episode of about 1.5 s.
    cg.start(duty("1500ms", "1500ms", "180s"));

    // The watch, serving on a port of its choice, which it says on stderr.
    let dir = TempDir::new("prom-watch");
    let out = dir.path().join("out");
    let mut watch = spawn_tb(&[
        "watch",
        &cg.rel,
        "--interval",
        "10ms",
        "--serve",
        "127.0.0.1:0",
        "--no-plot",
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut stderr = BufReader::new(watch.stderr.take().unwrap());
    let addr: SocketAddr = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "watch ended before it served"
        );
        if let Some(rest) = line
            .trim()
            .strip_prefix("throttlebench: serving metrics at http://")
        {
            break rest.trim_end_matches("/metrics").parse().unwrap();
        }
    };

    let rules_dir = TempDir::new("prom-rules");
    let rules = std::fs::read_to_string(deploy_dir().join("prometheusrule.yaml")).unwrap();
    let rule_file = rules_dir.file("rules.yaml", &rule_file_of(&rules));
    let prom = Prometheus::start(addr, "1s", &[rule_file]);
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
    let rate_of = |name: &str| {
        prom.query_value(&format!("rate({name}[30s])"), Some(t))
            .expect(name)
    };
    let prom_ratio = prom
        .query_value(
            "rate(throttlebench_cpu_cfs_throttled_periods_total[30s]) / rate(throttlebench_cpu_cfs_periods_total[30s])",
            Some(t),
        )
        .expect("a ratio");
    let usage = rate_of("throttlebench_cpu_usage_seconds_total");
    let throttled = rate_of("throttlebench_cpu_cfs_throttled_seconds_total");
    let window = prom.samples("throttlebench_cpu_cfs_periods_total[30s]", t);
    let scrape_s = prom
        .query_value("max_over_time(scrape_duration_seconds[40s])", Some(t))
        .expect("scrape durations");
    let increases: Vec<(f64, f64, f64)> = [t, t - 7.321]
        .iter()
        .map(|&when| {
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
            (when, ours, theirs)
        })
        .collect();
    let alert = |name: &str, state: &str| {
        prom.query_value(
            &format!("ALERTS{{alertname=\"{name}\",alertstate=\"{state}\"}}"),
            Some(t),
        )
    };
    let alerts = [
        alert("ThrottlebenchThrottlingEpisode", "firing"),
        alert("ThrottlebenchCPUThrottlingHigh", "pending"),
        alert("ThrottlebenchCPUThrottlingHigh", "firing"),
        alert("ThrottlebenchThrottlingOngoing", "firing"),
    ];
    drop(prom);

    // Ctrl-C ends the watch, whose files then hold what it read.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watch.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    let status = watch.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{said}");
    cg.stop();

    // The ratio over the same scrapes, from the watch's rows: the scraped counters are the
    // values of the last row at or before each scrape.
    let rows = cumulative(&out);
    let (first, last) = (
        window[0].0 as f64 / 1000.0,
        window.last().unwrap().0 as f64 / 1000.0,
    );
    // Each scraped counter is one the watch read (the helper panics otherwise).
    let c0 = seen_by_scrape(&rows, first, window[0].1, scrape_s);
    let c1 = seen_by_scrape(&rows, last, window.last().unwrap().1, scrape_s);
    let span = last - first;
    let (p, k) = (c1.1 - c0.1, c1.2 - c0.2);
    let rows_ratio = k / p;
    let summary = read_csv(&out.join("summary.csv"));
    assert_eq!(summary.len(), 1, "{summary:?}");
    let s = &summary[0];
    let summary_ratio = num(s, "nr_throttled") / num(s, "nr_periods");
    eprintln!(
        "throttled ratio: Prometheus {prom_ratio:.4}, the watch's rows over the same scrapes {rows_ratio:.4} ({k}/{p} over {span:.1} s), its summary {summary_ratio:.4} ({}/{} over {:.1} s)",
        num(s, "nr_throttled"),
        num(s, "nr_periods"),
        num(s, "wall_s")
    );
    assert!(
        (prom_ratio - rows_ratio).abs() < 0.02,
        "Prometheus {prom_ratio}, rows {rows_ratio}"
    );
    // The summary spans the whole watch (about 40 s), the rate its last 30 s: a window
    // edge can cut one of the ten 3 s duty cycles in it, which moves the ratio by up to
    // a tenth of a cycle's share.
    assert!(
        (prom_ratio - summary_ratio).abs() < 0.06,
        "Prometheus {prom_ratio}, summary {summary_ratio}"
    );
    assert!(
        rows_ratio > 0.5 && rows_ratio <= 1.0,
        "{rows_ratio}: not throttled as a duty cycle under 20% is"
    );

    // Units: CPU and throttled time in seconds per second, as the rows say.
    let row_usage = (c1.4 - c0.4) / span;
    assert!(
        (usage - row_usage).abs() < 0.02 * row_usage.max(0.01),
        "usage {usage} vs {row_usage}"
    );
    assert!(
        usage > 0.02 && usage < 0.25,
        "{usage} CPUs under a 0.2 CPU quota, half the time on"
    );
    let row_throttled = (c1.3 - c0.3) / span;
    assert!(
        (throttled - row_throttled).abs() < 0.02 * row_throttled.max(0.01),
        "throttled {throttled} vs {row_throttled}"
    );
    assert!(
        (usage - num(s, "cpu_share")).abs() < 0.03,
        "usage rate {usage}, summary {}",
        num(s, "cpu_share")
    );

    // Our port of increase() against Prometheus's own, at two unaligned times.
    for (when, ours, theirs) in increases {
        assert!(
            (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
            "increase at {when}: ours {ours}, Prometheus {version}'s {theirs}"
        );
    }

    // The deploy folder's alerts: the episode alert fires; the mixin-like one waits for
    // its 15 minutes.
    assert_eq!(alerts, [Some(1.0), Some(1.0), None, None], "{said}");
    drop(cg);
}

#[test]
fn run_serve_exports_the_runs_cgroup_while_it_runs() {
    let test = "run_serve_exports_the_runs_cgroup_while_it_runs";
    if !real_cgroups_or_skip(test) {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("run-serve");
    let scenario = dir.file(
        "s.toml",
        "name = \"serve-test\"\nsample_interval = \"10ms\"\n[limiter]\nkind = \"cfs\"\nquota = \"20ms\"\nperiod = \"100ms\"\n[workload]\nkind = \"duty\"\non = \"10s\"\noff = \"0s\"\nduration = \"10s\"\n",
    );
    let out = dir.path().join("out");
    let mut run = spawn_tb(&[
        "run",
        scenario.to_str().unwrap(),
        "--no-plot",
        "--serve",
        "127.0.0.1:0",
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut stderr = BufReader::new(run.stderr.take().unwrap());
    let addr: SocketAddr = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "run ended before it served"
        );
        if let Some(rest) = line
            .trim()
            .strip_prefix("throttlebench: serving metrics at http://")
        {
            break rest.trim_end_matches("/metrics").parse().unwrap();
        }
    };
    // Wait until the run's group is exported and has counted periods.
    let start = Instant::now();
    let text = loop {
        let (code, body) = crate::common::prometheus::http_get(addr, "/metrics").unwrap();
        assert_eq!(code, 200);
        let periods = body
            .lines()
            .find(|l| {
                l.starts_with("throttlebench_cpu_cfs_periods_total{")
                    && l.contains("group=\"main\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
        if periods.is_some_and(|p| p >= 5.0) {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no periods exported:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let line = text
        .lines()
        .find(|l| l.starts_with("throttlebench_cpu_cfs_throttled_periods_total{"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("cgroup=\"/throttlebench/run-"), "{line}");
    assert!(line.contains("scenario=\"serve-test\""), "{line}");
    assert!(line.contains("limiter=\"cfs\""), "{line}");
    assert!(
        text.contains("throttlebench_spec_cpu_quota_seconds{") && text.contains(" 0.02\n"),
        "{text}"
    );
    let mut said = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    let status = run.wait().unwrap();
    assert!(status.success(), "{said}");
}

#[test]
fn find_threshold_serve_exports_the_searchs_cgroup_while_it_searches() {
    let test = "find_threshold_serve_exports_the_searchs_cgroup_while_it_searches";
    if !real_cgroups_or_skip(test) {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("thr-serve");
    let scenario = dir.file(
        "s.toml",
        "name = \"thr-serve\"\n[limiter]\nkind = \"cfs\"\nquota = \"20ms\"\nperiod = \"100ms\"\n",
    );
    let out = dir.path().join("out");
    let mut search = spawn_tb(&[
        "find-threshold",
        scenario.to_str().unwrap(),
        "--cycle",
        "1s",
        "--budget",
        "2m",
        "--serve",
        "127.0.0.1:0",
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut stderr = BufReader::new(search.stderr.take().unwrap());
    let addr: SocketAddr = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "find-threshold ended before it served"
        );
        if let Some(rest) = line
            .trim()
            .strip_prefix("throttlebench: serving metrics at http://")
        {
            break rest.trim_end_matches("/metrics").parse().unwrap();
        }
    };
    // Its probes run at full speed and at duty cycles above the 0.2 CPU quota: the
    // search's cgroup is throttled, and the exposition shows it while the search runs.
    let value = |body: &str, name: &str| -> Option<f64> {
        body.lines()
            .find(|l| l.starts_with(&format!("{name}{{")) && l.contains("group=\"main\""))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let start = Instant::now();
    let text = loop {
        let (code, body) = crate::common::prometheus::http_get(addr, "/metrics").unwrap();
        assert_eq!(code, 200);
        if value(&body, "throttlebench_cpu_cfs_throttled_periods_total").is_some_and(|t| t >= 3.0) {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no throttled periods exported:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let line = text
        .lines()
        .find(|l| l.starts_with("throttlebench_cpu_cfs_periods_total{") && l.contains("main"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("cgroup=\"/throttlebench/"), "{line}");
    assert!(line.contains("scenario=\"threshold-thr-serve\""), "{line}");
    assert!(line.contains("limiter=\"cfs\""), "{line}");
    assert_eq!(
        value(&text, "throttlebench_spec_cpu_quota_seconds"),
        Some(0.02),
        "{text}"
    );
    let usage = value(&text, "throttlebench_cpu_usage_seconds_total").unwrap();
    assert!(usage > 0.0, "{text}");
    // Ctrl-C ends the search (its cgroup removed: the leftovers check at the end).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(search.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    let status = search.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{said}");
}
