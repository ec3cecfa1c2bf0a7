//! Measure real OCI runtimes as CPU limiters against a raw CFS cgroup at the same quota:
//! the same CPU-bound process (busybox `sh -c 'while :; do :; done'` under `timeout`) runs in
//! a cgroup made by hand (`<cpu>/throttlebench/tb-raw-<pid>-<n>` and its cpuacct twin)
//! and in a container of each runtime, with `quota` µs per 100 ms; its share of a CPU is
//! the cgroup's CPU time from start to exit over the wall time between. Limiters are
//! interleaved within each repeat, so drift on the machine falls on all of them.
//!
//! ```text
//! cargo run --release -p throttlebench --example runtime_vs_cfs -- [REPEATS] [SECONDS] [boost]
//! ```
//! (as root; defaults 3 repeats of 5 s at 10, 40 and 80%). With `boost`, the workload's
//! cgroups (raw and containers, and podman's level above its container) and the shared
//! `throttlebench` parent get `cpu.shares` 262144, so other processes on a busy machine cannot hold the workload below its
//! limit; the parent's old value is put back at the end (a placeholder child keeps the
//! parent from being removed meanwhile). Prints one row per limiter
//! and level: mean, min and max share in percent, and the mean's difference from the raw
//! cgroup's in percentage points, with the most CPU that other processes on the machine
//! used during any of those runs (a busy machine holds the 80% runs down).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use throttlebench::runtime::{
    Container, ContainerSpec, CpuResources, Runtime, RuntimeKind, DEFAULT_BUSYBOX,
    DEFAULT_CGROUP_ROOT,
};

const PERIOD_US: u64 = 100_000;
const LEVELS: [u64; 3] = [10, 40, 80];
/// The largest cpu.shares (cgroup v1).
const MAX_SHARES: u64 = 262_144;

/// With `boost`: the shared parent's cpu.shares raised, and put back when dropped.
struct Boost {
    parent: PathBuf,
    hold: PathBuf,
    old: String,
}

impl Boost {
    fn new(root: &Path) -> Boost {
        let parent = root.join("cpu/throttlebench");
        let hold = parent.join(format!("tb-raw-{}-hold", std::process::id()));
        let _lock = lock(root);
        std::fs::create_dir_all(&hold).unwrap_or_else(|e| panic!("{}: {e}", hold.display()));
        let old = std::fs::read_to_string(parent.join("cpu.shares")).unwrap();
        write(&parent.join("cpu.shares"), &MAX_SHARES.to_string());
        eprintln!(
            "boost: {} cpu.shares {} -> {MAX_SHARES}",
            parent.display(),
            old.trim()
        );
        Boost { parent, hold, old }
    }
}

impl Drop for Boost {
    fn drop(&mut self) {
        let root = self
            .parent
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let _lock = lock(&root);
        write(&self.parent.join("cpu.shares"), self.old.trim());
        let _ = std::fs::remove_dir(&self.hold);
        let _ = std::fs::remove_dir(&self.parent);
        eprintln!(
            "boost: {} cpu.shares back to {}",
            self.parent.display(),
            self.old.trim()
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeats: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let boost = args.get(3).map(|a| a == "boost").unwrap_or(false);
    let root = Path::new(DEFAULT_CGROUP_ROOT);
    let _boost = boost.then(|| Boost::new(root));
    let runtimes: Vec<Runtime> = RuntimeKind::ALL
        .into_iter()
        .filter_map(|k| match Runtime::find(k, root) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("left out: {e}");
                None
            }
        })
        .collect();
    let names: Vec<String> = std::iter::once("raw cgroup".to_string())
        .chain(runtimes.iter().map(|r| r.name().to_string()))
        .collect();
    // shares[level][limiter] = one value per repeat
    let mut shares = vec![vec![Vec::new(); names.len()]; LEVELS.len()];
    for rep in 0..repeats {
        for (li, pct) in LEVELS.iter().enumerate() {
            let quota = pct * PERIOD_US / 100;
            let r = raw(root, quota, secs, rep * 10 + li, boost);
            shares[li][0].push(r);
            eprintln!(
                "repeat {} {pct}% raw: {:.2}% (others {:.2} CPUs)",
                rep + 1,
                r.share * 100.0,
                r.others
            );
            for (ri, rt) in runtimes.iter().enumerate() {
                let r = in_container(rt, quota, secs, boost);
                shares[li][ri + 1].push(r);
                eprintln!(
                    "repeat {} {pct}% {}: {:.2}% (others {:.2} CPUs)",
                    rep + 1,
                    rt.name(),
                    r.share * 100.0,
                    r.others
                );
            }
        }
    }
    println!(
        "| limit | limiter | mean % | min % | max % | mean − raw (pp) | runs | others' load, max (CPUs) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (li, pct) in LEVELS.iter().enumerate() {
        let shares_of = |i: usize| -> Vec<f64> { shares[li][i].iter().map(|r| r.share).collect() };
        let raw_mean = mean(&shares_of(0));
        for (i, name) in names.iter().enumerate() {
            let v = shares_of(i);
            let m = mean(&v);
            let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let others = shares[li][i].iter().map(|r| r.others).fold(0.0, f64::max);
            println!(
                "| {pct}% | {name} | {:.2} | {:.2} | {:.2} | {:+.2} | {} | {others:.2} |",
                m * 100.0,
                lo * 100.0,
                hi * 100.0,
                (m - raw_mean) * 100.0,
                v.len()
            );
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// A shell that runs the spinner under `timeout` and waits for it: the container's
/// first process is the shell, since a signal from `timeout` to the pid namespace's init
/// would be ignored. busybox's sh in both places (the host's /bin/sh is another shell).
fn spin_args(secs: u64) -> Vec<String> {
    let script =
        format!("/bin/busybox timeout {secs} /bin/busybox sh -c 'while :; do :; done'; true");
    ["/bin/busybox", "sh", "-c", &script]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// CPU time the whole machine has spent busy (user, nice, system, irq, softirq,
/// steal in /proc/stat), seconds.
fn machine_busy_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) as f64 / hz
}

/// One run: the workload's share of a CPU, and the CPUs everything else on the machine
/// used meanwhile (others' load, which can hold the workload below its limit).
#[derive(Clone, Copy)]
struct Run {
    share: f64,
    others: f64,
}

fn in_container(rt: &Runtime, quota: u64, secs: u64, boost: bool) -> Run {
    let spec = ContainerSpec {
        args: spin_args(secs),
        cpu: CpuResources {
            quota_us: Some(quota),
            period_us: Some(PERIOD_US),
            shares: boost.then_some(MAX_SHARES),
        },
        ..ContainerSpec::default()
    };
    let c = Container::run(
        rt,
        Path::new(DEFAULT_BUSYBOX),
        &spec,
        Stdio::null(),
        // busybox sh says "Terminated" when timeout ends the spinner.
        Box::new(std::io::sink()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    if boost && rt.kind == RuntimeKind::Podman {
        // podman puts the container one level lower (`throttlebench/<name>/libpod-..`,
        // beside conmon): that level needs the weight too.
        let cpu = c.cgroups().folder_of("cpu").unwrap();
        write(
            &cpu.parent().unwrap().join("cpu.shares"),
            &MAX_SHARES.to_string(),
        );
    }
    let t0 = Instant::now();
    let b0 = machine_busy_s();
    let u0 = c.cgroups().usage_ns().unwrap();
    assert!(c.wait_exit(Duration::from_secs(secs + 30)).unwrap());
    let wall = t0.elapsed().as_secs_f64();
    let busy = machine_busy_s() - b0;
    let used = (c.cgroups().usage_ns().unwrap() - u0) as f64 / 1e9;
    c.teardown().unwrap_or_else(|e| panic!("{e}"));
    Run {
        share: used / wall,
        others: ((busy - used) / wall).max(0.0),
    }
}

/// The same process in a cgroup made by hand with the same quota.
fn raw(root: &Path, quota: u64, secs: u64, n: usize, boost: bool) -> Run {
    let name = format!("tb-raw-{}-{n}", std::process::id());
    let dirs: Vec<PathBuf> = ["cpu", "cpuacct"]
        .iter()
        .map(|c| root.join(c).join("throttlebench").join(&name))
        .collect();
    {
        // The cgroup layer's lock on the parents (flock on the cgroup root).
        let _lock = lock(root);
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
    }
    write(&dirs[0].join("cpu.cfs_period_us"), &PERIOD_US.to_string());
    write(&dirs[0].join("cpu.cfs_quota_us"), &quota.to_string());
    if boost {
        write(&dirs[0].join("cpu.shares"), &MAX_SHARES.to_string());
    }
    let procs: Vec<std::fs::File> = dirs
        .iter()
        .map(|d| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(d.join("cgroup.procs"))
                .unwrap()
        })
        .collect();
    let fds: Vec<i32> = procs.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    let args = spin_args(secs);
    let mut cmd = Command::new(DEFAULT_BUSYBOX);
    cmd.args(&args[1..])
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only write(2) on descriptors opened before the fork, which stay open in
    // the parent until after the spawn.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &fds {
                let fd = std::os::fd::BorrowedFd::borrow_raw(*fd);
                if nix::unistd::write(fd, b"0")? != 1 {
                    return Err(std::io::Error::other("short write to cgroup.procs"));
                }
            }
            Ok(())
        });
    }
    let usage = dirs[1].join("cpuacct.usage");
    let read = || -> u64 {
        std::fs::read_to_string(&usage)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let mut child = cmd.spawn().unwrap();
    let t0 = Instant::now();
    let b0 = machine_busy_s();
    let u0 = read();
    child.wait().unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let busy = machine_busy_s() - b0;
    let used = (read() - u0) as f64 / 1e9;
    drop(procs);
    let _lock = lock(root);
    for d in &dirs {
        std::fs::remove_dir(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        let _ = std::fs::remove_dir(d.parent().unwrap());
    }
    let _ = std::io::stderr().flush();
    Run {
        share: used / wall,
        others: ((busy - used) / wall).max(0.0),
    }
}

fn lock(root: &Path) -> nix::fcntl::Flock<std::fs::File> {
    let f = std::fs::File::open(root).unwrap();
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
