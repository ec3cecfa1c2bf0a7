//! The runtime module's logic against fixtures: names, finding programs, the cgroup and
//! mountinfo files of this machine kind, ldd output, runtime JSON, the config.json, and
//! leftovers of dead runs in a fake temp folder and cgroup root. Real runtimes are
//! exercised in harness/tests/runtime.

use super::bundle::{CpuResources, OciConfig};
use super::cgroups::{parse_mountinfo, parse_proc_cgroup, ContainerCgroups};
use super::oci::{parse_list, tail};
use super::podman::{parse_ps, run_args, PodmanRun};
use super::*;
use std::path::Path;

/// A temp folder `tb-unit-runtime-...`, removed when dropped.
struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "tb-unit-runtime-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn container_names_round_trip_and_reject_others() {
    let n = ContainerName {
        owner_pid: 1234,
        owner_start: 98765,
        seq: 7,
    };
    assert_eq!(n.to_string(), "throttlebench-1234-98765-7");
    assert_eq!(ContainerName::parse("throttlebench-1234-98765-7"), Some(n));
    for other in [
        "run-1234-98765-7",
        "throttlebench-1234-98765",
        "throttlebench-1234-98765-7-8",
        "throttlebench-x-98765-7",
        "throttlebench",
        "libpod-abc",
    ] {
        assert_eq!(ContainerName::parse(other), None, "{other}");
    }
    let mine = ContainerName::new();
    assert_eq!(mine.owner_pid, std::process::id());
    assert!(mine.owner_alive(Path::new("/proc")));
    assert_ne!(ContainerName::new().seq, mine.seq);
}

#[test]
fn owner_is_dead_when_the_pid_is_gone_or_reused() {
    let t = Tmp::new("proc");
    // pid 4242 started at tick 500 ("(a b) c" tests the name with spaces and parens).
    std::fs::create_dir_all(t.0.join("4242")).unwrap();
    let stat = "4242 (a b) c) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0";
    std::fs::write(t.0.join("4242/stat"), stat).unwrap();
    assert_eq!(process_start_time(&t.0, 4242), Some(500));
    let alive = ContainerName {
        owner_pid: 4242,
        owner_start: 500,
        seq: 0,
    };
    assert!(alive.owner_alive(&t.0));
    let reused = ContainerName {
        owner_start: 499,
        ..alive.clone()
    };
    assert!(!reused.owner_alive(&t.0));
    let gone = ContainerName {
        owner_pid: 4243,
        ..alive
    };
    assert!(!gone.owner_alive(&t.0));
}

#[test]
fn a_missing_runtime_is_named_with_its_package() {
    let t = Tmp::new("path");
    let path = t.0.to_string_lossy().into_owned();
    for kind in RuntimeKind::ALL {
        let e = Runtime::find_in(kind, &path, Path::new("/sys/fs/cgroup")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("{} is not installed", kind.name())),
            "{text}"
        );
        assert!(
            text.contains(&format!("Debian package `{}`", kind.package())),
            "{text}"
        );
        assert!(text.contains(&path), "{text}");
    }
    // A file that is there but not executable does not count.
    std::fs::write(t.0.join("runc"), "#!/bin/sh\n").unwrap();
    assert!(Runtime::find_in(RuntimeKind::Runc, &path, Path::new("/x")).is_err());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.0.join("runc"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let rt = Runtime::find_in(RuntimeKind::Runc, &path, Path::new("/x")).unwrap();
    assert_eq!(rt.program, t.0.join("runc"));
    assert!(!rt.hide_unified);
    assert!("crun".parse::<RuntimeKind>().is_ok());
    assert!("docker"
        .parse::<RuntimeKind>()
        .unwrap_err()
        .to_string()
        .contains("`docker`"));
}

#[test]
fn crun_hides_the_v2_mount_only_on_a_hybrid_host_with_v2_controllers() {
    let t = Tmp::new("hybrid");
    let root = &t.0;
    std::fs::create_dir_all(root.join("unified")).unwrap();
    std::fs::write(root.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
    assert!(hybrid_with_v2_controllers(root));
    std::fs::write(root.join("unified/cgroup.controllers"), "\n").unwrap();
    assert!(!hybrid_with_v2_controllers(root));
    std::fs::write(root.join("unified/cgroup.controllers"), "cpu\n").unwrap();
    std::fs::write(root.join("cgroup.controllers"), "cpu io\n").unwrap();
    assert!(!hybrid_with_v2_controllers(root), "a pure v2 host");
}

/// This machine kind's /proc/self/mountinfo (cgroup lines, one other).
const MOUNTINFO: &str = "\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:9 - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu
34 30 0:30 / /sys/fs/cgroup/cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpuacct
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
36 30 0:32 /sub /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
";

/// A runc container's /proc/<pid>/cgroup here.
const PROC_CGROUP: &str = "\
9:name=systemd:/throttlebench/throttlebench-1-2-3
8:pids:/sub/throttlebench/throttlebench-1-2-3
4:memory:/throttlebench/throttlebench-1-2-3
2:cpuacct:/throttlebench/throttlebench-1-2-3
1:cpu:/throttlebench/throttlebench-1-2-3
0::/
";

#[test]
fn cgroup_folders_from_proc_and_mountinfo() {
    let mounts = parse_mountinfo(MOUNTINFO);
    assert_eq!(mounts.len(), 6, "{mounts:?}");
    assert!(mounts[0].v2);
    assert_eq!(mounts[1].options, ["rw", "xattr", "name=systemd"]);
    let lines = parse_proc_cgroup(PROC_CGROUP);
    assert_eq!(lines.len(), 6);
    assert!(lines[5].v2 && lines[5].path == "/");

    let cg = ContainerCgroups::from_texts(PROC_CGROUP, MOUNTINFO);
    let cpu = Path::new("/sys/fs/cgroup/cpu/throttlebench/throttlebench-1-2-3");
    assert_eq!(cg.folder_of("cpu"), Some(cpu));
    assert_eq!(cg.cpu_stat(), Some(cpu.join("cpu.stat")));
    assert_eq!(
        cg.usage_file(),
        Some(PathBuf::from(
            "/sys/fs/cgroup/cpuacct/throttlebench/throttlebench-1-2-3/cpuacct.usage"
        ))
    );
    // A mount of a sub-tree: the mount root is taken off the path.
    assert_eq!(
        cg.folder_of("pids"),
        Some(Path::new(
            "/sys/fs/cgroup/pids/throttlebench/throttlebench-1-2-3"
        ))
    );
    assert_eq!(
        cg.folder_of("name=systemd"),
        Some(Path::new(
            "/sys/fs/cgroup/systemd/throttlebench/throttlebench-1-2-3"
        ))
    );
    // Ours: everything under /throttlebench/, never the v2 root the container stayed in.
    let ours = cg.ours();
    assert_eq!(ours.len(), 5, "{ours:?}");
    assert!(!ours.contains(&PathBuf::from("/sys/fs/cgroup/unified")));
    assert!(ours
        .iter()
        .all(|p| p.to_string_lossy().contains("/throttlebench/")));
}

#[test]
fn joint_v1_mount_and_v2_usage() {
    let mi = "40 30 0:40 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
    let cg = ContainerCgroups::from_texts("3:cpu,cpuacct:/throttlebench/x\n", mi);
    let d = Path::new("/sys/fs/cgroup/cpu,cpuacct/throttlebench/x");
    assert_eq!(cg.folder_of("cpu"), Some(d));
    assert_eq!(cg.folder_of("cpuacct"), Some(d));

    // A v2 host (a guest kernel): usage from cpu.stat's usage_usec. The controllers
    // come from the mount's cgroup.controllers, so use a fake mount point.
    let t = Tmp::new("v2");
    std::fs::write(
        t.0.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    )
    .unwrap();
    std::fs::create_dir_all(t.0.join("throttlebench/x")).unwrap();
    std::fs::write(
        t.0.join("throttlebench/x/cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\n",
    )
    .unwrap();
    let mi = format!("50 1 0:50 / {} rw - cgroup2 cgroup2 rw\n", t.0.display());
    let cg = ContainerCgroups::from_texts("0::/throttlebench/x\n", &mi);
    assert_eq!(
        cg.folder_of("cpu"),
        Some(t.0.join("throttlebench/x").as_path())
    );
    assert_eq!(cg.usage_file(), Some(t.0.join("throttlebench/x/cpu.stat")));
    assert_eq!(cg.usage_ns().unwrap(), 1_500_000);
}

#[test]
fn mountinfo_escapes_are_read() {
    let mi = "41 30 0:41 / /mnt/cg\\040v1 rw - cgroup cgroup rw,freezer\n";
    let m = parse_mountinfo(mi);
    assert_eq!(m[0].mount_point, PathBuf::from("/mnt/cg v1"));
}

#[test]
fn ldd_output_of_a_dynamic_and_a_static_binary() {
    let dynamic = "\tlinux-vdso.so.1 (0x00007ffd6b5f2000)
\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f47b559f000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f47b501e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f47b55d5000)
";
    assert_eq!(
        parse_ldd(dynamic).unwrap(),
        [
            PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
            PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
            PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
        ]
    );
    assert!(parse_ldd("\tnot a dynamic executable\n")
        .unwrap()
        .is_empty());
    assert!(parse_ldd("\tstatically linked\n").unwrap().is_empty());
    assert_eq!(
        parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err(),
        "libfoo.so.1"
    );
}

#[test]
fn rootfs_holds_busybox_and_a_binary_with_its_libraries() {
    let busybox = Path::new(DEFAULT_BUSYBOX);
    if !busybox.is_file() {
        let why = format!("no {DEFAULT_BUSYBOX} (Debian package busybox-static)");
        // Like the integration tests: skip locally, fail in CI (CI set, not "false"/"0").
        if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") {
            panic!("{why}");
        }
        eprintln!("skipped: {why}");
        return;
    }
    let t = Tmp::new("rootfs");
    // A dynamic binary every machine has: this test's own executable.
    let me = std::env::current_exe().unwrap();
    let fs = RootFs::assemble(&t.0.join("rootfs"), busybox, &[&me]).unwrap();
    let root = &fs.dir;
    assert!(root.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let name = me.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(fs.inside(&me), Some(format!("/bin/{name}").as_str()));
    assert!(root.join("bin").join(&name).is_file());
    // Each library ldd names sits at the same path inside.
    let out = std::process::Command::new("ldd").arg(&me).output().unwrap();
    let libs = parse_ldd(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert!(!libs.is_empty());
    for lib in &libs {
        assert!(
            root.join(lib.strip_prefix("/").unwrap()).is_file(),
            "{}",
            lib.display()
        );
    }
    assert!(!fs.library_dirs.is_empty());
    for d in ["proc", "dev", "sys", "tmp", "etc"] {
        assert!(root.join(d).is_dir(), "{d}");
    }
    // A binary that is not there is named.
    let e = RootFs::assemble(
        &t.0.join("r2"),
        busybox,
        &[Path::new("/nonexistent/fibtest")],
    )
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/fibtest"), "{e}");
    let e = RootFs::assemble(&t.0.join("r3"), Path::new("/nonexistent/busybox"), &[]).unwrap_err();
    assert!(e.to_string().contains("busybox-static"), "{e}");
}

#[test]
fn config_json_has_the_limit_the_args_and_the_cgroup_path() {
    let args = vec![
        "/bin/busybox".to_string(),
        "sh".into(),
        "-c".into(),
        "true".into(),
    ];
    let env = vec!["LD_LIBRARY_PATH=/lib".to_string()];
    let c = OciConfig {
        rootfs: Path::new("/tmp/throttlebench-1-2-3/rootfs"),
        args: &args,
        env: &env,
        cpu: CpuResources {
            quota_us: Some(40_000),
            period_us: Some(100_000),
            shares: None,
        },
        cgroups_path: "/throttlebench/throttlebench-1-2-3",
        hostname: "throttlebench",
    }
    .to_json();
    assert_eq!(c["process"]["args"], serde_json::json!(args));
    assert_eq!(c["process"]["terminal"], false);
    assert_eq!(c["root"]["readonly"], true);
    assert_eq!(c["linux"]["resources"]["cpu"]["quota"], 40_000);
    assert_eq!(c["linux"]["resources"]["cpu"]["period"], 100_000);
    assert!(c["linux"]["resources"]["cpu"].get("shares").is_none());
    assert_eq!(
        c["linux"]["cgroupsPath"],
        "/throttlebench/throttlebench-1-2-3"
    );
    let env = c["process"]["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "LD_LIBRARY_PATH=/lib"));
    assert!(env.iter().any(|e| e.as_str().unwrap().starts_with("PATH=")));
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount"]);
}

#[test]
fn podman_arguments() {
    let args = vec!["/bin/busybox".to_string(), "true".into()];
    let a = run_args(&PodmanRun {
        id: "throttlebench-1-2-3",
        rootfs: Path::new("/tmp/r"),
        args: &args,
        env: &[],
        cpu: CpuResources {
            quota_us: Some(10_000),
            period_us: Some(100_000),
            shares: Some(512),
        },
        cgroup_parent: "/throttlebench/throttlebench-1-2-3",
        pidfile: Path::new("/tmp/p"),
    });
    let text = a.join(" ");
    assert!(
        text.starts_with("run --name throttlebench-1-2-3 --pidfile /tmp/p"),
        "{text}"
    );
    assert!(text.contains("--cpu-quota=10000 --cpu-period=100000 --cpu-shares=512"));
    assert!(text.contains("--cgroup-parent /throttlebench/throttlebench-1-2-3"));
    assert!(text.contains("--ulimit=nofile=1024:1024"));
    // --rootfs takes the folder as the first positional argument, then the command.
    assert!(
        text.ends_with("--rootfs /tmp/r /bin/busybox true"),
        "{text}"
    );
}

#[test]
fn runtime_list_outputs() {
    assert_eq!(parse_list("null\n"), Some(vec![]));
    assert_eq!(parse_list("[\n\n]\n"), Some(vec![]));
    let runc = r#"[{"ociVersion":"1.0.2-dev","id":"throttlebench-1-2-3","pid":10596,"status":"running","bundle":"/tmp/b","rootfs":"/tmp/b/rootfs","created":"2026-11-26T13:37:24Z","owner":"root"}]"#;
    let l = parse_list(runc).unwrap();
    assert_eq!(l[0].id, "throttlebench-1-2-3");
    assert_eq!(l[0].pid, 10596);
    assert_eq!(l[0].status, "running");
    assert_eq!(parse_list("not json"), None);
    assert_eq!(parse_ps("[]\n"), Some(vec![]));
    let ps = r#"[{"Id":"940d","Names":["throttlebench-1-2-3"],"Pid":0}]"#;
    assert_eq!(parse_ps(ps), Some(vec!["throttlebench-1-2-3".to_string()]));
    assert_eq!(tail("héllo wörld", 6), "wörld");
    assert_eq!(tail("héllo wörld", 5), "örld"); // bytes, cut at a character boundary
}

#[test]
fn leftovers_of_dead_runs_only() {
    let t = Tmp::new("stale");
    let proc_root = t.0.join("proc");
    let cg = t.0.join("cgroup");
    let tmp = t.0.join("tmp");
    // A live owner (pid 10, start 7) and a dead one (pid 11: no /proc entry).
    std::fs::create_dir_all(proc_root.join("10")).unwrap();
    std::fs::write(
        proc_root.join("10/stat"),
        "10 (tb) S 1 10 10 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7 0 0",
    )
    .unwrap();
    let live = "throttlebench-10-7-0";
    let dead = "throttlebench-11-7-0";
    for h in ["cpu", "memory"] {
        for n in [live, dead, "run-11-7-0"] {
            std::fs::create_dir_all(cg.join(h).join(PARENT).join(n)).unwrap();
        }
    }
    // podman's layout: the container and conmon below the run's own folder.
    std::fs::create_dir_all(cg.join("cpu").join(PARENT).join(dead).join("conmon")).unwrap();
    for n in [live, dead, "tb-other", "throttlebench-junk"] {
        std::fs::create_dir_all(tmp.join(n)).unwrap();
    }
    let found = find_stale(&[], &cg, &tmp, &proc_root).unwrap();
    let shown: Vec<String> = found.iter().map(|l| l.to_string()).collect();
    assert_eq!(found.len(), 3, "{shown:?}");
    assert!(
        found.iter().all(|l| l.name == dead && l.owner_pid == 11),
        "{shown:?}"
    );
    assert_eq!(
        found
            .iter()
            .filter(|l| l.kind == LeftoverKind::Cgroup)
            .count(),
        2
    );
    assert_eq!(
        found
            .iter()
            .filter(|l| l.kind == LeftoverKind::Bundle)
            .count(),
        1
    );

    let done = remove_stale(&[], &cg, &found);
    assert!(done.iter().all(|(_, e)| e.is_none()), "{done:?}");
    assert!(!tmp.join(dead).exists());
    assert!(tmp.join(live).exists() && tmp.join("tb-other").exists());
    for h in ["cpu", "memory"] {
        assert!(!cg.join(h).join(PARENT).join(dead).exists());
        assert!(cg.join(h).join(PARENT).join(live).exists());
        assert!(cg.join(h).join(PARENT).join("run-11-7-0").exists());
    }
    assert!(find_stale(&[], &cg, &tmp, &proc_root).unwrap().is_empty());
}
