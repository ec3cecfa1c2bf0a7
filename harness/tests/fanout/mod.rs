//! Parallel bursts (`workload.fanout`) on real cgroups: a request split over threads does
//! all of its work, needs the quota of every period it spans, and is throttled in them.
//! The bounds follow from the quota, not from timing: a request of three periods' quota
//! cannot finish inside one period, and spends at least its work in CPU time.

use crate::common::*;

/// Four requests of 60 ms of CPU, split `fanout` ways, one every 400 ms (0.15 CPU on
/// average) under 20 ms per 100 ms (0.2 CPU).
fn split_requests(dir: &TempDir, fanout: u32) -> (Row, Vec<Row>) {
    let (out, res) = run_scenario(
        dir,
        &scenario(
            "fanout",
            "kind = \"cfs\"\nquota = \"20ms\"\nperiod = \"100ms\"",
            &format!(
                "kind = \"requests\"\nwork = \"60ms\"\ncount = 4\ninterval = \"400ms\"\nfanout = {fanout}"
            ),
        ),
    );
    assert!(out.status.success(), "{}", text(&out));
    let plan = std::fs::read_to_string(res.join("run.json")).unwrap();
    assert_eq!(
        plan.contains("\"--fanout\""),
        fanout > 1,
        "fibtest's arguments in run.json"
    );
    (
        read_csv(&res.join("summary.csv")).remove(0),
        read_csv(&res.join("latency.csv")),
    )
}

type Row = std::collections::HashMap<String, String>;

#[test]
fn split_requests_do_their_work_and_each_is_throttled() {
    if !real_cgroups_or_skip("split_requests") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("fanout");
    let one = split_requests(&dir, 1);
    let dir = TempDir::new("fanout4");
    let four = split_requests(&dir, 4);
    // The same work, split or not: the same CPU time within a fifth.
    let (a, b) = (num(&one.0, "cpu_usage_s"), num(&four.0, "cpu_usage_s"));
    assert!((a - b).abs() < 0.2 * a.max(b), "cpu_usage_s {a} and {b}");
    for (name, (row, requests)) in [("fanout 1", &one), ("fanout 4", &four)] {
        assert_eq!(num(row, "requests"), 4.0, "{name}: {row:?}");
        // Each part spins until its thread's CPU clock has advanced by its share: the
        // cgroup used at least the work, and not much more (clock reads, start-up).
        let used = num(row, "cpu_usage_s");
        assert!((0.24..0.36).contains(&used), "{name}: cpu_usage_s {used}");
        // 60 ms of CPU at 20 ms per period spans a whole period at least, whose quota
        // it exhausts: throttled in every request, and no request done within 100 ms.
        let throttled = num(row, "nr_throttled");
        assert!(throttled >= 4.0, "{name}: nr_throttled {throttled}");
        assert_eq!(requests.len(), 4, "{name}: latency.csv");
        for r in requests {
            let latency = num(r, "latency_s");
            assert!(latency >= 0.1, "{name}: a request took {latency} s");
        }
    }
}
