//! The sampler: every tick, one read of each source into a preallocated `Sample`.
//!
//! A tick opens nothing, allocates nothing (the sample buffer is reserved up front for
//! the expected run length) and logs nothing; it is a handful of preads and parses.
//!
//! /proc/stat counts in clock ticks (10 ms at USER_HZ=100) and costs the most to read
//! (the kernel formats every CPU's and every interrupt's line), so it and PSI are read at
//! most once per `SYSTEM_EVERY` of wall time; ticks in between carry their last values.
//! The cgroup's own counters (ns resolution) are read on every tick.

use super::cpustat::{CpuStat, Has};
use super::file::{parse_u64, RereadFile};
use super::pidstat::ProcessUsage;
use super::pressure::Pressure;
use super::procstat::{ProcStat, ProcStatReader};
use serde::Serialize;
use std::io;
use std::path::Path;
use std::time::Duration;

/// Cumulative counters at one instant. Differences of two samples give the activity in
/// between; `timeseries.csv` holds those differences.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// CLOCK_MONOTONIC at the read, in ns since the run's time zero.
    pub t_ns: u64,
    /// CPU time the cgroup used, in ns.
    pub usage_ns: u64,
    pub nr_periods: u64,
    pub nr_throttled: u64,
    /// Total time the cgroup's threads were throttled, in ns.
    pub throttled_ns: u64,
    pub nr_bursts: u64,
    /// Run time taken from burst, in ns.
    pub burst_ns: u64,
    /// /proc/stat steal of all CPUs, in clock ticks.
    pub steal_ticks: u64,
    /// /proc/stat busy time (all states but idle and iowait) of all CPUs, in clock ticks.
    pub busy_ticks: u64,
    /// /proc/stat total time of all CPUs, in clock ticks.
    pub total_ticks: u64,
    /// PSI cpu `some` total, in µs (0 when the kernel has no PSI).
    pub psi_some_us: u64,
    /// PSI cpu `full` total, in µs.
    pub psi_full_us: u64,
}

/// Where to read from.
pub struct SamplerSources<'a> {
    /// The cgroup's cpu.stat.
    /// None without a cgroup (an unprivileged run): usage then comes from the workload
    /// process's /proc/<pid>/stat once `arm_process` names it, and the cgroup counters
    /// are reported as missing.
    pub cpu_stat: Option<&'a Path>,
    /// The cgroup's usage file: v1 cpuacct.usage; None for v2 (usage is in cpu.stat).
    pub usage: Option<&'a Path>,
    /// Usually /proc.
    pub proc_root: &'a Path,
}

/// How often the system-wide sources (/proc/stat, PSI) are read at most.
pub const SYSTEM_EVERY: Duration = Duration::from_millis(10);

pub struct Sampler {
    /// Read the system-wide sources on every `system_every`-th tick.
    system_every: u32,
    ticks: u32,
    last_system: (u64, u64, u64, Pressure),
    cpu_stat: Option<RereadFile>,
    usage: Option<RereadFile>,
    /// Without a cgroup: the workload process's CPU time.
    process: ProcessUsage,
    proc_stat: ProcStatReader,
    proc_scratch: ProcStat,
    pressure: Option<RereadFile>,
    /// Which counters the cgroup's cpu.stat has (read once at open).
    has: Has,
    samples: Vec<Sample>,
}

impl Sampler {
    /// Open every source and reserve room for `expected_samples` ticks of `interval`.
    pub fn open(
        src: &SamplerSources,
        expected_samples: usize,
        interval: Duration,
    ) -> io::Result<Sampler> {
        let with_path =
            |p: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
        let cpu_stat = src
            .cpu_stat
            .map(|p| RereadFile::open(p, 4096).map_err(|e| with_path(p, e)))
            .transpose()?;
        let usage = src
            .usage
            .map(|p| RereadFile::open(p, 64).map_err(|e| with_path(p, e)))
            .transpose()?;
        let proc_stat = ProcStatReader::open(src.proc_root)
            .map_err(|e| with_path(&src.proc_root.join("stat"), e))?;
        // PSI is optional: absent on kernels built without it or booted with psi=0.
        let pressure = RereadFile::open(&src.proc_root.join("pressure/cpu"), 512).ok();
        let system_every = SYSTEM_EVERY
            .as_nanos()
            .div_ceil(interval.as_nanos().max(1))
            .max(1) as u32;
        let mut s = Sampler {
            system_every,
            ticks: 0,
            last_system: (0, 0, 0, Pressure::default()),
            cpu_stat,
            usage,
            process: ProcessUsage::default(),
            proc_stat,
            proc_scratch: ProcStat::default(),
            pressure,
            has: Has::default(),
            samples: Vec::with_capacity(expected_samples + 16),
        };
        // Which counters this kernel and cgroup report: a v2 cgroup without the cpu
        // controller (or a kernel without CONFIG_CFS_BANDWIDTH) has no nr_periods, and its
        // zeros must not read as "never throttled".
        if let Some(f) = s.cpu_stat.as_mut() {
            s.has = CpuStat::parse(f.read()?)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                .has;
        }
        // Size the /proc/stat scratch for every CPU now, not on the first tick.
        s.proc_stat.read_into(&mut s.proc_scratch)?;
        if let Some(p) = s.pressure.as_mut() {
            if p.read().ok().and_then(Pressure::parse).is_none() {
                s.pressure = None;
            }
        }
        Ok(s)
    }

    /// Without a cgroup: read the CPU time of process `pid` from now on.
    pub fn arm_process(&mut self, proc_root: &Path, pid: i32) -> io::Result<()> {
        self.process.arm(proc_root, pid)
    }

    /// Whether PSI is being read.
    pub fn has_pressure(&self) -> bool {
        self.pressure.is_some()
    }

    /// Which counters the cgroup's cpu.stat reports; the others read 0 in every sample.
    pub fn counters(&self) -> Has {
        self.has
    }

    /// Read the sources once and keep the sample, stamped `t_ns`. The first tick and
    /// every `system_every`-th after it also read /proc/stat and PSI.
    pub fn tick(&mut self, t_ns: u64) -> io::Result<()> {
        let sample = self.read(t_ns)?;
        // Capacity was reserved for the expected run; a run that goes on longer grows
        // the buffer (amortised), which is better than losing samples.
        self.samples.push(sample);
        Ok(())
    }

    fn read(&mut self, t_ns: u64) -> io::Result<Sample> {
        let stat = match self.cpu_stat.as_mut() {
            Some(f) => CpuStat::parse(f.read()?)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            None => CpuStat::default(),
        };
        let usage_ns = match (self.usage.as_mut(), self.cpu_stat.is_some()) {
            (Some(f), _) => parse_u64(f.read()?).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "cpuacct.usage is not a number")
            })?,
            (None, true) => stat.usage_ns.unwrap_or(0),
            (None, false) => self.process.usage_ns()?,
        };
        if self.ticks.is_multiple_of(self.system_every) {
            self.proc_stat.read_into(&mut self.proc_scratch)?;
            let t = &self.proc_scratch.total;
            let psi = match self.pressure.as_mut() {
                Some(f) => Pressure::parse(f.read()?).unwrap_or_default(),
                None => Pressure::default(),
            };
            self.last_system = (t.steal, t.total() - t.idle - t.iowait, t.total(), psi);
        }
        self.ticks = self.ticks.wrapping_add(1);
        let (steal_ticks, busy_ticks, total_ticks, psi) = self.last_system;
        Ok(Sample {
            t_ns,
            usage_ns,
            nr_periods: stat.nr_periods,
            nr_throttled: stat.nr_throttled,
            throttled_ns: stat.throttled_ns,
            nr_bursts: stat.nr_bursts,
            burst_ns: stat.burst_ns,
            steal_ticks,
            busy_ticks,
            total_ticks,
            psi_some_us: psi.some_us,
            psi_full_us: psi.full_us,
        })
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    pub fn into_samples(self) -> Vec<Sample> {
        self.samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn samples_a_fake_cgroup_v1_and_proc() {
        let d = std::env::temp_dir().join(format!("tb-sampler-{}", std::process::id()));
        fs::create_dir_all(d.join("proc/pressure")).unwrap();
        fs::write(
            d.join("cpu.stat"),
            "nr_periods 5\nnr_throttled 4\nthrottled_time 240000000\n",
        )
        .unwrap();
        fs::write(d.join("cpuacct.usage"), "200000000\n").unwrap();
        fs::write(
            d.join("proc/stat"),
            "cpu 10 0 5 100 1 0 0 3 0 0\ncpu0 10 0 5 100 1 0 0 3 0 0\n",
        )
        .unwrap();
        fs::write(
            d.join("proc/pressure/cpu"),
            "some avg10=0 avg60=0 avg300=0 total=77\nfull avg10=0 avg60=0 avg300=0 total=7\n",
        )
        .unwrap();
        let cpu_stat = d.join("cpu.stat");
        let usage = d.join("cpuacct.usage");
        let proc_root = d.join("proc");
        let mut s = Sampler::open(
            &SamplerSources {
                cpu_stat: Some(&cpu_stat),
                usage: Some(&usage),
                proc_root: &proc_root,
            },
            4,
            Duration::from_millis(10),
        )
        .unwrap();
        assert!(s.has_pressure());
        s.tick(1).unwrap();
        fs::write(
            d.join("cpu.stat"),
            "nr_periods 6\nnr_throttled 4\nthrottled_time 240000000\n",
        )
        .unwrap();
        s.tick(2).unwrap();
        let v = s.into_samples();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].nr_periods, 5);
        assert_eq!(v[1].nr_periods, 6);
        assert_eq!(v[0].usage_ns, 200_000_000);
        assert_eq!(v[0].throttled_ns, 240_000_000);
        assert_eq!(v[0].steal_ticks, 3);
        assert_eq!(v[0].busy_ticks, 18);
        assert_eq!(v[0].total_ticks, 119);
        assert_eq!(v[0].psi_some_us, 77);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn system_sources_are_read_every_10ms_of_ticks() {
        let d = std::env::temp_dir().join(format!("tb-sampler-sys-{}", std::process::id()));
        fs::create_dir_all(d.join("proc")).unwrap();
        fs::write(d.join("cpu.stat"), "nr_periods 1\n").unwrap();
        fs::write(d.join("proc/stat"), "cpu 1 0 0 0 0 0 0 1 0 0\n").unwrap();
        let cpu_stat = d.join("cpu.stat");
        let proc_root = d.join("proc");
        let src = SamplerSources {
            cpu_stat: Some(&cpu_stat),
            usage: None,
            proc_root: &proc_root,
        };
        // 2 ms ticks: /proc/stat on ticks 0, 5, 10...
        let mut s = Sampler::open(&src, 16, Duration::from_millis(2)).unwrap();
        for i in 0..7u64 {
            fs::write(
                d.join("proc/stat"),
                format!("cpu 1 0 0 0 0 0 0 {} 0 0\n", 10 + i),
            )
            .unwrap();
            s.tick(i).unwrap();
        }
        let steal: Vec<u64> = s.samples().iter().map(|x| x.steal_ticks).collect();
        assert_eq!(steal, vec![10, 10, 10, 10, 10, 15, 15]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_source_error_names_the_path() {
        let missing = Path::new("/nonexistent/cpu.stat");
        let e = Sampler::open(
            &SamplerSources {
                cpu_stat: Some(missing),
                usage: None,
                proc_root: Path::new("/proc"),
            },
            1,
            Duration::from_millis(10),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("/nonexistent/cpu.stat"), "{e}");
    }
}
