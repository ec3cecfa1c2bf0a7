//! The sampler: every tick, one read of each source, for all of a run's groups at once.
//!
//! A tick opens nothing, allocates nothing and logs nothing; it is a handful of preads
//! and parses into one preallocated `Sample` per group, which the caller takes (and
//! writes out) before the next tick. Memory does not grow with the run's length.
//!
//! /proc/stat counts in clock ticks (10 ms at USER_HZ=100) and costs the most to read
//! (the kernel formats every CPU's and every interrupt's line), so it and PSI are read
//! once per tick for all groups, and at most once per `SYSTEM_EVERY` of wall time; ticks
//! in between carry their last values. Each group's own cgroup counters (ns resolution)
//! are read on every tick through handles opened once.

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
    /// PSI cpu `some` total, in µs (0 when the kernel has no PSI: `Sampler::pressure`
    /// says whether it is reported).
    pub psi_some_us: u64,
    /// PSI cpu `full` total, in µs (0 when the kernel prints no `full` line).
    pub psi_full_us: u64,
}

/// One group's sources.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupSources<'a> {
    /// The cgroup's cpu.stat. None without a cgroup (an unprivileged run): usage then
    /// comes from the workload process's /proc/<pid>/stat once `arm_process` names it,
    /// and the cgroup counters are reported as missing.
    pub cpu_stat: Option<&'a Path>,
    /// The cgroup's usage file: v1 cpuacct.usage; None for v2 (usage is in cpu.stat).
    pub usage: Option<&'a Path>,
}

/// How often the system-wide sources (/proc/stat, PSI) are read at most.
pub const SYSTEM_EVERY: Duration = Duration::from_millis(10);

/// Which system-wide counters the kernel reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SystemHas {
    /// /proc/pressure/cpu exists (kernels with PSI, not booted with psi=0).
    pub psi: bool,
    /// Its `full` line exists (5.13 and later).
    pub psi_full: bool,
}

struct GroupFiles {
    cpu_stat: Option<RereadFile>,
    usage: Option<RereadFile>,
    /// Without a cgroup: the workload process's CPU time.
    process: ProcessUsage,
    /// Which counters the cgroup's cpu.stat has (read once at open).
    has: Has,
}

pub struct Sampler {
    /// Read the system-wide sources on every `system_every`-th tick.
    system_every: u32,
    ticks: u32,
    last_system: (u64, u64, u64, Pressure),
    proc_stat: ProcStatReader,
    proc_scratch: ProcStat,
    pressure: Option<RereadFile>,
    system_has: SystemHas,
    groups: Vec<GroupFiles>,
    /// The last tick's samples, one per group (reused every tick).
    current: Vec<Sample>,
}

fn with_path(p: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

fn invalid(p: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", p.display()),
    )
}

impl Sampler {
    /// Open every source of every group, and the system-wide ones, for ticks of
    /// `interval`.
    pub fn open(
        groups: &[GroupSources],
        proc_root: &Path,
        interval: Duration,
    ) -> io::Result<Sampler> {
        let mut files = Vec::with_capacity(groups.len());
        for g in groups {
            let mut cpu_stat = g
                .cpu_stat
                .map(|p| RereadFile::open(p, 4096).map_err(|e| with_path(p, e)))
                .transpose()?;
            let usage = g
                .usage
                .map(|p| RereadFile::open(p, 64).map_err(|e| with_path(p, e)))
                .transpose()?;
            // Which counters this kernel and cgroup report: a v2 cgroup without the cpu
            // controller (or a kernel without CONFIG_CFS_BANDWIDTH) has no nr_periods,
            // and its zeros must not read as "never throttled".
            let has = match cpu_stat.as_mut() {
                Some(f) => {
                    let path = f.path().to_path_buf();
                    CpuStat::parse(f.read()?)
                        .map_err(|e| invalid(&path, e))?
                        .has
                }
                None => Has::default(),
            };
            files.push(GroupFiles {
                cpu_stat,
                usage,
                process: ProcessUsage::default(),
                has,
            });
        }
        let proc_stat =
            ProcStatReader::open(proc_root).map_err(|e| with_path(&proc_root.join("stat"), e))?;
        // PSI is optional: absent on kernels built without it or booted with psi=0. A
        // file that is there but unreadable is an error, not "no pressure".
        let psi_path = proc_root.join("pressure/cpu");
        let mut pressure = match RereadFile::open(&psi_path, 512) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            // EOPNOTSUPP when booted with psi=0: the file exists but says nothing.
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EOPNOTSUPP as i32) => None,
            Err(e) => return Err(with_path(&psi_path, e)),
        };
        let mut system_has = SystemHas::default();
        if let Some(f) = pressure.as_mut() {
            match f.read() {
                Ok(text) => {
                    let p = Pressure::parse(text)
                        .ok_or_else(|| invalid(&psi_path, "no `some ... total=` line"))?;
                    system_has = SystemHas {
                        psi: true,
                        psi_full: p.full_us.is_some(),
                    };
                }
                Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EOPNOTSUPP as i32) => {
                    pressure = None;
                }
                Err(e) => return Err(with_path(&psi_path, e)),
            }
        }
        let system_every = SYSTEM_EVERY
            .as_nanos()
            .div_ceil(interval.as_nanos().max(1))
            .max(1) as u32;
        let mut s = Sampler {
            system_every,
            ticks: 0,
            last_system: (0, 0, 0, Pressure::default()),
            proc_stat,
            proc_scratch: ProcStat::default(),
            pressure,
            system_has,
            current: vec![Sample::default(); files.len()],
            groups: files,
        };
        // Size the /proc/stat scratch for every CPU now, not on the first tick.
        s.proc_stat.read_into(&mut s.proc_scratch)?;
        Ok(s)
    }

    /// Without a cgroup: read group `g`'s CPU time from process `pid` from now on.
    pub fn arm_process(&mut self, g: usize, proc_root: &Path, pid: i32) -> io::Result<()> {
        self.groups[g].process.arm(proc_root, pid)
    }

    /// Which system-wide counters are reported.
    pub fn system_has(&self) -> SystemHas {
        self.system_has
    }

    /// Which counters group `g`'s cpu.stat reports; the others read 0 in every sample.
    pub fn counters(&self, g: usize) -> Has {
        self.groups[g].has
    }

    /// How many groups are sampled.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Read every source once, stamped `t_ns`, and return one sample per group (valid
    /// until the next tick). The first tick and every `system_every`-th after it also
    /// read /proc/stat and PSI, once for all groups.
    pub fn tick(&mut self, t_ns: u64) -> io::Result<&[Sample]> {
        if self.ticks.is_multiple_of(self.system_every) {
            self.proc_stat.read_into(&mut self.proc_scratch)?;
            let t = &self.proc_scratch.total;
            let psi = match self.pressure.as_mut() {
                Some(f) => {
                    let text = f.read()?;
                    match Pressure::parse(text) {
                        Some(p) => p,
                        None => {
                            let path = f.path().to_path_buf();
                            return Err(invalid(&path, "no `some ... total=` line"));
                        }
                    }
                }
                None => Pressure::default(),
            };
            self.last_system = (t.steal, t.total() - t.idle - t.iowait, t.total(), psi);
        }
        self.ticks = self.ticks.wrapping_add(1);
        let (steal_ticks, busy_ticks, total_ticks, psi) = self.last_system;
        for (g, out) in self.groups.iter_mut().zip(self.current.iter_mut()) {
            let stat = match g.cpu_stat.as_mut() {
                Some(f) => {
                    let text = f.read()?;
                    match CpuStat::parse(text) {
                        Ok(s) => s,
                        Err(e) => {
                            let path = f.path().to_path_buf();
                            return Err(invalid(&path, e));
                        }
                    }
                }
                None => CpuStat::default(),
            };
            let usage_ns = match (g.usage.as_mut(), g.cpu_stat.is_some()) {
                (Some(f), _) => match parse_u64(f.read()?) {
                    Some(v) => v,
                    None => {
                        let path = f.path().to_path_buf();
                        return Err(invalid(&path, "not a number"));
                    }
                },
                (None, true) => match stat.usage_ns {
                    Some(v) => v,
                    None => {
                        let path = g.cpu_stat.as_ref().expect("checked").path().to_path_buf();
                        return Err(invalid(&path, "no usage_usec line"));
                    }
                },
                (None, false) => g.process.usage_ns()?,
            };
            *out = Sample {
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
                psi_full_us: psi.full_us.unwrap_or(0),
            };
        }
        Ok(&self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write_psi(d: &Path, some: u64) {
        fs::write(
            d.join("proc/pressure/cpu"),
            format!("some avg10=0 avg60=0 avg300=0 total={some}\nfull avg10=0 avg60=0 avg300=0 total=7\n"),
        )
        .unwrap();
    }

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
        write_psi(&d, 77);
        let cpu_stat = d.join("cpu.stat");
        let usage = d.join("cpuacct.usage");
        let proc_root = d.join("proc");
        let g = GroupSources {
            cpu_stat: Some(&cpu_stat),
            usage: Some(&usage),
        };
        let mut s = Sampler::open(&[g], &proc_root, Duration::from_millis(10)).unwrap();
        assert_eq!(
            s.system_has(),
            SystemHas {
                psi: true,
                psi_full: true
            }
        );
        let v0 = s.tick(1).unwrap()[0];
        fs::write(
            d.join("cpu.stat"),
            "nr_periods 6\nnr_throttled 4\nthrottled_time 240000000\n",
        )
        .unwrap();
        let v1 = s.tick(2).unwrap()[0];
        assert_eq!(v0.nr_periods, 5);
        assert_eq!(v1.nr_periods, 6);
        assert_eq!(v0.usage_ns, 200_000_000);
        assert_eq!(v0.throttled_ns, 240_000_000);
        assert_eq!(v0.steal_ticks, 3);
        assert_eq!(v0.busy_ticks, 18);
        assert_eq!(v0.total_ticks, 119);
        assert_eq!(v0.psi_some_us, 77);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn one_read_of_the_system_files_serves_every_group() {
        let d = std::env::temp_dir().join(format!("tb-sampler-groups-{}", std::process::id()));
        fs::create_dir_all(d.join("proc/pressure")).unwrap();
        fs::create_dir_all(d.join("a")).unwrap();
        fs::create_dir_all(d.join("b")).unwrap();
        fs::write(d.join("a/cpu.stat"), "nr_periods 1\nusage_usec 10\n").unwrap();
        fs::write(d.join("b/cpu.stat"), "nr_periods 2\nusage_usec 20\n").unwrap();
        fs::write(d.join("proc/stat"), "cpu 1 0 0 0 0 0 0 5 0 0\n").unwrap();
        write_psi(&d, 9);
        let (a, b) = (d.join("a/cpu.stat"), d.join("b/cpu.stat"));
        let groups = [
            GroupSources {
                cpu_stat: Some(&a),
                usage: None,
            },
            GroupSources {
                cpu_stat: Some(&b),
                usage: None,
            },
        ];
        let mut s = Sampler::open(&groups, &d.join("proc"), Duration::from_millis(10)).unwrap();
        let v = s.tick(3).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].nr_periods, v[1].nr_periods), (1, 2));
        assert_eq!((v[0].usage_ns, v[1].usage_ns), (10_000, 20_000));
        assert_eq!((v[0].steal_ticks, v[1].steal_ticks), (5, 5));
        assert_eq!((v[0].t_ns, v[1].t_ns), (3, 3));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn system_sources_are_read_every_10ms_of_ticks() {
        let d = std::env::temp_dir().join(format!("tb-sampler-sys-{}", std::process::id()));
        fs::create_dir_all(d.join("proc")).unwrap();
        fs::write(d.join("cpu.stat"), "nr_periods 1\n").unwrap();
        fs::write(d.join("usage"), "1\n").unwrap();
        fs::write(d.join("proc/stat"), "cpu 1 0 0 0 0 0 0 1 0 0\n").unwrap();
        let cpu_stat = d.join("cpu.stat");
        let usage = d.join("usage");
        let proc_root = d.join("proc");
        let g = GroupSources {
            cpu_stat: Some(&cpu_stat),
            usage: Some(&usage),
        };
        // 2 ms ticks: /proc/stat on ticks 0, 5, 10...
        let mut s = Sampler::open(&[g], &proc_root, Duration::from_millis(2)).unwrap();
        assert!(!s.system_has().psi, "no pressure file: PSI not reported");
        let mut steal = Vec::new();
        for i in 0..7u64 {
            fs::write(
                d.join("proc/stat"),
                format!("cpu 1 0 0 0 0 0 0 {} 0 0\n", 10 + i),
            )
            .unwrap();
            steal.push(s.tick(i).unwrap()[0].steal_ticks);
        }
        assert_eq!(steal, vec![10, 10, 10, 10, 10, 15, 15]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it_not_a_zero() {
        let missing = Path::new("/nonexistent/cpu.stat");
        let g = GroupSources {
            cpu_stat: Some(missing),
            usage: None,
        };
        let e = Sampler::open(&[g], Path::new("/proc"), Duration::from_millis(10))
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/cpu.stat"), "{e}");
        // PSI that says nothing parseable.
        let d = std::env::temp_dir().join(format!("tb-sampler-bad-{}", std::process::id()));
        fs::create_dir_all(d.join("proc/pressure")).unwrap();
        fs::write(d.join("proc/stat"), "cpu 1 0 0 0 0 0 0 1 0 0\n").unwrap();
        fs::write(d.join("proc/pressure/cpu"), "garbage\n").unwrap();
        let e = Sampler::open(&[], &d.join("proc"), Duration::from_millis(10))
            .err()
            .unwrap();
        assert!(e.to_string().contains("pressure/cpu"), "{e}");
        // A v2 cpu.stat without usage_usec: an error, not usage 0.
        fs::write(d.join("cpu.stat"), "nr_periods 1\n").unwrap();
        let stat = d.join("cpu.stat");
        fs::write(d.join("proc/pressure/cpu"), "some total=1\n").unwrap();
        let g = GroupSources {
            cpu_stat: Some(&stat),
            usage: None,
        };
        let mut s = Sampler::open(&[g], &d.join("proc"), Duration::from_millis(10)).unwrap();
        let e = s.tick(1).err().unwrap();
        assert!(e.to_string().contains("usage_usec"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }
}
