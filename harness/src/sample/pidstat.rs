//! A process's CPU time from /proc/<pid>/stat, for runs without a cgroup (an
//! unprivileged user): utime + stime (all its threads) + cutime + cstime (its children
//! that have exited and been waited for), in clock ticks (10 ms at USER_HZ=100).
//!
//! Coarser than a cgroup's ns counter, and blind to live descendants until they are
//! reaped: a fibtest workload is one process, so its threads are all counted; a command
//! that forks workers is counted as they exit.

use super::file::RereadFile;
use super::procstat::clock_ticks_per_s;
use crate::process::PidStat;
use std::io;
use std::path::Path;

/// A process's CPU time read again and again; zero until `arm` names the process, and
/// the last value once it is gone (the run's last tick may miss up to one interval).
pub struct ProcessUsage {
    file: Option<RereadFile>,
    ns_per_tick: u64,
    last_ns: u64,
}

impl Default for ProcessUsage {
    fn default() -> Self {
        ProcessUsage {
            file: None,
            ns_per_tick: 1_000_000_000 / clock_ticks_per_s().max(1),
            last_ns: 0,
        }
    }
}

impl ProcessUsage {
    /// Start reading /proc/<pid>/stat under `proc_root`.
    pub fn arm(&mut self, proc_root: &Path, pid: i32) -> io::Result<()> {
        let p = proc_root.join(pid.to_string()).join("stat");
        self.file = Some(
            RereadFile::open(&p, 1024)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?,
        );
        Ok(())
    }

    /// CPU time so far in ns. Allocates nothing.
    pub fn usage_ns(&mut self) -> io::Result<u64> {
        let Some(f) = self.file.as_mut() else {
            return Ok(0);
        };
        match f.read() {
            Ok(text) => {
                let ticks = PidStat::parse(text)
                    .and_then(|s| s.cpu_ticks())
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc/<pid>/stat")
                    })?;
                // Never backwards (a reaped child's time moves into cutime at once).
                self.last_ns = self.last_ns.max(ticks.saturating_mul(self.ns_per_tick));
                Ok(self.last_ns)
            }
            // The process is gone (ESRCH on a reread of its file).
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32) => Ok(self.last_ns),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_reads_zero_until_armed_then_its_time_then_the_last_value_when_gone() {
        let mut u = ProcessUsage::default();
        assert_eq!(u.usage_ns().unwrap(), 0);
        // This test process itself: it has used some CPU by now.
        let me = std::process::id() as i32;
        u.arm(Path::new("/proc"), me).unwrap();
        let mut x = 0u64;
        let a = u.usage_ns().unwrap();
        // Spin until the kernel's tick accounting moves (at most a few ticks).
        let start = std::time::Instant::now();
        while u.usage_ns().unwrap() == a && start.elapsed() < std::time::Duration::from_secs(5) {
            x = x.wrapping_add(1);
            std::hint::black_box(x);
        }
        assert!(u.usage_ns().unwrap() > a, "CPU time did not move");
        assert_eq!(u.usage_ns().unwrap() % u.ns_per_tick, 0);
    }
}
