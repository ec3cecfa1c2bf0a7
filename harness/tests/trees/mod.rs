//! Limits as production sets them, on real cgroups: a pod's quota holds its containers,
//! the units users write (Docker `--cpus`, Kubernetes millicores and requests, systemd
//! `CPUQuota=`) give the shares they promise, and a `[[change]]` takes effect mid-run and
//! is recorded.

use crate::common::*;
use std::collections::HashMap;

type Row = HashMap<String, String>;

fn run_rows(dir: &TempDir, text: &str) -> (std::process::Output, std::path::PathBuf, Vec<Row>) {
    let (out, out_dir) = run_scenario(dir, text);
    let rows = if out_dir.join("summary.csv").exists() {
        read_csv(&out_dir.join("summary.csv"))
    } else {
        Vec::new()
    };
    (out, out_dir, rows)
}

fn group<'a>(rows: &'a [Row], name: &str) -> &'a Row {
    rows.iter()
        .find(|r| r["group"] == name)
        .unwrap_or_else(|| panic!("no summary row for group {name}: {rows:?}"))
}

/// A busy loop for `secs` seconds pinned to `cpu`.
fn spin(secs: u32, cpu: u32) -> String {
    format!(
        "{{ kind = \"duty\", on = \"{secs}s\", off = \"0ms\", duration = \"{secs}s\", cpus = \"{cpu}\" }}"
    )
}

#[test]
fn a_pods_quota_holds_its_containers_below_the_sum_of_theirs() {
    if !real_cgroups_or_skip("pod_quota") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("pod");
    // Two containers of 0.4 CPUs each, busy on their own CPUs, under a pod of 0.5.
    let s = format!(
        "name = \"pod\"\nsample_interval = \"10ms\"\n[limiter]\nkind = \"none\"\n\
         [[group]]\nname = \"pod\"\nlimit = {{ cpus = 0.5 }}\n\
         [[group]]\nname = \"a\"\nparent = \"pod\"\nlimit = {{ millicores = 400 }}\nworkload = {}\n\
         [[group]]\nname = \"b\"\nparent = \"pod\"\nlimit = {{ millicores = 400 }}\nworkload = {}\n",
        spin(3, 0),
        spin(3, 1)
    );
    let (out, _, rows) = run_rows(&dir, &s);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(rows.len(), 3, "a row per group, the pod included: {rows:?}");
    let pod = num(group(&rows, "pod"), "cpu_share");
    let (a, b) = (
        num(group(&rows, "a"), "cpu_share"),
        num(group(&rows, "b"), "cpu_share"),
    );
    assert!((0.45..=0.55).contains(&pod), "pod share {pod}");
    // The pod's usage is its containers' usage (cgroup accounting is hierarchical).
    assert!((a + b - pod).abs() <= 0.03, "a {a} + b {b} vs pod {pod}");
    // Each container is held below its own 0.4 by the pod, and the pod throttles.
    assert!(a < 0.36 && b < 0.36, "a {a} b {b}");
    assert!(num(group(&rows, "pod"), "nr_throttled") >= 10.0, "{rows:?}");
    assert_eq!(num(group(&rows, "pod"), "quota_s"), 0.05);
    assert_eq!(num(group(&rows, "a"), "quota_s"), 0.04);
}

#[test]
fn docker_kubernetes_and_systemd_units_give_the_share_they_promise() {
    if !real_cgroups_or_skip("units") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("units");
    // 0.3 CPUs written three ways, each group alone on a cgroup of its own.
    let s = format!(
        "name = \"units\"\nsample_interval = \"10ms\"\n[limiter]\nkind = \"none\"\n\
         [[group]]\nname = \"docker\"\nlimit = {{ cpus = 0.3 }}\nworkload = {}\n\
         [[group]]\nname = \"kubernetes\"\nlimit = {{ millicores = \"300m\" }}\nworkload = {}\n\
         [[group]]\nname = \"systemd\"\nlimit = {{ cpu_quota_pct = 30 }}\nworkload = {}\n",
        spin(3, 0),
        spin(3, 1),
        spin(3, 0)
    );
    let (out, _, rows) = run_rows(&dir, &s);
    assert!(out.status.success(), "{}", text(&out));
    for (name, period) in [("docker", 0.1), ("kubernetes", 0.1), ("systemd", 0.1)] {
        let r = group(&rows, name);
        // The conversion is exact: 30 ms of every 100 ms.
        assert_eq!(num(r, "quota_s"), 0.03, "{name}: {r:?}");
        assert_eq!(num(r, "period_s"), period, "{name}: {r:?}");
        let share = num(r, "cpu_share");
        assert!((0.25..=0.35).contains(&share), "{name}: cpu_share {share}");
    }
}

#[test]
fn kubernetes_requests_share_a_cpu_as_kubelet_converts_them() {
    if !real_cgroups_or_skip("requests") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("request");
    // Both busy on CPU 0: 750m and 250m become shares 768 and 256, so 3:1.
    let s = format!(
        "name = \"request\"\nsample_interval = \"10ms\"\n[limiter]\nkind = \"none\"\n\
         [[group]]\nname = \"big\"\nlimit = {{ request = \"750m\" }}\nworkload = {}\n\
         [[group]]\nname = \"small\"\nlimit = {{ request = \"250m\" }}\nworkload = {}\n",
        spin(3, 0),
        spin(3, 0)
    );
    let (out, _, rows) = run_rows(&dir, &s);
    assert!(out.status.success(), "{}", text(&out));
    let big = num(group(&rows, "big"), "cpu_share");
    let small = num(group(&rows, "small"), "cpu_share");
    assert!(
        big + small > 0.9,
        "the two should fill CPU 0: {big} + {small}"
    );
    let pct = num(group(&rows, "big"), "group_share_pct");
    assert!(
        (70.0..=80.0).contains(&pct),
        "big has {pct}% of the groups' CPU, 75 expected"
    );
}

#[test]
fn a_change_mid_run_takes_effect_within_a_tick_and_is_recorded() {
    if !real_cgroups_or_skip("change") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("change");
    let s = format!(
        "name = \"change\"\nsample_interval = \"10ms\"\n[limiter]\nkind = \"none\"\n\
         [[group]]\nname = \"app\"\nlimit = {{ cpus = 0.8 }}\nworkload = {}\n\
         [[change]]\nat = \"2s\"\ngroup = \"app\"\nlimit = {{ cpus = 0.2 }}\n",
        spin(4, 0)
    );
    let (out, out_dir, _) = run_rows(&dir, &s);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    let change = &json["runs"][0]["result"]["changes"][0];
    assert_eq!(change["group"], "app", "{change}");
    assert_eq!(change["limit"]["cfs"]["quota_us"], 20000, "{change}");
    assert!(change["error"].is_null(), "{change}");
    let applied = change["applied_s"].as_f64().unwrap();
    assert!((2.0..2.25).contains(&applied), "applied at {applied} s");
    // The time series carries the limit, and the usage follows it.
    let ts = read_csv(&out_dir.join("timeseries.csv"));
    let share_between = |from: f64, to: f64| {
        let (mut used, mut dt) = (0.0, 0.0);
        for r in ts.iter().filter(|r| r["group"] == "app") {
            let t = num(r, "t_s");
            if t > from && t <= to {
                used += num(r, "usage_s");
                dt += num(r, "dt_s");
            }
        }
        used / dt
    };
    for r in ts.iter().filter(|r| r["group"] == "app") {
        let t = num(r, "t_s");
        let limit = num(r, "limit_cpus");
        if t < 2.0 {
            assert_eq!(limit, 0.8, "at {t} s");
        } else if t > applied {
            assert_eq!(limit, 0.2, "at {t} s");
        }
    }
    let before = share_between(0.5, 2.0);
    let after = share_between(applied + 0.3, 4.0);
    assert!(
        (0.72..=0.88).contains(&before),
        "before the change: {before}"
    );
    assert!((0.15..=0.25).contains(&after), "after the change: {after}");
    // phases.csv: the group before and after, and how soon the new quota bit.
    let phases = read_csv(&out_dir.join("phases.csv"));
    assert_eq!(phases.len(), 2, "{phases:?}");
    assert_eq!(num(&phases[0], "limit_cpus"), 0.8);
    assert_eq!(num(&phases[1], "limit_cpus"), 0.2);
    assert!(
        phases[1]["change"].starts_with("app: quota 20000 µs"),
        "{phases:?}"
    );
    let bit = num(&phases[1], "first_throttled_period");
    assert!(
        bit <= 2.0,
        "first throttled in period {bit} after the change"
    );
    let share = num(&phases[1], "cpu_share");
    assert!((0.15..=0.27).contains(&share), "phase 1: {share}");
}

#[test]
fn cgroup_v1_refuses_a_change_that_puts_a_parent_below_a_child_and_says_so_before_running() {
    if !real_cgroups_or_skip("v1_refusal") {
        return;
    }
    if !std::path::Path::new("/sys/fs/cgroup/cpu,cpuacct").exists()
        && !std::path::Path::new("/sys/fs/cgroup/cpu").exists()
    {
        eprintln!("skipping v1_refusal: not a cgroup v1 host");
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("refuse");
    let s = format!(
        "name = \"refuse\"\n[limiter]\nkind = \"none\"\n\
         [[group]]\nname = \"pod\"\nlimit = {{ cpus = 1 }}\n\
         [[group]]\nname = \"c\"\nparent = \"pod\"\nlimit = {{ cpus = 0.5 }}\nworkload = {}\n\
         [[change]]\nat = \"1s\"\ngroup = \"pod\"\nlimit = {{ cpus = 0.25 }}\n",
        spin(2, 0)
    );
    let (out, _, _) = run_rows(&dir, &s);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pod") && err.contains("c"), "{err}");
    assert!(!dir.path().join("out/summary.csv").exists(), "it never ran");
}
