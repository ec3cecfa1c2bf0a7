//! The exposition's text, its names and units on v1 and v2, absent counters, the live
//! path (no allocation, no torn tick) and the HTTP server.

use super::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;

/// Counts the allocations of the current thread, so a test can say that a call made none.
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the counter is a
// thread-local Cell, touched with try_with so a thread being torn down is skipped.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    ALLOCATIONS.with(|n| n.get())
}

fn labels(group: &str) -> GroupLabels {
    GroupLabels {
        cgroup: format!("/throttlebench/{group}"),
        group: group.into(),
        limiter: "cfs".into(),
        scenario: "test".into(),
        host: "tb-host".into(),
    }
}

/// The lines of `text` that are samples of series `name` (not comments).
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .collect()
}

fn value(line: &str) -> f64 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A cgroup's cpu.stat (and, on v1, cpuacct.usage) read into base units the way a
/// sampler must: this is the conversion the exposition leaves to its caller.
fn counters_from(cpu_stat: &str, cpuacct_usage_ns: Option<&str>) -> CpuCounters {
    let mut c = CpuCounters::default();
    for line in cpu_stat.lines() {
        let mut it = line.split_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next().and_then(|v| v.parse::<u64>().ok())) else {
            continue;
        };
        match k {
            "nr_periods" => c.nr_periods = Some(v),
            "nr_throttled" => c.nr_throttled = Some(v),
            "throttled_time" => c.throttled_s = Some(v as f64 / 1e9),
            "throttled_usec" => c.throttled_s = Some(v as f64 / 1e6),
            "nr_bursts" => c.nr_bursts = Some(v),
            "burst_time" => c.burst_s = Some(v as f64 / 1e9),
            "burst_usec" => c.burst_s = Some(v as f64 / 1e6),
            "usage_usec" => c.usage_s = Some(v as f64 / 1e6),
            _ => {}
        }
    }
    if let Some(u) = cpuacct_usage_ns {
        c.usage_s = Some(u.trim().parse::<u64>().unwrap() as f64 / 1e9);
    }
    c
}

#[test]
fn the_list_has_every_counter_the_issue_names_in_cadvisor_style() {
    let names = exported_series();
    for n in [
        "throttlebench_cpu_cfs_periods_total",
        "throttlebench_cpu_cfs_throttled_periods_total",
        "throttlebench_cpu_cfs_throttled_seconds_total",
        "throttlebench_cpu_cfs_burst_periods_total",
        "throttlebench_cpu_cfs_burst_seconds_total",
        "throttlebench_cpu_usage_seconds_total",
        "throttlebench_cpu_pressure_waiting_seconds_total",
        "throttlebench_cpu_steal_seconds_total",
        "throttlebench_spec_cpu_quota_seconds",
        "throttlebench_spec_cpu_period_seconds",
        "throttlebench_spec_cpu_burst_seconds",
        "throttlebench_latency_seconds_bucket",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    let mut families: Vec<String> = METRICS.iter().map(|d| d.family()).collect();
    families.sort();
    families.dedup();
    assert_eq!(families.len(), METRICS.len(), "two families of one name");
}

#[test]
fn v1_ns_and_v2_us_give_the_same_names_units_and_values() {
    // The same group seen through each version's files (2.5 s throttled, 15 ms of burst,
    // 7 s of CPU).
    let v1 = counters_from(
        "nr_periods 100\nnr_throttled 40\nthrottled_time 2500000000\nnr_bursts 3\nburst_time 15000000\nwait_sum 0\n",
        Some("7000000000\n"),
    );
    let v2 = counters_from(
        "usage_usec 7000000\nuser_usec 6000000\nsystem_usec 1000000\nnr_periods 100\nnr_throttled 40\nthrottled_usec 2500000\nnr_bursts 3\nburst_usec 15000\n",
        None,
    );
    let limits = CpuLimits {
        quota_s: Some(0.02),
        period_s: Some(0.1),
        burst_s: Some(0.0),
    };
    let text_of = |c: &CpuCounters| {
        let e = Exposition::new();
        let mut g = e.add_group(labels("a"), false);
        g.set_limits(&limits);
        g.update(1.0, c);
        (e.encode_text(), e.encode_openmetrics())
    };
    let (t1, o1) = text_of(&v1);
    let (t2, o2) = text_of(&v2);
    assert_eq!(t1, t2);
    assert_eq!(o1, o2);
    let one = |name: &str| {
        let s = samples(&t1, name);
        assert_eq!(s.len(), 1, "{name} in\n{t1}");
        value(s[0])
    };
    assert_eq!(one("throttlebench_cpu_cfs_throttled_seconds_total"), 2.5);
    assert_eq!(one("throttlebench_cpu_cfs_burst_seconds_total"), 0.015);
    assert_eq!(one("throttlebench_cpu_usage_seconds_total"), 7.0);
    assert_eq!(one("throttlebench_cpu_cfs_periods_total"), 100.0);
    assert_eq!(one("throttlebench_spec_cpu_quota_seconds"), 0.02);
    assert!(
        o1.contains("# UNIT throttlebench_cpu_cfs_throttled_seconds seconds\n"),
        "{o1}"
    );
    assert!(o1.ends_with("# EOF\n"));
}

#[test]
fn a_counter_the_kernel_does_not_print_is_absent_not_zero() {
    // v2 without the cpu controller: cpu.stat has usage only; no quota ("max").
    let e = Exposition::new();
    let mut g = e.add_group(labels("no-cpu-controller"), false);
    g.set_limits(&CpuLimits {
        quota_s: None,
        period_s: Some(0.1),
        burst_s: None,
    });
    g.update(
        1.0,
        &counters_from(
            "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n",
            None,
        ),
    );
    g.update(2.0, &counters_from("usage_usec 2500000\n", None));
    let text = e.encode_text();
    assert_eq!(
        value(samples(&text, "throttlebench_cpu_usage_seconds_total")[0]),
        2.5
    );
    for absent in [
        "throttlebench_cpu_cfs_periods",
        "throttlebench_cpu_cfs_throttled",
        "throttlebench_cpu_cfs_burst",
        "throttlebench_cpu_steal",
        "throttlebench_cpu_pressure",
        "throttlebench_spec_cpu_quota",
        "throttlebench_spec_cpu_burst",
        "throttlebench_cpu_cfs_throttling_episode",
        "throttlebench_latency",
    ] {
        assert!(!text.contains(absent), "{absent} present in\n{text}");
    }
    assert!(text.contains("throttlebench_spec_cpu_period_seconds{"));
    // A second group that has the counters brings the families back, for it alone.
    let mut h = e.add_group(labels("b"), false);
    h.update(
        1.0,
        &counters_from("nr_periods 5\nnr_throttled 1\nthrottled_usec 1000\n", None),
    );
    let text = e.encode_text();
    let periods = samples(&text, "throttlebench_cpu_cfs_periods_total");
    assert_eq!(periods.len(), 1, "{text}");
    assert!(periods[0].contains("group=\"b\""));
}

#[test]
fn an_update_allocates_nothing() {
    let e = Exposition::new();
    let mut g = e.add_group(labels("a"), true);
    g.set_limits(&CpuLimits {
        quota_s: Some(0.02),
        period_s: Some(0.1),
        burst_s: None,
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
    g.update(0.0, &c);
    let before = allocations();
    for i in 1..=1000u64 {
        // A period ends every tenth tick, throttled in runs (episodes start and end).
        if i % 10 == 0 {
            c.nr_periods = c.nr_periods.map(|v| v + 1);
            if (i / 100) % 2 == 0 {
                c.nr_throttled = c.nr_throttled.map(|v| v + 1);
                c.throttled_s = c.throttled_s.map(|v| v + 0.08);
            }
        }
        c.usage_s = c.usage_s.map(|v| v + 0.002);
        g.update(i as f64 * 0.01, &c);
        g.observe_latency(0.001 * i as f64);
    }
    assert_eq!(
        allocations() - before,
        0,
        "update or observe_latency allocated"
    );
    // And the episodes did end and were counted.
    let text = e.encode_text();
    let count = samples(
        &text,
        "throttlebench_cpu_cfs_throttling_episode_seconds_count",
    );
    assert_eq!(value(count[0]), 5.0, "{text}");
}

#[test]
fn a_scrape_never_sees_half_a_tick() {
    let e = Exposition::new();
    let mut g = e.add_group(labels("a"), false);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut n = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            n += 1;
            // Every period throttled: the two counters are equal in every tick.
            let c = CpuCounters {
                nr_periods: Some(n),
                nr_throttled: Some(n),
                throttled_s: Some(n as f64),
                ..CpuCounters::default()
            };
            g.update(n as f64, &c);
        }
        n
    });
    let mut scrapes = 0;
    let start = std::time::Instant::now();
    while scrapes < 2000 || start.elapsed() < std::time::Duration::from_millis(200) {
        let text = e.encode_text();
        let p = samples(&text, "throttlebench_cpu_cfs_periods_total");
        let t = samples(&text, "throttlebench_cpu_cfs_throttled_periods_total");
        let s = samples(&text, "throttlebench_cpu_cfs_throttled_seconds_total");
        if let (Some(p), Some(t), Some(s)) = (p.first(), t.first(), s.first()) {
            assert_eq!(value(p), value(t), "a torn tick:\n{text}");
            assert_eq!(value(p), value(s), "a torn tick:\n{text}");
        }
        scrapes += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let ticks = writer.join().unwrap();
    assert!(ticks > 100, "the writer ran only {ticks} ticks");
}

/// 10 ms ticks of a group with a 100 ms period, from tick `from`: `periods` entries,
/// each a period that ends throttled or not.
fn feed(g: &mut GroupHandle, c: &mut CpuCounters, tick: &mut u64, periods: &[bool]) {
    for &thr in periods {
        for j in 1..=10 {
            *tick += 1;
            if j == 10 {
                c.nr_periods = Some(c.nr_periods.unwrap_or(0) + 1);
                if thr {
                    c.nr_throttled = Some(c.nr_throttled.unwrap_or(0) + 1);
                    c.throttled_s = Some(c.throttled_s.unwrap_or(0.0) + 0.08);
                }
            }
            g.update(*tick as f64 / 100.0, c);
        }
    }
}

#[test]
fn throttling_episodes_are_exported_as_a_histogram_and_a_gauge() {
    let e = Exposition::new();
    let mut g = e.add_group(labels("a"), false);
    g.set_limits(&CpuLimits {
        quota_s: Some(0.02),
        period_s: Some(0.1),
        burst_s: None,
    });
    let mut c = CpuCounters {
        nr_periods: Some(1000),
        nr_throttled: Some(10),
        throttled_s: Some(1.0),
        ..CpuCounters::default()
    };
    let mut tick = 0;
    g.update(0.0, &c);
    // Clear, 3 throttled periods, clear, then 12 throttled still going.
    let mut periods = vec![false, true, true, true, false];
    periods.extend([true; 12]);
    feed(&mut g, &mut c, &mut tick, &periods);
    let text = e.encode_text();
    let get = |name: &str| value(samples(&text, name)[0]);
    assert_eq!(
        get("throttlebench_cpu_cfs_throttling_episode_seconds_count"),
        1.0
    );
    assert!((get("throttlebench_cpu_cfs_throttling_episode_seconds_sum") - 0.3).abs() < 1e-9);
    let le = samples(
        &text,
        "throttlebench_cpu_cfs_throttling_episode_seconds_bucket",
    );
    let bucket = |bound: &str| {
        value(
            le.iter()
                .find(|l| l.contains(&format!("le=\"{bound}\"")))
                .unwrap_or_else(|| panic!("no le={bound} in\n{text}")),
        )
    };
    assert_eq!(bucket("0.2"), 0.0);
    assert_eq!(bucket("0.5"), 1.0);
    assert_eq!(bucket("+Inf"), 1.0);
    let ongoing = get("throttlebench_cpu_cfs_throttling_episode_ongoing_seconds");
    assert!((ongoing - 1.2).abs() < 1e-9, "{ongoing}");
}

#[test]
fn the_latency_histogram_is_there_only_for_a_group_that_has_one() {
    let e = Exposition::new();
    let mut with = e.add_group(labels("requests"), true);
    let _without = e.add_group(labels("idle"), false);
    for ms in [1.0, 3.0, 440.0, 20_000.0] {
        with.observe_latency(ms / 1000.0);
    }
    let text = e.encode_text();
    let count = samples(&text, "throttlebench_latency_seconds_count");
    assert_eq!(count.len(), 1, "{text}");
    assert_eq!(value(count[0]), 4.0);
    let inf = samples(&text, "throttlebench_latency_seconds_bucket")
        .into_iter()
        .find(|l| l.contains("le=\"+Inf\""))
        .unwrap();
    assert_eq!(value(inf), 4.0);
    let half = samples(&text, "throttlebench_latency_seconds_bucket")
        .into_iter()
        .find(|l| l.contains("le=\"0.5\""))
        .unwrap();
    assert_eq!(value(half), 3.0);
}

#[test]
fn dropping_a_handle_removes_its_group() {
    let e = Exposition::new();
    let mut a = e.add_group(labels("a"), false);
    let mut b = e.add_group(labels("b"), false);
    let c = CpuCounters {
        usage_s: Some(1.0),
        ..CpuCounters::default()
    };
    a.update(1.0, &c);
    b.update(1.0, &c);
    assert_eq!(
        samples(&e.encode_text(), "throttlebench_cpu_usage_seconds_total").len(),
        2
    );
    drop(a);
    let text = e.encode_text();
    let left = samples(&text, "throttlebench_cpu_usage_seconds_total");
    assert_eq!(left.len(), 1);
    assert!(left[0].contains("group=\"b\""));
}

#[test]
fn label_values_are_escaped() {
    let e = Exposition::new();
    let mut l = labels("a");
    l.cgroup = r#"/system.slice/serial\x2dgetty"odd".slice"#.into();
    let mut g = e.add_group(l, false);
    g.update(
        1.0,
        &CpuCounters {
            usage_s: Some(1.0),
            ..CpuCounters::default()
        },
    );
    let text = e.encode_text();
    assert!(
        text.contains(r#"cgroup="/system.slice/serial\\x2dgetty\"odd\".slice""#),
        "{text}"
    );
}

/// One HTTP request to `addr`; the status line, the Content-Type and the body.
fn get(addr: std::net::SocketAddr, request: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    let ctype = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap_or("")
        .to_string();
    (status, ctype, body.to_string())
}

#[test]
fn the_server_answers_get_metrics_in_both_formats_and_stops() {
    let e = Exposition::new();
    let mut g = e.add_group(labels("a"), false);
    g.update(
        1.0,
        &CpuCounters {
            nr_periods: Some(7),
            ..CpuCounters::default()
        },
    );
    let server = Server::start("127.0.0.1:0", e.clone()).unwrap();
    let addr = server.local_addr();
    let (status, ctype, body) = get(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(ctype, OPENMETRICS_CONTENT_TYPE);
    assert!(body.ends_with("# EOF\n"));
    assert!(body.contains("throttlebench_cpu_cfs_periods_total{"));
    let (status, ctype, body) = get(addr, "GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(ctype, TEXT_CONTENT_TYPE);
    assert_eq!(body, e.encode_text());
    assert!(get(addr, "GET /nothing HTTP/1.0\r\n\r\n").0.contains("404"));
    assert!(get(addr, "POST /metrics HTTP/1.0\r\n\r\n")
        .0
        .contains("405"));
    // A client that connects and says nothing does not keep the server from others for
    // longer than its time-out, nor from stopping.
    let _silent = TcpStream::connect(addr).unwrap();
    server.stop();
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after stop"
    );
}

#[test]
fn a_busy_address_is_an_error_that_names_it() {
    let first = Server::start("127.0.0.1:0", Exposition::new()).unwrap();
    let addr = first.local_addr().to_string();
    let err = Server::start(&addr, Exposition::new()).unwrap_err();
    assert!(err.to_string().contains(&addr), "{err}");
}
