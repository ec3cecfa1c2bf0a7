//! CPU-time budgets on real cgroups and processes, each judged by the run cgroup's own
//! counter (`cgroup_cpu_s`, `overshoot_s`, timeseries.csv), which the limiters under test
//! do not read: the budget limiter of "Practical resource limiting" [Practical Limiting]
//! ends a hog within one interval and one tick of its budget; tree tracking misses a
//! double-forked daemon that cgroup tracking catches; RLIMIT_CPU lets four children use
//! four times the limit; the stop-first kill leaves no SIGPIPE deaths where the naive
//! order does; a rolling window throttles after its budget and lets go as it slides
//! (ApisCP's cumulative limit [ApisCP]); the name race of "EC2 Micro Instance
//! Throttling" [EC2 Micro] is caught in every run by name and never by group or tree.
//! After each, nothing is left stopped, and the run's cgroup (with every process in it)
//! is gone (the leftovers check of `exclusive`).

use crate::common::*;
use std::collections::HashMap;

type Row = HashMap<String, String>;

/// Run a scenario; its output, summary rows and result folder.
fn run(dir: &TempDir, text: &str) -> (std::process::Output, Vec<Row>, std::path::PathBuf) {
    let (out, out_dir) = run_scenario(dir, text);
    let rows = if out_dir.join("summary.csv").exists() {
        read_csv(&out_dir.join("summary.csv"))
    } else {
        Vec::new()
    };
    (out, rows, out_dir)
}

/// This build's workload generator, for commands: `tb fibtest ...`.
fn fib(args: &str) -> String {
    format!("{} fibtest {args}", env!("CARGO_BIN_EXE_throttlebench"))
}

/// A thread spinning for `s` seconds of wall time.
fn spin(s: u32) -> String {
    fib(&format!(
        "duty --on {s}s --off 0ms --duration {s}s --threads 1 > /dev/null"
    ))
}

/// A request needing `ms` of CPU time, then exit.
fn cpu_ms(ms: u32) -> String {
    fib(&format!(
        "requests --work {ms}ms --count 1 --interval 0ms > /dev/null"
    ))
}

fn command(cmd: &str, duration: &str) -> String {
    format!(
        "kind = \"command\"\nduration = \"{duration}\"\ncommand = \"{}\"",
        cmd.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

/// /proc's clock tick (USER_HZ = 100): the resolution of tree and group tracking.
const TICK_S: f64 = 0.01;

#[test]
fn a_budget_ends_a_hog_within_one_interval_and_one_tick_of_its_budget() {
    if !real_cgroups_or_skip("budget overshoot") {
        return;
    }
    let _x = exclusive();
    for track in ["tree", "group", "cgroup"] {
        let dir = TempDir::new("budget-hog");
        let lim =
            format!("kind = \"budget\"\ncpu = \"1s\"\ntrack = \"{track}\"\ninterval = \"100ms\"");
        let w = "kind = \"duty\"\non = \"10s\"\noff = \"0ms\"\nduration = \"10s\"";
        let (out, rows, _) = run(&dir, &scenario("hog", &lim, w));
        assert!(out.status.success(), "{}", text(&out));
        let r = &rows[0];
        assert_eq!(r["outcome"], "budget", "{track}: {r:?}");
        // The truth: the cgroup's count, from its creation to the end.
        let overshoot = num(r, "overshoot_s");
        assert!(
            (0.0..=0.1 + TICK_S).contains(&overshoot),
            "{track}: overshoot {overshoot} s past a 1 s budget read every 100 ms"
        );
        assert!((num(r, "cgroup_cpu_s") - 1.0 - overshoot).abs() < 1e-9);
        let delay = num(r, "detection_delay_s");
        assert!(
            (0.0..=0.1 + TICK_S).contains(&delay),
            "{track}: detected {delay} s late"
        );
        // Ended (fibtest exits on its SIGTERM): nothing outlived it.
        assert_eq!(num(r, "leaked_escaped"), 0.0, "{track}: {r:?}");
    }
    assert_no_stopped_processes();
}

#[test]
fn tree_tracking_misses_a_double_forked_daemon_that_cgroup_tracking_catches() {
    if !real_cgroups_or_skip("budget daemon") {
        return;
    }
    let _x = exclusive();
    // A daemon (setsid, its first parent gone, so adopted outside the tree) beside a hog.
    let w = command(&format!("(setsid {} &); exec {}", spin(8), spin(8)), "8s");
    let mut by = HashMap::new();
    for track in ["tree", "cgroup"] {
        let dir = TempDir::new("budget-daemon");
        let lim = format!("kind = \"budget\"\ncpu = \"1s\"\ntrack = \"{track}\"");
        let (out, rows, _) = run(&dir, &scenario("daemon", &lim, &w));
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(rows[0]["outcome"], "budget", "{track}: {:?}", rows[0]);
        by.insert(track, rows[0].clone());
    }
    let (tree, cg) = (&by["tree"], &by["cgroup"]);
    // The tree counted its hog's second while the daemon used about as much unseen,
    // and the daemon outlived the tree's end.
    assert!(num(tree, "overshoot_s") > 0.5, "tree: {tree:?}");
    assert!(num(tree, "detection_delay_s") > 0.25, "tree: {tree:?}");
    assert_eq!(num(tree, "leaked_escaped"), 1.0, "tree: {tree:?}");
    // The cgroup's count has both: two CPUs for one interval at most past the budget.
    let o = num(cg, "overshoot_s");
    assert!(
        (0.0..=2.0 * 0.1 + TICK_S).contains(&o),
        "cgroup: overshoot {o}"
    );
    assert_eq!(num(cg, "leaked_escaped"), 0.0, "cgroup: {cg:?}");
    assert_no_stopped_processes();
}

#[test]
fn rlimit_cpu_lets_a_tree_of_four_children_use_four_times_the_limit() {
    if !real_cgroups_or_skip("rlimit") {
        return;
    }
    let _x = exclusive();
    let lim = "kind = \"command\"\ncpu = \"1s\"\ncommand = \"ulimit -t {cpu}; sh -c {workload}; echo ulimit: exit $? >&2\"";
    // One process past the limit is ended at it: the limit is in force.
    let dir = TempDir::new("rlimit-one");
    let (out, rows, _) = run(
        &dir,
        &scenario("rlimit", lim, &command(&cpu_ms(3000), "20s")),
    );
    assert!(out.status.success(), "{}", text(&out));
    let used = num(&rows[0], "cgroup_cpu_s");
    assert!(
        (0.9..=1.2).contains(&used),
        "one process used {used} s under a 1 s RLIMIT_CPU"
    );
    assert_eq!(num(&rows[0], "signal_deaths"), 1.0, "{:?}", rows[0]);
    // Four children of 0.85 s each: every one under the limit (with room for the ticks'
    // count running ahead), so none is ended.
    let four = format!("for i in 1 2 3 4; do {} & done; wait", cpu_ms(850));
    let dir = TempDir::new("rlimit-four");
    let (out, rows, _) = run(&dir, &scenario("rlimit", lim, &command(&four, "20s")));
    assert!(out.status.success(), "{}", text(&out));
    let r = &rows[0];
    let used = num(r, "cgroup_cpu_s");
    assert!(
        (3.2..=4.2).contains(&used),
        "four children used {used} s under a 1 s RLIMIT_CPU (about 3.4 expected)"
    );
    assert_eq!(num(r, "signal_deaths"), 0.0, "{r:?}");
    assert!(num(r, "overshoot_s") > 2.2, "{r:?}");
    assert_no_stopped_processes();
}

#[test]
fn the_stop_first_kill_leaves_no_sigpipe_deaths_where_one_by_one_does() {
    if !real_cgroups_or_skip("sigpipe") {
        return;
    }
    let _x = exclusive();
    let w = command("yes | sed s/y/n/ | sort -m > /dev/null", "10s");
    let deaths = |kill: &str| {
        let dir = TempDir::new("budget-pipe");
        let lim =
            format!("kind = \"budget\"\ncpu = \"500ms\"\ntrack = \"cgroup\"\nkill = \"{kill}\"");
        let (out, rows, _) = run(&dir, &scenario("pipe", &lim, &w));
        assert!(out.status.success(), "{}", text(&out));
        let r = &rows[0];
        assert_eq!(r["outcome"], "budget", "{r:?}");
        (num(r, "sigpipe_deaths"), num(r, "signal_deaths"))
    };
    for _ in 0..3 {
        let (pipe, all) = deaths("stop-first");
        assert_eq!(pipe, 0.0, "a SIGPIPE death in the stop-first kill");
        // The shell and its three: each ended by the limiter's SIGTERM.
        assert_eq!(all, 4.0);
    }
    // The same pipeline ended one process at a time, reader first: its writers die of
    // SIGPIPE before their turn (so the count above could have seen them).
    let (a, _) = deaths("each");
    let (b, _) = deaths("each");
    assert!(a + b >= 1.0, "no SIGPIPE death in two one-by-one kills");
    assert_no_stopped_processes();
    assert!(processes_named("yes").is_empty());
}

/// (t_s, usage_s) of every timeseries.csv row of run 0.
fn usage_series(out: &std::path::Path) -> Vec<(f64, f64)> {
    read_csv(&out.join("timeseries.csv"))
        .iter()
        .filter(|r| r["run"] == "0")
        .map(|r| (num(r, "t_s"), num(r, "usage_s")))
        .collect()
}

/// The share of a CPU used from `a` to `b` s, by the cgroup's count.
fn share(s: &[(f64, f64)], a: f64, b: f64) -> f64 {
    let used: f64 = s
        .iter()
        .filter(|(t, _)| *t > a && *t <= b)
        .map(|x| x.1)
        .sum();
    used / (b - a)
}

#[test]
fn a_window_throttles_after_its_budget_and_lets_go_as_the_window_slides() {
    if !real_cgroups_or_skip("window") {
        return;
    }
    let _x = exclusive();
    let dir = TempDir::new("window");
    // Half a second of CPU in any 3 s, then 0.05 CPU: a spinning thread uses its half
    // second at once (as soon as the machine's other load lets it: a sixth of a CPU is
    // enough to reach it within the window).
    let lim =
        "kind = \"window\"\ncpu = \"500ms\"\nwindow = \"3s\"\ninterval = \"100ms\"\nfloor = 0.05";
    let w = "kind = \"duty\"\non = \"7s\"\noff = \"0ms\"\nduration = \"7s\"\ncpus = \"0\"";
    let (out, rows, folder) = run(&dir, &scenario("window", lim, w));
    assert!(out.status.success(), "{}", text(&out));
    let r = &rows[0];
    assert!(
        num(r, "nr_throttled") > 0.0,
        "the floor's quota never bit: {r:?}"
    );
    let s = usage_series(&folder);
    let ws = read_csv(&folder.join("window.csv"));
    assert!(ws.len() > 50, "{}", ws.len());
    let limited = |w: &Row| w["limited"] == "1";
    // Throttled once the cgroup had used its half second (the machine's other load
    // decides how soon), within an interval's use of it (a 10 ms sample may lag).
    let t_limit = num(
        ws.iter().find(|w| limited(w)).expect("never throttled"),
        "t_s",
    );
    let used: f64 = s.iter().filter(|(t, _)| *t <= t_limit).map(|x| x.1).sum();
    assert!(
        (0.5 - 0.02..=0.5 + 0.1 + 0.05).contains(&used),
        "throttled after {used} s of CPU (budget 0.5 s)"
    );
    // Let go once that second slides out of the window: no sooner than 3 s from the
    // start, no later than 3 s after the budget was reached (and a little slack).
    let t_free = num(
        ws.iter()
            .find(|w| num(w, "t_s") > t_limit && !limited(w))
            .expect("never let go"),
        "t_s",
    );
    assert!(
        (3.0..=t_limit + 3.0 + 0.5).contains(&t_free),
        "let go at {t_free} s, throttled at {t_limit} s"
    );
    // The time series carries the floor's quota while the window holds it there, and no
    // quota before (within a few 10 ms ticks of the limiter's readings).
    let ts = read_csv(&folder.join("timeseries.csv"));
    for row in ts.iter().filter(|r| r["run"] == "0") {
        let t = num(row, "t_s");
        if t < t_limit - 0.05 {
            assert_eq!(
                row["limit_cpus"], "",
                "a quota at {t} s, before the window filled"
            );
        } else if t > t_limit + 0.05 && t < t_free - 0.05 {
            assert_eq!(num(row, "limit_cpus"), 0.05, "at {t} s, held to the floor");
        }
    }
    // Held near the floor in between, and running freely again once let go.
    let held = share(&s, t_limit + 0.2, t_free - 0.1);
    assert!(held <= 0.05 + 0.05, "{held} CPU while throttled to 0.05");
    let free = share(&s, t_free, t_free + 0.3);
    assert!(
        free > 3.0 * held && free > 0.3,
        "{free} CPU after being let go"
    );
    assert!(num(r, "window_limited_s") > 1.5, "{r:?}");
    // No 3 s of the run held more than the budget, an interval's use, the floor's own
    // use over a window (it counts too) and a bucket's worth of slack.
    let limit = 0.5 + 0.1 + 0.05 * 3.0 + 0.1;
    for (i, (t, _)) in s.iter().enumerate() {
        let used: f64 = s[i..]
            .iter()
            .take_while(|(u, _)| *u <= t + 3.0)
            .map(|x| x.1)
            .sum();
        assert!(used <= limit, "{used} s of CPU in the 3 s from {t} s");
    }
    let most = ws
        .iter()
        .map(|w| num(w, "window_used_s"))
        .fold(0.0, f64::max);
    assert!((0.5..=limit).contains(&most), "{most}");
    assert_no_stopped_processes();
}

#[test]
fn the_name_race_is_caught_in_every_run_and_group_and_tree_leave_nothing_stopped() {
    if !real_cgroups_or_skip("name race until stuck") {
        return;
    }
    let _x = exclusive();
    let race = |by: &str, repeats: u32, duration: &str| {
        let dir = TempDir::new("race");
        let toml = format!(
            "name = \"race\"\nsample_interval = \"50ms\"\nrepeats = {repeats}\n[limiter]\nkind = \"signal\"\nby = \"{by}\"\non = \"1ms\"\noff = \"1ms\"\nuntil_stuck = true\n[workload]\n{}\n",
            command(
                "for i in 1 2 3 4; do while :; do echo x | sed -e s/x/y/ >/dev/null; done & done; wait",
                duration
            )
        );
        let (out, rows, _) = run(&dir, &toml);
        assert!(out.status.success(), "{}", text(&out));
        rows
    };
    // By name: every run ends at its first child left stopped, long before its bound.
    let rows = race("name", 5, "5s");
    let mut cycles = 0.0;
    for r in &rows {
        assert_eq!(r["outcome"], "stuck", "{r:?}");
        assert!(num(r, "leaked_stopped") >= 1.0, "{r:?}");
        let (c, after) = (num(r, "stop_cycles"), num(r, "stuck_after_s"));
        assert!(c >= 1.0 && after < 5.0, "{r:?}");
        assert_eq!(num(r, "stuck_per_cycle"), 1.0 / c);
        cycles += c;
    }
    // The race's chance per cycle here, and the cycles in which a limiter that leaks
    // as often would have leaked with 95% chance: (1 - p)^n <= 0.05 for n >= 3 / p.
    let p = rows.len() as f64 / cycles;
    let enough = 3.0 / p;
    // By group and by tree: none in at least as many cycles.
    for by in ["group", "tree"] {
        let r = &race(by, 1, "4s")[0];
        assert_eq!(r["outcome"], "completed", "{by}: {r:?}");
        assert_eq!(num(r, "leaked_stopped"), 0.0, "{by}: {r:?}");
        assert!(r["stuck_after_s"].is_empty(), "{by}: {r:?}");
        let n = num(r, "stop_cycles");
        assert!(
            n >= enough,
            "{by}: {n} cycles, too few to tell it from by name's {p:.4} per cycle"
        );
    }
    assert_no_stopped_processes();
}
