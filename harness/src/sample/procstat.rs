//! `/proc/stat` CPU lines: per-CPU and total time by state, in clock ticks (USER_HZ).
//!
//! Parsing works on a borrowed buffer and writes into a caller-owned `ProcStat`, so a
//! sampler can read the file every tick without allocating.

use super::file::RereadFile;
use nix::unistd::{sysconf, SysconfVar};
use std::path::Path;

/// Time one CPU (or all together) spent in each state, in clock ticks (see `clock_ticks_per_s`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    /// Time the hypervisor ran something else while this CPU had work: what vmstat calls `st`.
    pub steal: u64,
    pub guest: u64,
    pub guest_nice: u64,
}

impl CpuTimes {
    /// All states that make up elapsed time (guest time is already inside user/nice).
    pub fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }

    /// Field-wise `self - earlier`, saturating at 0 (counters can step back on CPU hotplug).
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            nice: self.nice.saturating_sub(earlier.nice),
            system: self.system.saturating_sub(earlier.system),
            idle: self.idle.saturating_sub(earlier.idle),
            iowait: self.iowait.saturating_sub(earlier.iowait),
            irq: self.irq.saturating_sub(earlier.irq),
            softirq: self.softirq.saturating_sub(earlier.softirq),
            steal: self.steal.saturating_sub(earlier.steal),
            guest: self.guest.saturating_sub(earlier.guest),
            guest_nice: self.guest_nice.saturating_sub(earlier.guest_nice),
        }
    }
}

/// The CPU lines of one read of /proc/stat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// The `cpu` line: all CPUs added up.
    pub total: CpuTimes,
    /// The `cpuN` lines, indexed by N (CPUs absent from the file stay zero).
    pub cpus: Vec<CpuTimes>,
}

/// A /proc/stat line or field that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("/proc/stat: line {line}: {what}")]
pub struct ProcStatError {
    pub line: usize,
    pub what: &'static str,
}

impl ProcStat {
    /// Parse the text of /proc/stat into `self`, reusing `self.cpus` (no allocation once it
    /// has room for every CPU).
    pub fn parse_into(&mut self, text: &str) -> Result<(), ProcStatError> {
        for c in self.cpus.iter_mut() {
            *c = CpuTimes::default();
        }
        let mut saw_total = false;
        for (i, line) in text.lines().enumerate() {
            let Some(rest) = line.strip_prefix("cpu") else {
                continue;
            };
            let (label, fields) = rest.split_once(' ').ok_or(ProcStatError {
                line: i + 1,
                what: "cpu line without fields",
            })?;
            let times = parse_times(fields).ok_or(ProcStatError {
                line: i + 1,
                what: "cpu line with a field that is not a number, or fewer than 4 fields",
            })?;
            if label.is_empty() {
                self.total = times;
                saw_total = true;
            } else {
                let n: usize = label.parse().map_err(|_| ProcStatError {
                    line: i + 1,
                    what: "cpuN label without a CPU number",
                })?;
                // Linux's NR_CPUS is at most 8192: anything above is not a CPU.
                if n >= 8192 {
                    return Err(ProcStatError {
                        line: i + 1,
                        what: "cpuN label above the kernel's largest CPU number (8191)",
                    });
                }
                if n >= self.cpus.len() {
                    self.cpus.resize(n + 1, CpuTimes::default());
                }
                self.cpus[n] = times;
            }
        }
        if saw_total {
            Ok(())
        } else {
            Err(ProcStatError {
                line: 0,
                what: "no aggregate `cpu` line",
            })
        }
    }

    pub fn parse(text: &str) -> Result<ProcStat, ProcStatError> {
        let mut s = ProcStat::default();
        s.parse_into(text)?;
        Ok(s)
    }
}

fn parse_times(fields: &str) -> Option<CpuTimes> {
    let mut v = [0u64; 10];
    let mut n = 0;
    for f in fields.split_ascii_whitespace() {
        if n == v.len() {
            break;
        }
        v[n] = f.parse().ok()?;
        n += 1;
    }
    // Very old kernels have 4 fields; missing trailing fields read as 0.
    if n < 4 {
        return None;
    }
    Some(CpuTimes {
        user: v[0],
        nice: v[1],
        system: v[2],
        idle: v[3],
        iowait: v[4],
        irq: v[5],
        softirq: v[6],
        steal: v[7],
        guest: v[8],
        guest_nice: v[9],
    })
}

/// Clock ticks per second of /proc/stat (USER_HZ, from sysconf(_SC_CLK_TCK); 100 on Linux).
pub fn clock_ticks_per_s() -> u64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

/// Reads /proc/stat again and again through one open file and one buffer.
pub struct ProcStatReader {
    file: RereadFile,
}

impl ProcStatReader {
    /// Open `<proc_root>/stat`. `proc_root` is `/proc` except in tests. The buffer is
    /// sized from the file's current length with room to grow (interrupt counts widen).
    pub fn open(proc_root: &Path) -> std::io::Result<ProcStatReader> {
        let path = proc_root.join("stat");
        let len = std::fs::read(&path)?.len();
        Ok(ProcStatReader {
            file: RereadFile::open(&path, 4 * len + 64 * 1024)?,
        })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Read the file and parse it into `out`.
    pub fn read_into(&mut self, out: &mut ProcStat) -> std::io::Result<()> {
        let text = self.file.read()?;
        out.parse_into(text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "cpu  100 2 30 4000 5 6 7 8 0 0\n\
cpu0 60 1 20 2000 3 4 5 6 0 0\n\
cpu1 40 1 10 2000 2 2 2 2 0 0\n\
intr 12345 1 2 3\n\
ctxt 999\n\
btime 1700000000\n\
processes 42\n\
procs_running 1\n\
procs_blocked 0\n\
softirq 1 2 3\n";

    #[test]
    fn parses_total_and_per_cpu_lines() {
        let s = ProcStat::parse(FIXTURE).unwrap();
        assert_eq!(s.total.user, 100);
        assert_eq!(s.total.steal, 8);
        assert_eq!(s.cpus.len(), 2);
        assert_eq!(s.cpus[0].steal, 6);
        assert_eq!(s.cpus[1].idle, 2000);
        assert_eq!(s.total.total(), 100 + 2 + 30 + 4000 + 5 + 6 + 7 + 8);
    }

    #[test]
    fn short_lines_read_missing_fields_as_zero() {
        let s = ProcStat::parse("cpu 1 2 3 4\ncpu0 1 2 3 4\n").unwrap();
        assert_eq!(s.total.idle, 4);
        assert_eq!(s.total.steal, 0);
    }

    #[test]
    fn rejects_garbage_with_line_number() {
        let e = ProcStat::parse("cpu 1 2 x 4\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = ProcStat::parse("cpu 1 2 3 4\ncpuX 1 2 3 4\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(ProcStat::parse("intr 1\n").is_err());
    }

    #[test]
    fn since_saturates() {
        let a = CpuTimes {
            steal: 5,
            ..Default::default()
        };
        let b = CpuTimes {
            steal: 3,
            user: 1,
            ..Default::default()
        };
        assert_eq!(a.since(&b).steal, 2);
        assert_eq!(b.since(&a).steal, 0);
    }

    #[test]
    fn parse_into_reuses_and_clears() {
        let mut s = ProcStat::parse(FIXTURE).unwrap();
        s.parse_into("cpu 1 1 1 1\ncpu1 1 1 1 1\n").unwrap();
        assert_eq!(s.cpus.len(), 2);
        assert_eq!(s.cpus[0], CpuTimes::default());
        assert_eq!(s.cpus[1].user, 1);
    }

    #[test]
    fn reads_real_proc_stat() {
        let mut r = ProcStatReader::open(Path::new("/proc")).unwrap();
        let mut s = ProcStat::default();
        r.read_into(&mut s).unwrap();
        assert!(!s.cpus.is_empty());
        assert!(s.total.total() > 0);
    }

    #[test]
    fn an_absurd_cpu_number_is_an_error_not_a_huge_allocation() {
        // Found by the fuzz test: `cpu18446744073709551` asked for a Vec of that length.
        let e = ProcStat::parse("cpu  1 2 3 4\ncpu18446744073709551 1 2 3 4\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(ProcStat::parse("cpu  1 2 3 4\ncpu8191 1 2 3 4\n").is_ok());
    }
}
