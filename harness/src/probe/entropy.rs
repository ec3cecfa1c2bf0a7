//! The entropy probe: what the kernel says about its random number generator, whether it
//! is ready, how fast each source supplies bytes (alone and with concurrent readers: does
//! one reader draining the hardware RNG starve another?), and the FIPS 140-2 tests on
//! what each source gave.
//!
//! Sources: `getrandom` (the syscall), `/dev/urandom`, `/dev/random`, and `/dev/hwrng`
//! (the hardware RNG the kernel's hw_random core exposes, e.g. virtio-rng in a VM).
//! Since Linux 5.6 /dev/random no longer blocks once the pool is initialised, and since
//! 5.18 `entropy_avail` is fixed at 256 (the pool size) and no longer measures anything;
//! the report says so when the kernel is that new.
//!
//! A read from /dev/hwrng can block for a long time (virtio-rng supplies kilobytes per
//! second here); readers still in a read at their deadline are interrupted with a signal
//! (SIGURG, handled without SA_RESTART, so the read returns early) and the partial read
//! counts.

use super::fips::{Fips, FipsCounts};
use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use nix::sys::pthread::pthread_kill;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Read;
use std::os::unix::thread::JoinHandleExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// Where random bytes come from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    Hash,
    PartialOrd,
    Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Getrandom,
    Urandom,
    Random,
    Hwrng,
}

impl Source {
    pub fn name(&self) -> &'static str {
        match self {
            Source::Getrandom => "getrandom",
            Source::Urandom => "urandom",
            Source::Random => "random",
            Source::Hwrng => "hwrng",
        }
    }

    fn device(&self, dev_root: &Path) -> Option<PathBuf> {
        match self {
            Source::Getrandom => None,
            Source::Urandom => Some(dev_root.join("urandom")),
            Source::Random => Some(dev_root.join("random")),
            Source::Hwrng => Some(dev_root.join("hwrng")),
        }
    }

    pub const ALL: [Source; 4] = [
        Source::Getrandom,
        Source::Urandom,
        Source::Random,
        Source::Hwrng,
    ];
}

/// An open source.
enum Handle {
    Getrandom,
    File(File),
}

/// getrandom(2) into `buf`: the bytes written. nix does not wrap this call (nor does the
/// standard library expose it), so it is called through libc here, and only here.
fn getrandom(buf: &mut [u8], flags: u32) -> std::io::Result<usize> {
    // SAFETY: getrandom writes at most buf.len() bytes into buf, which we own.
    let n = unsafe { nix::libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), flags) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl Handle {
    fn open(source: Source, dev_root: &Path) -> Result<Handle> {
        Ok(match source.device(dev_root) {
            None => Handle::Getrandom,
            Some(p) => Handle::File(File::open(&p).with_context(|| p.display().to_string())?),
        })
    }

    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Handle::Getrandom => getrandom(buf, 0),
            Handle::File(f) => f.read(buf),
        }
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct EntropyConfig {
    pub sources: Vec<Source>,
    /// Bytes per read.
    pub sizes: Vec<usize>,
    /// Concurrent readers.
    pub readers: Vec<usize>,
    /// Time for each (source, size, readers) measurement.
    pub each: Duration,
    /// Bytes per source for the FIPS tests (0: none), and the time allowed to read them.
    pub fips_bytes: usize,
    pub fips_time: Duration,
    pub proc_root: PathBuf,
    pub sys_root: PathBuf,
    pub dev_root: PathBuf,
}

/// What the kernel says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelInfo {
    pub release: String,
    pub entropy_avail: Option<u64>,
    pub poolsize: Option<u64>,
    /// Whether entropy_avail still means something (kernels before 5.18).
    pub entropy_avail_meaningful: bool,
    pub hwrng_available: Vec<String>,
    pub hwrng_current: Option<String>,
    pub rdrand: bool,
    pub rdseed: bool,
    /// getrandom(GRND_NONBLOCK) succeeded: the pool is initialised.
    pub crng_ready: bool,
    pub uptime_s: Option<f64>,
    /// Seconds after boot the kernel logged "crng init done" (when the log is readable).
    pub crng_ready_at_s: Option<f64>,
    pub notes: Vec<String>,
}

/// One supply measurement, as written to entropy.csv.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupplyRow {
    /// Run number and group, in a scenario's result folder (absent when the probe ran alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub source: String,
    pub read_size: usize,
    pub readers: usize,
    pub bytes: u64,
    pub reads: u64,
    pub errors: u64,
    pub duration_s: f64,
    pub bytes_per_s: f64,
    pub lat_p50_s: Option<f64>,
    pub lat_p99_s: Option<f64>,
    pub lat_p999_s: Option<f64>,
    pub lat_max_s: Option<f64>,
    /// Fewest bytes any reader got ÷ the mean per reader (1: fair, 0: one starved).
    pub min_reader_share: f64,
    /// Why the source could not be measured (then every figure is 0).
    pub error: Option<String>,
}

/// The FIPS tests on one source's bytes, as written to fips.csv.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FipsRow {
    /// Run number and group, in a scenario's result folder (absent when the probe ran alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub source: String,
    pub bytes: u64,
    pub blocks: u64,
    pub successes: u64,
    pub failures: u64,
    pub monobit: u64,
    pub poker: u64,
    pub runs: u64,
    pub long_run: u64,
    pub continuous_run: u64,
}

impl FipsRow {
    pub fn new(source: &str, bytes: u64, c: &FipsCounts) -> FipsRow {
        FipsRow {
            run: None,
            group: None,
            source: source.to_string(),
            bytes,
            blocks: c.blocks,
            successes: c.successes,
            failures: c.failures,
            monobit: c.monobit,
            poker: c.poker,
            runs: c.runs,
            long_run: c.long_run,
            continuous_run: c.continuous_run,
        }
    }
}

/// The figures a run's summary carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EntropySummary {
    pub crng_ready: bool,
    pub entropy_avail: Option<u64>,
    /// Best single-reader throughput of each source, in bytes/s.
    pub getrandom_bytes_per_s: Option<f64>,
    pub urandom_bytes_per_s: Option<f64>,
    pub random_bytes_per_s: Option<f64>,
    pub hwrng_bytes_per_s: Option<f64>,
    /// Lowest min_reader_share over the measurements with several readers.
    pub min_reader_share: Option<f64>,
    pub fips_blocks: u64,
    pub fips_failures: u64,
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntropyReport {
    pub summary: EntropySummary,
    pub kernel: KernelInfo,
    pub supply: Vec<SupplyRow>,
    pub fips: Vec<FipsRow>,
}

/// (major, minor) of a kernel release like "6.18.44-fc".
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Seconds after boot of the last "crng init done" record in /dev/kmsg text
/// (`prio,seq,usec,flags;message` per line).
pub fn crng_done_at(kmsg: &str) -> Option<f64> {
    kmsg.lines()
        .filter(|l| l.contains("crng init done"))
        .filter_map(|l| {
            let head = l.split(';').next()?;
            let us: u64 = head.split(',').nth(2)?.parse().ok()?;
            Some(us as f64 / 1e6)
        })
        .next_back()
}

/// Every record /dev/kmsg has now (non-blocking; None when it cannot be read).
fn read_kmsg(dev_root: &Path) -> Option<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(dev_root.join("kmsg"))
        .ok()?;
    let mut out = String::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
            // A record overwritten while we read: skip it.
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EPIPE as i32) => continue,
            Err(_) => break,
        }
    }
    Some(out)
}

/// Read what the kernel says about its RNG.
pub fn kernel_info(cfg: &EntropyConfig) -> KernelInfo {
    let read = |p: PathBuf| std::fs::read_to_string(p).ok();
    let num = |p: PathBuf| read(p).and_then(|t| t.trim().parse::<u64>().ok());
    let random = cfg.proc_root.join("sys/kernel/random");
    let release = read(cfg.proc_root.join("sys/kernel/osrelease"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let meaningful = kernel_version(&release).is_some_and(|v| v < (5, 18));
    let hw = cfg.sys_root.join("class/misc/hw_random");
    let cpuinfo = read(cfg.proc_root.join("cpuinfo")).unwrap_or_default();
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let mut one = [0u8; 1];
    let ready = getrandom(&mut one, nix::libc::GRND_NONBLOCK).ok() == Some(1);
    let mut notes = Vec::new();
    if !meaningful && !release.is_empty() {
        notes.push(format!(
            "kernel {release}: since 5.18 entropy_avail is fixed at the pool size (256) and does not measure entropy"
        ));
    }
    let kmsg = read_kmsg(&cfg.dev_root);
    if kmsg.is_none() {
        notes.push("the kernel log (/dev/kmsg) is not readable: no crng_ready_at_s".into());
    }
    KernelInfo {
        release,
        entropy_avail: num(random.join("entropy_avail")),
        poolsize: num(random.join("poolsize")),
        entropy_avail_meaningful: meaningful,
        hwrng_available: read(hw.join("rng_available"))
            .map(|t| t.split_whitespace().map(String::from).collect())
            .unwrap_or_default(),
        hwrng_current: read(hw.join("rng_current"))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty() && t != "none"),
        rdrand: flags.contains(&"rdrand"),
        rdseed: flags.contains(&"rdseed"),
        crng_ready: ready,
        uptime_s: read(cfg.proc_root.join("uptime"))
            .and_then(|t| t.split_whitespace().next()?.parse().ok()),
        crng_ready_at_s: kmsg.as_deref().and_then(crng_done_at),
        notes,
    }
}

extern "C" fn on_wake(_: nix::libc::c_int) {}

/// SIGURG interrupts a reader's blocking read (no SA_RESTART). SIGURG's default is to be
/// ignored, so a stray one elsewhere does nothing.
fn install_wake() {
    let wake = SigAction::new(
        SigHandler::Handler(on_wake),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing, which is async-signal-safe.
    let _ = unsafe { sigaction(Signal::SIGURG, &wake) };
}

fn monotonic_ns() -> u64 {
    crate::clock::monotonic_ns()
}

/// One reader's tallies.
struct Tally {
    bytes: u64,
    reads: u64,
    errors: u64,
    lat: Histogram<u64>,
    end_ns: u64,
    fips: Option<Fips>,
}

/// Run `readers` threads reading `size` bytes at a time from `source` until `deadline`
/// (or until `max_bytes` in all when given); readers still blocked at the deadline are
/// interrupted. With `fips`, the first reader's bytes go through the FIPS tests.
fn read_for(
    source: Source,
    dev_root: &Path,
    size: usize,
    readers: usize,
    time: Duration,
    max_bytes: Option<u64>,
    fips: bool,
) -> Result<(Vec<Tally>, u64)> {
    let handles: Vec<Handle> = (0..readers)
        .map(|_| Handle::open(source, dev_root))
        .collect::<Result<_>>()?;
    install_wake();
    let barrier = Arc::new(Barrier::new(readers + 1));
    let start = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let time_ns = time.as_nanos() as u64;
    let mut threads = Vec::new();
    for (i, mut h) in handles.into_iter().enumerate() {
        let (barrier, start, total, stop) =
            (barrier.clone(), start.clone(), total.clone(), stop.clone());
        let mut tally = Tally {
            bytes: 0,
            reads: 0,
            errors: 0,
            lat: Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid bounds"),
            end_ns: 0,
            fips: (fips && i == 0).then(Fips::new),
        };
        let mut buf = vec![0u8; size];
        let done = Arc::new(AtomicBool::new(false));
        let done2 = done.clone();
        let t = std::thread::Builder::new()
            .name(format!("entropy-{i}"))
            .spawn(move || {
                barrier.wait();
                let deadline = start.load(Ordering::SeqCst) + time_ns;
                loop {
                    let t0 = monotonic_ns();
                    if t0 >= deadline || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // With a byte count, the last read asks for what is left of it.
                    let want = match max_bytes {
                        Some(m) => (m.saturating_sub(total.load(Ordering::Relaxed)) as usize)
                            .min(buf.len()),
                        None => buf.len(),
                    };
                    if want == 0 {
                        break;
                    }
                    let r = h.read(&mut buf[..want]);
                    let t1 = monotonic_ns();
                    match r {
                        Ok(n) => {
                            tally.reads += 1;
                            tally.bytes += n as u64;
                            tally.lat.saturating_record((t1 - t0).max(1));
                            if let Some(f) = tally.fips.as_mut() {
                                f.feed(&buf[..n]);
                            }
                            // Only a byte-counted read (the FIPS pass) shares a counter;
                            // supply readers touch nothing in common.
                            if let Some(m) = max_bytes {
                                let all = total.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                                if all >= m {
                                    stop.store(true, Ordering::Relaxed);
                                }
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => tally.errors += 1,
                    }
                }
                tally.end_ns = monotonic_ns();
                done2.store(true, Ordering::SeqCst);
                tally
            })
            .context("cannot start a reader thread")?;
        threads.push((t, done));
    }
    let t0 = monotonic_ns();
    start.store(t0, Ordering::SeqCst);
    barrier.wait();
    // Wait for the deadline (or the byte count), then wake readers stuck in a read.
    let deadline = t0 + time_ns;
    loop {
        let now = monotonic_ns();
        if now >= deadline || stop.load(Ordering::Relaxed) || crate::signals::received().is_some() {
            break;
        }
        crate::clock::sleep_until(deadline.min(now + 10_000_000));
    }
    stop.store(true, Ordering::SeqCst);
    while threads.iter().any(|(_, d)| !d.load(Ordering::SeqCst)) {
        for (t, d) in &threads {
            if !d.load(Ordering::SeqCst) {
                // The thread has not been joined, so its pthread_t is valid.
                let _ = pthread_kill(t.as_pthread_t(), Signal::SIGURG);
            }
        }
        // A retry period for a signal that arrived just before a read began.
        crate::clock::sleep_until(monotonic_ns() + 5_000_000);
    }
    let tallies = threads
        .into_iter()
        .map(|(t, _)| {
            t.join()
                .map_err(|_| anyhow::anyhow!("a reader thread panicked"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((tallies, t0))
}

fn supply_row(
    source: Source,
    size: usize,
    readers: usize,
    tallies: &[Tally],
    t0: u64,
) -> SupplyRow {
    let mut lat: Histogram<u64> = Histogram::new_with_bounds(1, 600_000_000_000, 3).unwrap();
    for t in tallies {
        let _ = lat.add(&t.lat);
    }
    let bytes: u64 = tallies.iter().map(|t| t.bytes).sum();
    let end = tallies.iter().map(|t| t.end_ns).max().unwrap_or(t0);
    let dur = end.saturating_sub(t0) as f64 / 1e9;
    let mean = bytes as f64 / readers.max(1) as f64;
    let min = tallies.iter().map(|t| t.bytes).min().unwrap_or(0) as f64;
    let q = |x: f64| (!lat.is_empty()).then(|| lat.value_at_quantile(x) as f64 / 1e9);
    SupplyRow {
        run: None,
        group: None,
        source: source.name().into(),
        read_size: size,
        readers,
        bytes,
        reads: tallies.iter().map(|t| t.reads).sum(),
        errors: tallies.iter().map(|t| t.errors).sum(),
        duration_s: dur,
        bytes_per_s: if dur > 0.0 { bytes as f64 / dur } else { 0.0 },
        lat_p50_s: q(0.5),
        lat_p99_s: q(0.99),
        lat_p999_s: q(0.999),
        lat_max_s: (!lat.is_empty()).then(|| lat.max() as f64 / 1e9),
        min_reader_share: if mean > 0.0 { min / mean } else { 0.0 },
        error: None,
    }
}

fn failed_row(source: Source, size: usize, readers: usize, e: &anyhow::Error) -> SupplyRow {
    SupplyRow {
        run: None,
        group: None,
        source: source.name().into(),
        read_size: size,
        readers,
        bytes: 0,
        reads: 0,
        errors: 0,
        duration_s: 0.0,
        bytes_per_s: 0.0,
        lat_p50_s: None,
        lat_p99_s: None,
        lat_p999_s: None,
        lat_max_s: None,
        min_reader_share: 0.0,
        error: Some(format!("{e:#}")),
    }
}

/// Run the probe. `progress` hears what is measured next.
pub fn run(cfg: &EntropyConfig, progress: &mut dyn FnMut(&str)) -> Result<EntropyReport> {
    let kernel = kernel_info(cfg);
    let mut supply = Vec::new();
    let mut fips = Vec::new();
    let mut complete = true;
    'outer: for &source in &cfg.sources {
        for &size in &cfg.sizes {
            for &readers in &cfg.readers {
                if crate::signals::received().is_some() {
                    complete = false;
                    break 'outer;
                }
                progress(&format!(
                    "{} reads of {size} B by {readers} reader(s)",
                    source.name()
                ));
                supply.push(
                    match read_for(source, &cfg.dev_root, size, readers, cfg.each, None, false) {
                        Ok((t, t0)) => supply_row(source, size, readers, &t, t0),
                        Err(e) => failed_row(source, size, readers, &e),
                    },
                );
            }
        }
        if cfg.fips_bytes > 0 {
            progress(&format!(
                "FIPS 140-2 tests of {} bytes of {}",
                cfg.fips_bytes,
                source.name()
            ));
            let size = 4096.min(cfg.fips_bytes).max(1);
            if let Ok((t, _)) = read_for(
                source,
                &cfg.dev_root,
                size,
                1,
                cfg.fips_time,
                Some(cfg.fips_bytes as u64),
                true,
            ) {
                if let Some(f) = t[0].fips.as_ref() {
                    fips.push(FipsRow::new(source.name(), t[0].bytes, &f.counts()));
                }
            }
        }
    }
    let best = |s: Source| {
        supply
            .iter()
            .filter(|r| r.source == s.name() && r.readers == 1 && r.error.is_none())
            .map(|r| r.bytes_per_s)
            .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))))
    };
    let summary = EntropySummary {
        crng_ready: kernel.crng_ready,
        entropy_avail: kernel.entropy_avail,
        getrandom_bytes_per_s: best(Source::Getrandom),
        urandom_bytes_per_s: best(Source::Urandom),
        random_bytes_per_s: best(Source::Random),
        hwrng_bytes_per_s: best(Source::Hwrng),
        min_reader_share: supply
            .iter()
            .filter(|r| r.readers > 1 && r.error.is_none())
            .map(|r| r.min_reader_share)
            .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.min(b)))),
        fips_blocks: fips.iter().map(|f| f.blocks).sum(),
        fips_failures: fips.iter().map(|f| f.failures).sum(),
        complete,
    };
    Ok(EntropyReport {
        summary,
        kernel,
        supply,
        fips,
    })
}

impl EntropyReport {
    /// Write entropy.csv, fips.csv and kernel.json into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        super::write_rows(&dir.join("entropy.csv"), &self.supply)?;
        super::write_rows(&dir.join("fips.csv"), &self.fips)?;
        let p = dir.join("kernel.json");
        std::fs::write(&p, serde_json::to_string_pretty(&self.kernel)? + "\n")
            .with_context(|| p.display().to_string())?;
        Ok(())
    }

    /// A short table for people.
    pub fn human(&self) -> String {
        let k = &self.kernel;
        let mut out = format!(
            "kernel {}: crng {}{}, entropy_avail {} of {}{}; hwrng {} (available: {}); rdrand {}, rdseed {}\n",
            k.release,
            if k.crng_ready { "ready" } else { "NOT ready" },
            k.crng_ready_at_s
                .map(|t| format!(" ({t:.3}s after boot)"))
                .unwrap_or_default(),
            k.entropy_avail.map(|v| v.to_string()).unwrap_or("-".into()),
            k.poolsize.map(|v| v.to_string()).unwrap_or("-".into()),
            if k.entropy_avail_meaningful {
                ""
            } else {
                " (fixed since 5.18)"
            },
            k.hwrng_current.as_deref().unwrap_or("none"),
            if k.hwrng_available.is_empty() {
                "none".to_string()
            } else {
                k.hwrng_available.join(" ")
            },
            k.rdrand,
            k.rdseed
        );
        out += &format!(
            "{:>10} {:>7} {:>7} {:>12} {:>10} {:>10} {:>10} {:>9}\n",
            "source", "size", "readers", "MiB/s", "p50_us", "p99_us", "max_us", "min_share"
        );
        let us = |v: Option<f64>| v.map(|x| format!("{:.1}", x * 1e6)).unwrap_or("-".into());
        for r in &self.supply {
            if let Some(e) = &r.error {
                out += &format!(
                    "{:>10} {:>7} {:>7}  {e}\n",
                    r.source, r.read_size, r.readers
                );
                continue;
            }
            out += &format!(
                "{:>10} {:>7} {:>7} {:>12.3} {:>10} {:>10} {:>10} {:>9.2}\n",
                r.source,
                r.read_size,
                r.readers,
                r.bytes_per_s / (1024.0 * 1024.0),
                us(r.lat_p50_s),
                us(r.lat_p99_s),
                us(r.lat_max_s),
                r.min_reader_share
            );
        }
        for f in &self.fips {
            out += &format!(
                "FIPS 140-2 on {} ({} bytes): {} blocks, {} failures (monobit {}, poker {}, runs {}, long run {}, continuous run {})\n",
                f.source, f.bytes, f.blocks, f.failures, f.monobit, f.poker, f.runs, f.long_run, f.continuous_run
            );
        }
        for n in &k.notes {
            out += &format!("note: {n}\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(kernel_version("5.4.0-150-generic"), Some((5, 4)));
        assert_eq!(kernel_version("garbage"), None);
        assert!(kernel_version("5.17.1").unwrap() < (5, 18));
        assert!(kernel_version("5.18.0").unwrap() >= (5, 18));
    }

    #[test]
    fn crng_init_done_is_found_in_the_kernel_log() {
        let log = "6,1,0,-;Linux version 6.1\n\
                   5,400,60740,-;random: crng init done\n\
                   6,401,1277608,-;random: crng reseeded due to virtual machine fork\n";
        assert_eq!(crng_done_at(log), Some(0.06074));
        assert_eq!(crng_done_at("6,1,0,-;nothing\n"), None);
    }

    fn fixture() -> (super::super::testutil::TempDir, EntropyConfig) {
        let d = super::super::testutil::TempDir::new("entropy");
        let p = d.path();
        std::fs::create_dir_all(p.join("proc/sys/kernel/random")).unwrap();
        std::fs::create_dir_all(p.join("sys/class/misc/hw_random")).unwrap();
        std::fs::create_dir_all(p.join("dev")).unwrap();
        std::fs::write(p.join("proc/sys/kernel/osrelease"), "5.10.0-test\n").unwrap();
        std::fs::write(p.join("proc/sys/kernel/random/entropy_avail"), "3021\n").unwrap();
        std::fs::write(p.join("proc/sys/kernel/random/poolsize"), "4096\n").unwrap();
        std::fs::write(p.join("proc/uptime"), "123.45 200.00\n").unwrap();
        std::fs::write(
            p.join("proc/cpuinfo"),
            "processor\t: 0\nflags\t\t: fpu sse2 rdrand\n",
        )
        .unwrap();
        std::fs::write(
            p.join("sys/class/misc/hw_random/rng_available"),
            "virtio_rng.0 tpm-rng\n",
        )
        .unwrap();
        std::fs::write(
            p.join("sys/class/misc/hw_random/rng_current"),
            "virtio_rng.0\n",
        )
        .unwrap();
        // A "hardware RNG" that is a file of known bytes.
        let bytes: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        std::fs::write(p.join("dev/hwrng"), bytes).unwrap();
        let cfg = EntropyConfig {
            sources: vec![Source::Hwrng],
            sizes: vec![4096],
            readers: vec![1],
            each: Duration::from_millis(50),
            fips_bytes: 0,
            fips_time: Duration::from_millis(50),
            proc_root: p.join("proc"),
            sys_root: p.join("sys"),
            dev_root: p.join("dev"),
        };
        (d, cfg)
    }

    #[test]
    fn kernel_info_from_a_fake_proc_and_sys() {
        let (_d, cfg) = fixture();
        let k = kernel_info(&cfg);
        assert_eq!(k.release, "5.10.0-test");
        assert_eq!(k.entropy_avail, Some(3021));
        assert_eq!(k.poolsize, Some(4096));
        assert!(k.entropy_avail_meaningful);
        assert_eq!(k.hwrng_available, vec!["virtio_rng.0", "tpm-rng"]);
        assert_eq!(k.hwrng_current.as_deref(), Some("virtio_rng.0"));
        assert!(k.rdrand && !k.rdseed);
        assert_eq!(k.uptime_s, Some(123.45));
        // No kmsg in the fixture.
        assert_eq!(k.crng_ready_at_s, None);
        assert!(k.notes.iter().any(|n| n.contains("kmsg")));
    }

    #[test]
    fn a_missing_source_is_a_row_with_its_error() {
        let (d, mut cfg) = fixture();
        cfg.sources = vec![Source::Urandom];
        let r = run(&cfg, &mut |_| {}).unwrap();
        assert_eq!(r.supply.len(), 1);
        let e = r.supply[0].error.as_deref().unwrap();
        assert!(
            e.contains(&d.path().join("dev/urandom").display().to_string()),
            "{e}"
        );
        assert_eq!(r.summary.urandom_bytes_per_s, None);
    }

    #[test]
    fn a_file_source_is_read_to_its_end_and_fips_tested() {
        let (_d, mut cfg) = fixture();
        cfg.fips_bytes = 100_000;
        cfg.fips_time = Duration::from_secs(600);
        let r = run(&cfg, &mut |_| {}).unwrap();
        // The fake hwrng is a 100,000 byte file: the FIPS pass reads all of it (it ends at
        // the byte count, not the time): 4 bytes to start the continuous test, then 39
        // whole blocks of 2500.
        assert_eq!(r.fips.len(), 1);
        assert_eq!(r.fips[0].bytes, 100_000);
        assert_eq!(r.fips[0].blocks, 39);
        assert_eq!(r.summary.fips_blocks, 39);
    }
}
