//! `throttlebench bench fips`: the speed of the FIPS 140-2 tests (`probe::fips`) against
//! `rngtest` (rng-tools5) on the same pseudo-random file, like with like, with a check that
//! both count the same.
//!
//! The comparison is between two processes doing the same job: `throttlebench probe
//! entropy --fips-file /dev/stdin` (this binary, `current_exe`) and `rngtest`, each with
//! the file on its stdin, each timed by the wall clock from spawn to exit, with its CPU
//! time (user + system) from the change in `getrusage(RUSAGE_CHILDREN)` across its wait.
//! The runs alternate between the tools, so a change in the machine's load hits both.
//! A third row, labelled as such, times the tests alone on the bytes in memory
//! (`probe::fips::test_bytes`): no process start, no reads.
//!
//! The input is a temporary file, unlinked as soon as it is written, so nothing stays in
//! the temp folder however the bench ends. The children still reach it: for every run the
//! bench opens `/proc/self/fd/N` of its own descriptor (a new open file description of
//! the unlinked file, at offset 0) and gives that as the child's stdin. rngtest reads its
//! stdin; ours opens `/dev/stdin`, which is `/proc/self/fd/0`, the same file again. Both
//! read the same bytes from the page cache, in their own chunk sizes.

use anyhow::{Context, Result};
use nix::sys::resource::{getrusage, UsageWho};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use crate::probe::fips::{self, FipsCounts};

/// One row of the FIPS table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FipsSpeed {
    /// "throttlebench", "rngtest", or "throttlebench (in memory)".
    pub tool: &'static str,
    /// What was timed: "process reading the file" (spawn to exit) or "tests on bytes in
    /// memory" (the tests alone).
    pub timed: &'static str,
    pub input_bytes: u64,
    /// Timed runs; the fastest is reported, with the slowest for the range.
    pub runs: u32,
    /// Wall time of the fastest and the slowest run, in s.
    pub best_s: f64,
    pub worst_s: f64,
    /// User + system CPU time of the child, in s, in its fastest run (empty for the
    /// in-memory row, which runs in this process).
    pub cpu_s: Option<f64>,
    /// Input bits / 2^20 / best_s, and the same for worst_s.
    pub mibit_per_s: f64,
    pub worst_mibit_per_s: f64,
    pub blocks: u64,
    pub failures: u64,
    pub bits_received: u64,
}

/// Best and worst wall time, and the CPU time of the best run.
#[derive(Debug, Clone, Copy)]
struct Timing {
    best_s: f64,
    worst_s: f64,
    cpu_s: Option<f64>,
}

impl Timing {
    fn new() -> Timing {
        Timing {
            best_s: f64::INFINITY,
            worst_s: 0.0,
            cpu_s: None,
        }
    }
    fn add(&mut self, wall_s: f64, cpu_s: Option<f64>) {
        if wall_s < self.best_s {
            self.best_s = wall_s;
            self.cpu_s = cpu_s;
        }
        self.worst_s = self.worst_s.max(wall_s);
    }
}

/// CPU time (user + system) of the waited-for children so far, in s.
fn children_cpu_s() -> Result<f64> {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage(RUSAGE_CHILDREN)")?;
    let s = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Ok(s(u.user_time()) + s(u.system_time()))
}

/// Run `cmd` with a fresh open of the unlinked input (`/proc/self/fd/N`) on its stdin, to
/// its exit: the output, the wall time from spawn to exit and the child's CPU time.
fn timed_child(cmd: &mut Command, input: &std::fs::File) -> Result<(Output, f64, f64)> {
    let stdin = std::fs::File::open(format!("/proc/self/fd/{}", input.as_raw_fd()))
        .context("reopening the input file through /proc/self/fd")?;
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cpu0 = children_cpu_s()?;
    let t = Instant::now();
    let out = cmd.output()?;
    let wall = t.elapsed().as_secs_f64();
    let cpu = children_cpu_s()? - cpu0;
    Ok((out, wall, cpu))
}

/// Our counts from `probe entropy --fips-file`'s stdout; exit 0 (no failed block) and 1
/// (a block failed, as rngtest) are results, anything else an error.
fn ours_counts(out: &Output) -> Result<FipsCounts> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    match out.status.code() {
        Some(0 | 1) => fips::parse_rngtest(&stdout)
            .with_context(|| format!("`probe entropy --fips-file` printed no counts:\n{stdout}")),
        _ => anyhow::bail!(
            "`probe entropy --fips-file` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `bench fips`: time our FIPS tests and rngtest on `mib` MiB of pseudo-random bytes.
pub fn fips_bench(mib: u64, repeat: u32, csv: Option<&Path>) -> Result<()> {
    let n = usize::try_from(mib.checked_mul(1 << 20).context("--mib is too large")?)?;
    let data = fips::xorshift_bytes(0x5EED, n);
    let path = std::env::temp_dir().join(format!("throttlebench-fips-{}.bin", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("making {}", path.display()))?;
    std::fs::remove_file(&path).with_context(|| format!("unlinking {}", path.display()))?;
    file.write_all(&data)
        .with_context(|| format!("writing {}", path.display()))?;
    let exe = std::env::current_exe().context("finding this program's path")?;

    let mut ours = (Timing::new(), FipsCounts::default());
    let mut theirs: Option<(Timing, FipsCounts)> = None;
    let mut rngtest_found = true;
    let mut version = String::new();
    let mut own_speed = String::new();
    for _ in 0..repeat {
        let (out, wall, cpu) = timed_child(
            Command::new(&exe).args(["probe", "entropy", "--fips-file", "/dev/stdin"]),
            &file,
        )?;
        ours.1 = ours_counts(&out)?;
        ours.0.add(wall, Some(cpu));

        if !rngtest_found {
            continue;
        }
        let (out, wall, cpu) = match timed_child(&mut Command::new("rngtest"), &file) {
            Ok(r) => r,
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
            {
                rngtest_found = false;
                continue;
            }
            Err(e) => return Err(e).context("running rngtest"),
        };
        let report = String::from_utf8_lossy(&out.stderr);
        version = report.lines().next().unwrap_or("").to_string();
        // Its own figure: the time in fips_run_rng_test per block, without its reads.
        if let Some(l) = report.lines().find(|l| l.contains("FIPS tests speed")) {
            own_speed = l.trim_start_matches("rngtest: ").to_string();
        }
        // rngtest exits 1 when a block failed: not an error here.
        let c = fips::parse_rngtest(&report)
            .with_context(|| format!("rngtest ({}) printed no counts:\n{report}", out.status))?;
        let t = theirs.get_or_insert((Timing::new(), c));
        t.0.add(wall, Some(cpu));
        t.1 = c;
    }

    // The tests alone, on the bytes in memory.
    let mut mem = (Timing::new(), FipsCounts::default());
    for _ in 0..repeat {
        let t = Instant::now();
        mem.1 = fips::test_bytes(std::hint::black_box(&data));
        mem.0.add(t.elapsed().as_secs_f64(), None);
    }

    let mibits = n as f64 * 8.0 / (1u64 << 20) as f64;
    let row = |tool, timed, (t, c): (Timing, FipsCounts)| FipsSpeed {
        tool,
        timed,
        input_bytes: n as u64,
        runs: repeat,
        best_s: t.best_s,
        worst_s: t.worst_s,
        cpu_s: t.cpu_s,
        mibit_per_s: mibits / t.best_s,
        worst_mibit_per_s: mibits / t.worst_s,
        blocks: c.blocks,
        failures: c.failures,
        bits_received: c.bits_received,
    };
    const PROCESS: &str = "process reading the file";
    let mut rows = vec![row("throttlebench", PROCESS, ours)];
    if let Some(t) = theirs {
        rows.push(row("rngtest", PROCESS, t));
    }
    rows.push(row(
        "throttlebench (in memory)",
        "tests on bytes in memory",
        mem,
    ));

    println!(
        "{:<26} {:>9} {:>17} {:>16} {:>7} {:>8} {:>9}",
        "tool", "input_MiB", "Mibit/s (worst)", "wall_s (worst)", "cpu_s", "blocks", "failures"
    );
    for r in &rows {
        println!(
            "{:<26} {:>9} {:>8.1} ({:>6.1}) {:>7.4} ({:>6.4}) {:>7} {:>8} {:>9}",
            r.tool,
            mib,
            r.mibit_per_s,
            r.worst_mibit_per_s,
            r.best_s,
            r.worst_s,
            r.cpu_s.map_or("-".into(), |c| format!("{c:.3}")),
            r.blocks,
            r.failures
        );
    }
    if let Some(path) = csv {
        super::write_csv(path, &rows)?;
    }
    println!(
        "best of {repeat} runs each (worst in brackets); the first two rows are whole processes \
         reading the same {mib} MiB file on their stdin, timed from spawn to exit; the last is \
         the tests alone on the bytes in memory"
    );
    if mem.1 != ours.1 {
        anyhow::bail!(
            "the counts differ:\nthrottlebench (process):\n{}\nthrottlebench (in memory):\n{}",
            ours.1,
            mem.1
        );
    }
    match theirs {
        None => {
            println!("rngtest not found (apt-get install rng-tools5): only throttlebench's rows")
        }
        Some((t, c)) => {
            // The Debian package's version, when there is one.
            let package = Command::new("dpkg-query")
                .args(["-W", "-f", "${Version}", "rng-tools5"])
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| format!(" (rng-tools5 {})", String::from_utf8_lossy(&o.stdout)))
                .unwrap_or_default();
            println!(
                "process against process: {:.1}x the speed of {version}{package} (wall, best \
                 against best; {:.1}-{:.1}x from worst against best either way)",
                t.best_s / ours.0.best_s,
                t.best_s / ours.0.worst_s,
                t.worst_s / ours.0.best_s,
            );
            if !own_speed.is_empty() {
                println!("rngtest's own figure (per block, without its reads): {own_speed}");
            }
            if c != ours.1 {
                anyhow::bail!(
                    "the counts differ:\nthrottlebench:\n{}\nrngtest:\n{c}",
                    ours.1
                );
            }
            println!(
                "counts equal on every line of rngtest's report:\n{}",
                ours.1
            );
        }
    }
    std::io::stdout().flush()?;
    Ok(())
}
