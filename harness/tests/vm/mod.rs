//! cgroup v2 for real, in a guest kernel booted by `throttlebench vm` (virtme-ng, software
//! emulation). Runs when THROTTLEBENCH_VM_KERNEL names a kernel image and `vng` is on the
//! PATH (docs/kernels.md says how to get both); skipped, with a message, otherwise. One boot
//! per scenario file (about 30 s each here).

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

fn vng_found() -> bool {
    std::process::Command::new("vng")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn kernel_or_skip(test: &str) -> Option<PathBuf> {
    let k = std::env::var_os("THROTTLEBENCH_VM_KERNEL").map(PathBuf::from);
    let vng = vng_found();
    match k {
        Some(k) if vng && k.is_file() => Some(k),
        _ => {
            let why = format!(
                "{test}: set THROTTLEBENCH_VM_KERNEL to a kernel image and put vng on the PATH (vng found: {vng}); .ci/setup-vm does both"
            );
            // CI sets both up (.ci/run): there a missing guest is a failure, not a skip.
            if crate::common::ci() {
                panic!("{why}");
            }
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// `throttlebench vm --kernel K -- run SCENARIO --out DIR --no-plot`, from the project root.
fn in_guest(kernel: &Path, scenario: &str, dir: &TempDir) -> (Output, PathBuf) {
    let out_dir = dir.path().join("out");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = tb()
        .current_dir(root)
        .args([
            "vm",
            "--kernel",
            kernel.to_str().unwrap(),
            "--timeout",
            "10m",
            "--",
        ])
        .args([
            "run",
            scenario,
            "--no-plot",
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    (out, out_dir)
}

fn host(out_dir: &Path) -> serde_json::Value {
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    j["host"].clone()
}

#[test]
fn quota_and_freezer_on_cgroup_v2_in_a_guest() {
    let Some(k) = kernel_or_skip("quota and freezer in a guest") else {
        return;
    };
    let _x = exclusive();
    let dir = TempDir::new("vm-limiters");
    let (out, out_dir) = in_guest(&k, "scenarios/guest/v2-limiters.toml", &dir);
    assert!(out.status.success(), "{}", text(&out));
    let h = host(&out_dir);
    assert_eq!(h["cgroup_version"], "v2", "{h}");
    assert_eq!(h["vm"], "virtme-ng, emulated (TCG)");
    assert!(
        h["kernel_version"].as_str().unwrap_or("").contains('#'),
        "{h}"
    );
    let rows = read_csv(&out_dir.join("summary.csv"));
    assert_eq!(rows.len(), 2);
    let (cfs, freezer) = (&rows[0], &rows[1]);
    // cpu.max 20 ms per 100 ms: accounting is real in an emulated guest.
    let share = num(cfs, "cpu_share");
    assert!((0.17..=0.23).contains(&share), "cfs share {share}");
    assert!(
        num(cfs, "nr_throttled") >= 0.8 * num(cfs, "nr_periods"),
        "{cfs:?}"
    );
    assert!(num(cfs, "throttled_s") > 0.0);
    // cgroup.freeze duty cycle at 30%.
    let share = num(freezer, "cpu_share");
    assert!((0.25..=0.35).contains(&share), "freezer share {share}");
    for r in &rows {
        assert_eq!(num(r, "leaked_cgroups"), 0.0, "{r:?}");
        assert_eq!(num(r, "leaked_stopped"), 0.0, "{r:?}");
    }
}

#[test]
fn burst_accounting_on_cgroup_v2_in_a_guest() {
    let Some(k) = kernel_or_skip("burst in a guest") else {
        return;
    };
    let _x = exclusive();
    let dir = TempDir::new("vm-burst");
    let (out, out_dir) = in_guest(&k, "scenarios/guest/v2-burst.toml", &dir);
    assert!(out.status.success(), "{}", text(&out));
    let rows = read_csv(&out_dir.join("summary.csv"));
    let (none, burst) = (&rows[0], &rows[1]);
    assert_eq!(num(none, "burst_s"), 0.0);
    assert_eq!(num(none, "nr_bursts"), 0.0);
    // With 20 ms of burst the bursty job spends saved quota: cpu.stat counts it.
    assert!(num(burst, "nr_bursts") > 0.0, "{burst:?}");
    assert!(num(burst, "burst_time_s") > 0.0, "{burst:?}");
    assert!(
        num(burst, "cpu_share") > num(none, "cpu_share"),
        "burst {burst:?} none {none:?}"
    );
    assert!(num(burst, "nr_throttled") < num(none, "nr_throttled"));
}

#[test]
fn weights_on_cgroup_v2_in_a_guest() {
    let Some(k) = kernel_or_skip("weights in a guest") else {
        return;
    };
    let _x = exclusive();
    let dir = TempDir::new("vm-weights");
    let (out, out_dir) = in_guest(&k, "scenarios/guest/v2-weights.toml", &dir);
    assert!(out.status.success(), "{}", text(&out));
    let rows = read_csv(&out_dir.join("summary.csv"));
    let pct = |g: &str| {
        num(
            rows.iter().find(|r| r["group"] == g).expect("group row"),
            "group_share_pct",
        )
    };
    // cpu.weight 150/100/100/50 under full contention: 37.5/25/25/12.5% within 3 points,
    // counted while all four ran (an emulated guest starts them far apart).
    for (g, want) in [
        ("a150", 37.5),
        ("b100", 25.0),
        ("c100", 25.0),
        ("d50", 12.5),
    ] {
        let got = pct(g);
        assert!(
            (got - want).abs() <= 3.0,
            "group {g}: {got:.1}% for {want}%"
        );
    }
}

#[test]
fn a_kernel_that_does_not_boot_is_125() {
    // A kernel image that is not there (its build failed) is 125, without a boot.
    let out = tb()
        .args(["vm", "--kernel", "/nonexistent/bzImage", "--"])
        .args(["check", "x.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/bzImage"));
    if !vng_found() {
        assert!(
            !crate::common::ci(),
            "CI must install virtme-ng (.ci/setup-vm)"
        );
        eprintln!("skipped: a kernel that does not boot: vng is not on the PATH");
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("vm-noboot");
    let junk = dir.file("vmlinuz-junk", &"not a kernel\n".repeat(1000));
    let out = tb()
        .args([
            "vm",
            "--kernel",
            junk.to_str().unwrap(),
            "--timeout",
            "45s",
            "--",
        ])
        .args(["check", "scenarios/guest/v2-limiters.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    // The boot log is kept for a boot that failed, and named: this one was on purpose.
    let err = String::from_utf8_lossy(&out.stderr);
    let log = err
        .split_whitespace()
        .find(|w| w.contains("tb-vm-boot-") && w.ends_with(".log"))
        .map(PathBuf::from)
        .expect("the boot log is named");
    assert!(log.exists(), "{}", log.display());
    std::fs::remove_file(log).unwrap();
}

#[test]
fn watch_reads_a_v2_cgroup_made_outside_the_tool_in_a_guest() {
    let Some(k) = kernel_or_skip("watch on cgroup v2 in a guest") else {
        return;
    };
    let _x = exclusive();
    let dir = TempDir::new("vm-watch");
    let out = dir.path().join("out");
    // In the guest, as a user would: a cgroup with cpu.max 20 ms / 100 ms, a duty workload
    // moved into it, and a watch of the folder and of the process (the same cgroup).
    let tb = env!("CARGO_BIN_EXE_throttlebench");
    let script = format!(
        r#"cg=/sys/fs/cgroup/tb-watch-guest
echo +cpu > /sys/fs/cgroup/cgroup.subtree_control
mkdir "$cg" && echo "20000 100000" > "$cg/cpu.max" || exit 97
'{tb}' fibtest duty --on 500ms --off 500ms --duration 300s >/dev/null 2>&1 &
pid=$!
echo $pid > "$cg/cgroup.procs" || exit 98
'{tb}' watch "$cg" pid:$pid --duration 8s --interval 20ms --out "$1" --no-plot
rc=$?
kill $pid; wait $pid 2>/dev/null
rmdir "$cg"
exit $rc"#
    );
    let cfg = throttlebench::vm::VmConfig {
        kernel: k,
        cpus: 2,
        memory: "1G".into(),
        kvm: false,
        vng: "vng".into(),
        timeout: std::time::Duration::from_secs(600),
    };
    // `--out DIR` after the script: vm::run makes the folder it names writable in the
    // guest; sh takes the two as $0 and $1.
    let args: Vec<std::ffi::OsString> = vec![
        "-c".into(),
        script.into(),
        "--out".into(),
        out.clone().into(),
    ];
    let log = dir.path().join("boot.log");
    let r = throttlebench::vm::run(
        &cfg,
        Path::new("/bin/sh"),
        &args,
        &mut throttlebench::vm::RealLauncher { log: log.clone() },
    )
    .unwrap();
    assert_eq!(
        r.code,
        0,
        "{:?}\n--- stdout\n{}\n--- stderr\n{}\n--- boot log tail\n{}",
        r.problem,
        r.stdout,
        r.stderr,
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(j["host"]["cgroup_version"], "v2", "{}", j["host"]);
    assert_eq!(j["groups"].as_array().unwrap().len(), 1, "{}", j["groups"]);
    assert_eq!(j["groups"][0]["version"], "v2");
    assert_eq!(j["groups"][0]["usage"], serde_json::Value::Null);
    assert_eq!(j["groups"][0]["limits"]["quota_s"], 0.02);
    let rows = read_csv(&out.join("summary.csv"));
    assert_eq!(rows.len(), 1);
    let s = &rows[0];
    assert_eq!(s["group"], "tb-watch-guest");
    // Accounting is real in an emulated guest: under 20 ms / 100 ms, half the time on.
    let share = num(s, "cpu_share");
    assert!((0.03..=0.23).contains(&share), "cpu share {share}");
    assert!(num(s, "nr_periods") >= 20.0, "{s:?}");
    assert!(num(s, "throttled_pct") > 30.0, "{s:?}");
    assert!(num(s, "throttled_s") > 0.0, "{s:?}");
    let eps = read_csv(&out.join("episodes.csv"));
    assert!(!eps.is_empty(), "no episode");
    // cpu.max read as the quota in CPUs on every row.
    let ts = read_csv(&out.join("timeseries.csv"));
    assert!(
        ts.iter().all(|r| num(r, "limit_cpus") == 0.2),
        "{:?}",
        ts.first()
    );
}

#[test]
fn a_tree_and_a_change_on_cgroup_v2_in_a_guest() {
    let Some(k) = kernel_or_skip("a tree in a guest") else {
        return;
    };
    let _x = exclusive();
    let dir = TempDir::new("vm-tree");
    let (out, out_dir) = in_guest(&k, "scenarios/guest/v2-tree.toml", &dir);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(host(&out_dir)["cgroup_version"], "v2", "{}", text(&out));
    let phases = read_csv(&out_dir.join("phases.csv"));
    let share = |group: &str, phase: &str| {
        let r = phases
            .iter()
            .find(|r| r["group"] == group && r["phase"] == phase)
            .unwrap_or_else(|| panic!("no phase {phase} of {group}: {phases:?}"));
        num(r, "cpu_share")
    };
    // The pod holds its two busy containers to its quota, before and after the change.
    let (before, after) = (share("pod", "0"), share("pod", "1"));
    assert!((0.4..=0.6).contains(&before), "pod before: {before}");
    assert!((0.18..=0.32).contains(&after), "pod after: {after}");
    let children = share("app", "1") + share("sidecar", "1");
    assert!((children - after).abs() < 0.05, "{children} vs {after}");
}
