//! A watch over fake cgroup trees (v1 and v2 folders of plain files) and a fake /proc:
//! targets, children that come and go, episodes, the summary, and a tick that
//! allocates nothing.

use super::files::{self, WatchEnd};
use super::live::Watch;
use super::target::{Layout, TargetError, TargetSpec};
use super::*;
use crate::exposition::tests::allocations;
use crate::exposition::Exposition;
use crate::report::read::Table;
use crate::report::ResultFolder;
use std::fs;
use std::path::{Path, PathBuf};

/// A temporary folder, removed when dropped.
struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("tb-watch-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write(p: &Path, text: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// A v2 cgroup's cpu.stat: usage and the bandwidth counters (µs).
fn v2_stat(dir: &Path, usage_us: u64, periods: u64, throttled: u64, throttled_us: u64) {
    write(
        &dir.join("cpu.stat"),
        &format!(
            "usage_usec {usage_us}\nuser_usec 0\nsystem_usec 0\nnr_periods {periods}\nnr_throttled {throttled}\nthrottled_usec {throttled_us}\nnr_bursts 0\nburst_usec 0\n"
        ),
    );
}

fn fake_proc(root: &Path) -> PathBuf {
    let proc = root.join("proc");
    write(&proc.join("stat"), "cpu 1 0 0 100 0 0 0 0 0 0\n");
    write(
        &proc.join("pressure/cpu"),
        "some avg10=0 avg60=0 avg300=0 total=0\n",
    );
    proc
}

/// A fake cgroup v2 root with `kubepods/{a,b}` under a 20 ms / 100 ms quota.
fn v2_tree(root: &Path) -> PathBuf {
    let cg = root.join("cg");
    write(
        &cg.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    );
    v2_stat(&cg.join("kubepods"), 0, 0, 0, 0);
    for g in ["a", "b"] {
        let d = cg.join("kubepods").join(g);
        v2_stat(&d, 1000, 10, 0, 0);
        write(&d.join("cpu.max"), "20000 100000\n");
    }
    cg
}

fn options(
    root: &Path,
    proc: &Path,
    targets: Vec<TargetSpec>,
    children: Option<&str>,
) -> WatchOptions {
    WatchOptions {
        targets,
        children: children.into_iter().map(PathBuf::from).collect(),
        interval: Duration::from_millis(10),
        duration: None,
        cgroup_root: root.to_path_buf(),
        proc_root: proc.to_path_buf(),
        serve: None,
    }
}

fn host() -> Host {
    let mut h = Host::read(Path::new("/proc"), "v2", true);
    h.clock_ticks_per_s = 100;
    h.hostname = "tb-host".into();
    h
}

#[test]
fn targets_resolve_to_v1_twins_v2_folders_and_a_process_cgroup() {
    let t = Tmp::new("targets");
    // v1: cpu and cpuacct hierarchies; `svc` has both folders, `half` only the cpu one.
    let v1 = t.0.join("v1");
    write(&v1.join("cpu/cpu.cfs_quota_us"), "-1\n");
    write(&v1.join("cpuacct/cpuacct.usage"), "0\n");
    for h in [
        "cpu/svc/cpu.stat",
        "cpuacct/svc/cpuacct.usage",
        "cpu/half/cpu.stat",
    ] {
        write(&v1.join(h), "0\n");
    }
    let layout = Layout::detect(&v1).unwrap();
    assert_eq!(layout.version(), "v1");
    let w = layout.resolve(&v1, Path::new("cpu/svc")).unwrap();
    assert_eq!(w.name, "svc");
    assert_eq!(w.cgroup(), "/svc");
    assert_eq!(
        w.usage.as_deref(),
        Some(v1.join("cpuacct/svc/cpuacct.usage").as_path())
    );
    // Relative to the cpu hierarchy, or the cpuacct folder given: the same cgroup.
    assert_eq!(layout.resolve(&v1, Path::new("svc")).unwrap(), w);
    assert_eq!(layout.resolve(&v1, &v1.join("cpuacct/svc")).unwrap(), w);
    match layout.resolve(&v1, Path::new("cpu/half")) {
        Err(e @ TargetError::NoUsage { .. }) => {
            assert!(e.to_string().contains("cpuacct/half"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    match layout.resolve(&v1, Path::new("cpu/nope")) {
        Err(e) => assert!(e.to_string().contains("cpu/nope"), "{e}"),
        Ok(w) => panic!("{w:?}"),
    }
    // pid:N: the v1 line of the cpu controller (a joint cpu,cpuacct line counts).
    let proc = t.0.join("proc");
    write(
        &proc.join("42/cgroup"),
        "4:memory:/x\n3:cpu,cpuacct:/svc\n0::/\n",
    );
    assert_eq!(layout.of_process(&proc, 42).unwrap(), w);
    let e = layout.of_process(&proc, 43).unwrap_err();
    assert!(e.to_string().starts_with("pid:43: "), "{e}");
    // v2: the 0:: line.
    let cg = v2_tree(&t.0);
    let layout = Layout::detect(&cg).unwrap();
    write(&proc.join("7/cgroup"), "0::/kubepods/a\n");
    let a = layout.of_process(&proc, 7).unwrap();
    assert_eq!(
        (a.name.as_str(), a.v2, a.usage.clone()),
        ("kubepods/a", true, None)
    );
    assert_eq!(layout.resolve(&cg, &cg.join("kubepods/a")).unwrap(), a);
    let (kids, skipped) = layout
        .children(&layout.resolve(&cg, Path::new("kubepods")).unwrap())
        .unwrap();
    assert!(skipped.is_empty());
    let names: Vec<&str> = kids.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["kubepods/a", "kubepods/b"]);
    assert_eq!(
        "pid:x".parse::<TargetSpec>().unwrap_err(),
        "`pid:x`: pid:N takes a process id, like pid:1234"
    );
}

/// Advance every group of `dirs` by one 10 ms sample: 2 ms of CPU, and at every tenth
/// sample a period ends, throttled (80 ms) where `throttled(sample)` says.
fn step(dirs: &[(&Path, &dyn Fn(u64) -> bool)], state: &mut [(u64, u64, u64, u64)], sample: u64) {
    for ((dir, throttled), s) in dirs.iter().zip(state.iter_mut()) {
        s.0 += 2000;
        if sample.is_multiple_of(10) {
            s.1 += 1;
            if throttled(sample) {
                s.2 += 1;
                s.3 += 80_000;
            }
        }
        v2_stat(dir, s.0, s.1, s.2, s.3);
    }
}

#[test]
fn children_come_and_go_episodes_are_written_and_a_steady_tick_allocates_nothing() {
    let t = Tmp::new("live");
    let cg = v2_tree(&t.0);
    let proc = fake_proc(&t.0);
    let opts = options(&cg, &proc, vec![], Some("kubepods"));
    let layout = Layout::detect(&cg).unwrap();
    let (initial, parent) = resolve(&opts, &layout).unwrap();
    assert_eq!(initial.len(), 2);
    let folder = ResultFolder::named(&t.0.join("out")).unwrap();
    let (folder, mut fs_) = files::create(folder, host(), "now".into()).unwrap();
    let exposition = Exposition::new();
    let files::Files {
        timeseries,
        episodes,
        ..
    } = &mut fs_;
    let mut w = Watch::start(
        layout,
        initial,
        parent,
        &proc,
        Duration::from_millis(10),
        &folder,
        timeseries,
        episodes,
        Some(&exposition),
    )
    .unwrap();
    let (a, b, c) = (
        cg.join("kubepods/a"),
        cg.join("kubepods/b"),
        cg.join("kubepods/c"),
    );
    // a: throttled in the periods ending at samples 30..=60 (an episode of 4 periods).
    let a_thr = |s: u64| (30..=60).contains(&s);
    let never = |_: u64| false;
    let mut st = [(1000, 10, 0, 0); 3];
    // Warm up (buffers sized), then count allocations over steady ticks.
    for s in 1..=20 {
        step(&[(&a, &a_thr), (&b, &never)], &mut st[..2], s);
        w.tick(s * 10_000_000).unwrap();
    }
    let mut allocated = 0;
    for s in 21..=100 {
        step(&[(&a, &a_thr), (&b, &never)], &mut st[..2], s);
        let before = allocations();
        w.tick(s * 10_000_000).unwrap();
        allocated += allocations() - before;
    }
    assert_eq!(allocated, 0, "a steady tick allocated");
    assert!(!w.refresh().unwrap(), "nothing changed");
    // c comes, then b goes. (A folder that goes and one that comes between two looks
    // leave the link count as it was; on cgroupfs the one that went fails its next read,
    // which makes the watch look again. Plain files here read on, so one at a time.)
    v2_stat(&c, 5_000_000, 500, 400, 0);
    write(&c.join("cpu.max"), "max 100000\n");
    assert!(w.refresh().unwrap());
    assert!(w.take_ended().is_empty());
    fs::remove_dir_all(&b).unwrap();
    assert!(w.refresh().unwrap());
    let ended = w.take_ended();
    assert_eq!(ended.len(), 1);
    assert_eq!(
        (ended[0].name.as_str(), ended[0].why.as_str()),
        ("kubepods/b", "removed")
    );
    assert_eq!(w.groups(), 2);
    let mut ac = [st[0], (5_000_000, 500, 400, 0)];
    for s in 101..=150 {
        step(&[(&a, &a_thr), (&c, &never)], &mut ac, s);
        w.tick(s * 10_000_000).unwrap();
    }
    // The exposition has a and c, not b.
    let text = exposition.encode_text();
    assert!(text.contains("group=\"kubepods/c\""), "{text}");
    assert!(!text.contains("group=\"kubepods/b\""), "{text}");
    w.finish().unwrap();
    let records = std::mem::take(&mut w.records);
    drop(w);
    let windows = fs_.windows(&records).unwrap();
    let rows = summary::rows(
        &records,
        &windows,
        WatchEnd::Completed,
        &Default::default(),
        true,
    );
    fs_.write_summary(&rows).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.group.as_str()).collect();
    assert_eq!(names, ["kubepods/a", "kubepods/b", "kubepods/c"]);
    let (ra, rb, rc) = (&rows[0], &rows[1], &rows[2]);
    // a: 1.5 s watched, 15 periods, 4 throttled (samples 30, 40, 50, 60), 0.32 s.
    assert!((ra.wall_s - 1.5).abs() < 1e-9, "{}", ra.wall_s);
    assert_eq!((ra.nr_periods, ra.nr_throttled), (Some(15), Some(4)));
    assert!((ra.throttled_s.unwrap() - 0.32).abs() < 1e-9);
    assert!((ra.cpu_share - 0.2).abs() < 1e-9, "{}", ra.cpu_share);
    assert_eq!((ra.quota_s, ra.period_s), (Some(0.02), Some(0.1)));
    assert_eq!(ra.outcome, "completed");
    // b: from 0 to its last read (1 s), then removed.
    assert_eq!(rb.outcome, "removed");
    assert!((rb.wall_s - 1.0).abs() < 1e-9, "{}", rb.wall_s);
    assert_eq!(rb.nr_periods, Some(10));
    // c: from when it came (1 s) to the end; its counters before that are not counted.
    assert!((rc.wall_s - 0.5).abs() < 1e-9, "{}", rc.wall_s);
    assert_eq!((rc.nr_periods, rc.nr_throttled), (Some(5), Some(0)));
    assert_eq!(rc.limiter, "none");
    assert_eq!(records[2].start.nr_periods, 500);
    // The episode of a, whole and exact.
    let eps = crate::report::files::episodes::read(
        fs::File::open(folder.dir.join("episodes.csv")).unwrap(),
    )
    .unwrap();
    assert_eq!(eps.len(), 1, "{eps:?}");
    let e = &eps[0].episode;
    assert_eq!(eps[0].group, "kubepods/a");
    assert_eq!(
        (e.periods, e.throttled_periods, e.exact, e.truncated),
        (4, 4, true, false)
    );
    assert!(
        (e.start_s - 0.2).abs() < 1e-9 && (e.end_s - 0.6).abs() < 1e-9,
        "{e:?}"
    );
    assert_eq!(records[0].episodes, 1);
    // summary.csv reads back with a row per group.
    let s = Table::read(&folder.dir.join("summary.csv")).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s.text(1, "outcome"), "removed");
}

#[test]
fn a_cgroup_made_anew_at_a_path_that_went_is_a_new_group() {
    let t = Tmp::new("again");
    let cg = v2_tree(&t.0);
    let proc = fake_proc(&t.0);
    let opts = options(&cg, &proc, vec![], Some("kubepods"));
    let layout = Layout::detect(&cg).unwrap();
    let (initial, parent) = resolve(&opts, &layout).unwrap();
    let folder = ResultFolder::named(&t.0.join("out")).unwrap();
    let (folder, mut fs_) = files::create(folder, host(), "now".into()).unwrap();
    let files::Files {
        timeseries,
        episodes,
        ..
    } = &mut fs_;
    let mut w = Watch::start(
        layout,
        initial,
        parent,
        &proc,
        Duration::from_millis(10),
        &folder,
        timeseries,
        episodes,
        None,
    )
    .unwrap();
    let b = cg.join("kubepods/b");
    w.tick(10_000_000).unwrap();
    fs::remove_dir_all(&b).unwrap();
    w.refresh().unwrap();
    v2_stat(&b, 0, 0, 0, 0);
    w.tick(20_000_000).unwrap();
    w.refresh().unwrap();
    let names: Vec<&str> = w.records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["kubepods/a", "kubepods/b", "kubepods/b#2"]);
    assert_eq!(w.groups(), 2);
}

#[test]
fn children_of_several_parents_come_and_go_each_with_its_own_parent() {
    // kubepods/{a,b} and the pods of a QoS cgroup one level down: kubepods/burstable/p1.
    let t = Tmp::new("parents");
    let cg = v2_tree(&t.0);
    let qos = cg.join("kubepods/burstable");
    v2_stat(&qos, 0, 0, 0, 0);
    v2_stat(&qos.join("p1"), 1000, 10, 0, 0);
    let proc = fake_proc(&t.0);
    let mut opts = options(&cg, &proc, vec![], Some("kubepods"));
    // The same parent twice is one.
    for p in ["kubepods/burstable", "kubepods/burstable"] {
        opts.children.push(PathBuf::from(p));
    }
    let layout = Layout::detect(&cg).unwrap();
    let (initial, parents) = resolve(&opts, &layout).unwrap();
    assert_eq!(parents.len(), 2);
    let names: Vec<&str> = initial.iter().map(|(w, _)| w.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "kubepods/a",
            "kubepods/b",
            "kubepods/burstable",
            "kubepods/burstable/p1"
        ]
    );
    let folder = ResultFolder::named(&t.0.join("out")).unwrap();
    let (folder, mut fs_) = files::create(folder, host(), "now".into()).unwrap();
    let files::Files {
        timeseries,
        episodes,
        ..
    } = &mut fs_;
    let mut w = Watch::start(
        layout,
        initial,
        parents,
        &proc,
        Duration::from_millis(10),
        &folder,
        timeseries,
        episodes,
        None,
    )
    .unwrap();
    w.tick(10_000_000).unwrap();
    assert!(!w.refresh().unwrap(), "nothing changed");
    // A pod comes under the QoS cgroup, then p1 goes: each parent keeps its own children.
    v2_stat(&qos.join("p2"), 1000, 10, 0, 0);
    assert!(w.refresh().unwrap());
    assert_eq!(w.groups(), 5);
    fs::remove_dir_all(qos.join("p1")).unwrap();
    assert!(w.refresh().unwrap());
    let ended = w.take_ended();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].name, "kubepods/burstable/p1");
    assert_eq!(w.groups(), 4);
    let p2 = w.records.iter().find(|r| r.name == "kubepods/burstable/p2");
    assert_eq!(
        p2.map(|r| r.target.clone()),
        Some(format!("children of {}", qos.display()))
    );
    w.finish().unwrap();
}
