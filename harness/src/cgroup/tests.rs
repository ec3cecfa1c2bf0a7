//! The cgroup layer against a fake root: folders and files made by the test.

use super::CfsLimit;
use super::*;
use std::fs;
use std::time::Duration;

struct FakeRoot(PathBuf);

impl FakeRoot {
    fn new(tag: &str) -> FakeRoot {
        let p = std::env::temp_dir().join(format!(
            "tb-cgroup-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        FakeRoot(p)
    }
    fn v1() -> FakeRoot {
        let r = FakeRoot::new("v1");
        fs::create_dir_all(r.0.join("cpu")).unwrap();
        fs::write(r.0.join("cpu/cpu.cfs_quota_us"), "-1\n").unwrap();
        fs::create_dir_all(r.0.join("cpuacct")).unwrap();
        fs::write(r.0.join("cpuacct/cpuacct.usage"), "0\n").unwrap();
        r
    }
    fn v2(controllers: &str) -> FakeRoot {
        let r = FakeRoot::new("v2");
        fs::write(r.0.join("cgroup.controllers"), controllers).unwrap();
        fs::write(r.0.join("cgroup.subtree_control"), "").unwrap();
        r
    }
}

impl Drop for FakeRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const LIMIT: CfsLimit = CfsLimit {
    quota_us: Some(40_000),
    period_us: 100_000,
    burst_us: 20_000,
};

#[test]
fn detects_v1_with_separate_cpu_and_cpuacct() {
    let r = FakeRoot::v1();
    let h = Hierarchy::detect(&r.0).unwrap();
    assert_eq!(h.version, Version::V1);
    assert_eq!(h.parents().len(), 2);
}

#[test]
fn detects_v1_joint_mount() {
    let r = FakeRoot::new("joint");
    let j = r.0.join("cpu,cpuacct");
    fs::create_dir_all(&j).unwrap();
    fs::write(j.join("cpu.cfs_quota_us"), "-1").unwrap();
    fs::write(j.join("cpuacct.usage"), "0").unwrap();
    let h = Hierarchy::detect(&r.0).unwrap();
    assert_eq!(h.parents(), vec![j.join(PARENT)]);
}

#[test]
fn detects_v2_only_with_cpu_controller() {
    let r = FakeRoot::v2("cpuset cpu io memory pids");
    assert_eq!(Hierarchy::detect(&r.0).unwrap().version, Version::V2);
    let r = FakeRoot::v2("memory pids");
    let e = Hierarchy::detect(&r.0).unwrap_err();
    assert!(
        matches!(
            e,
            CgroupError::MissingController {
                controller: "cpu",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("memory pids"), "{e}");
}

#[test]
fn empty_root_is_a_missing_controller_naming_the_root() {
    let r = FakeRoot::new("empty");
    let e = Hierarchy::detect(&r.0).unwrap_err();
    assert!(e.to_string().contains(&r.0.display().to_string()), "{e}");
    let r = FakeRoot::new("noacct");
    fs::create_dir_all(r.0.join("cpu")).unwrap();
    fs::write(r.0.join("cpu/cpu.cfs_quota_us"), "-1").unwrap();
    let e = Hierarchy::detect(&r.0).unwrap_err();
    assert!(matches!(
        e,
        CgroupError::MissingController {
            controller: "cpuacct",
            ..
        }
    ));
}

#[test]
fn v1_files_are_written_in_kernel_units() {
    let r = FakeRoot::v1();
    let h = Hierarchy::detect(&r.0).unwrap();
    let cg = h.create_run(&[]).unwrap();
    cg.set_cfs(&LIMIT).unwrap();
    let d = cg.cpu_dir().to_path_buf();
    assert!(d.starts_with(r.0.join("cpu").join(PARENT)));
    assert_eq!(
        fs::read_to_string(d.join("cpu.cfs_quota_us")).unwrap(),
        "40000"
    );
    assert_eq!(
        fs::read_to_string(d.join("cpu.cfs_period_us")).unwrap(),
        "100000"
    );
    assert_eq!(
        fs::read_to_string(d.join("cpu.cfs_burst_us")).unwrap(),
        "20000"
    );
    assert_eq!(cg.cfs().unwrap(), LIMIT);
    assert!(cg.usage_path().ends_with("cpuacct.usage"));
    assert!(cg
        .usage_path()
        .starts_with(r.0.join("cpuacct").join(PARENT)));
    assert_eq!(cg.procs_files().len(), 2);
    cg.set_cfs(&CfsLimit {
        quota_us: None,
        period_us: 50_000,
        burst_us: 0,
    })
    .unwrap();
    assert_eq!(
        fs::read_to_string(d.join("cpu.cfs_quota_us")).unwrap(),
        "-1"
    );
}

#[test]
fn v2_files_are_written_in_kernel_units() {
    let r = FakeRoot::v2("cpu");
    let h = Hierarchy::detect(&r.0).unwrap();
    let cg = h.create_run(&[]).unwrap();
    cg.set_cfs(&LIMIT).unwrap();
    let d = cg.cpu_dir().to_path_buf();
    assert_eq!(
        fs::read_to_string(d.join("cpu.max")).unwrap(),
        "40000 100000"
    );
    assert_eq!(
        fs::read_to_string(d.join("cpu.max.burst")).unwrap(),
        "20000"
    );
    assert_eq!(cg.cfs().unwrap(), LIMIT);
    cg.set_cfs(&CfsLimit {
        quota_us: None,
        period_us: 100_000,
        burst_us: 0,
    })
    .unwrap();
    assert_eq!(fs::read_to_string(d.join("cpu.max")).unwrap(), "max 100000");
    // +cpu enabled in the root's and the parent's subtree_control.
    assert_eq!(
        fs::read_to_string(r.0.join("cgroup.subtree_control")).unwrap(),
        "+cpu"
    );
    assert_eq!(
        fs::read_to_string(r.0.join(PARENT).join("cgroup.subtree_control")).unwrap(),
        "+cpu"
    );
    assert_eq!(cg.procs_files(), vec![d.join("cgroup.procs")]);
    assert_eq!(cg.usage_path(), d.join("cpu.stat"));
}

#[test]
fn dropping_or_destroying_a_cgroup_removes_its_folders() {
    let r = FakeRoot::v1();
    let h = Hierarchy::detect(&r.0).unwrap();
    let cg = h.create_run(&[]).unwrap();
    let dirs = cg.dirs().to_vec();
    assert_eq!(dirs.len(), 2);
    drop(cg);
    for d in &dirs {
        assert!(!d.exists(), "{} left behind by drop", d.display());
    }
    let cg = h.create_run(&[]).unwrap();
    let dirs = cg.dirs().to_vec();
    cg.destroy(Duration::from_millis(100)).unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} left behind by destroy", d.display());
    }
}

#[test]
fn stale_sweep_removes_only_dead_owners() {
    let r = FakeRoot::v1();
    let h = Hierarchy::detect(&r.0).unwrap();
    // Ours (alive), a dead owner's, a pid-reuse case (alive pid, other start time),
    // and a folder someone else made.
    let mine = h.create_run(&[]).unwrap();
    let dead = format!("run-{}-5-0", u32::MAX - 1);
    let reused = format!("run-{}-{}-0", std::process::id(), self_start_time() + 1);
    for name in [dead.as_str(), reused.as_str(), "someone-else"] {
        for p in h.parents() {
            fs::create_dir_all(p.join(name)).unwrap();
        }
    }
    let stale = remove_stale(&h).unwrap();
    let mut names: Vec<String> = stale
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    names.sort();
    names.dedup();
    let mut want = vec![dead.clone(), reused.clone()];
    want.sort();
    assert_eq!(names, want);
    for p in h.parents() {
        assert!(!p.join(&dead).exists());
        assert!(!p.join(&reused).exists());
        assert!(p.join("someone-else").exists());
    }
    assert!(mine.cpu_dir().exists());
}

#[test]
fn run_names_parse() {
    assert_eq!(stale::parse_run_name("run-12-345-0"), Some((12, 345)));
    assert_eq!(stale::parse_run_name("run-12-345"), None);
    assert_eq!(stale::parse_run_name("other-12-345-0"), None);
}
