//! A watched cgroup's CFS limits, read again and again through open handles (so a
//! re-read allocates nothing): v1 `cpu.cfs_quota_us` (-1: none), `cpu.cfs_period_us`,
//! `cpu.cfs_burst_us`; v2 `cpu.max` (`max 100000`, `20000 100000`) and `cpu.max.burst`.
//! A file the kernel does not have (burst before 5.13/5.14, cpu.max without the cpu
//! controller) leaves its limit unknown, not 0.

use crate::exposition::CpuLimits;
use crate::sample::file::RereadFile;
use std::path::Path;

/// Open handles on a cgroup's limit files.
pub struct LimitFiles {
    v2: bool,
    /// v1: cpu.cfs_quota_us; v2: cpu.max.
    quota: Option<RereadFile>,
    /// v1: cpu.cfs_period_us; v2: none (in cpu.max).
    period: Option<RereadFile>,
    burst: Option<RereadFile>,
}

fn open(p: &Path) -> Option<RereadFile> {
    RereadFile::open(p, 64).ok()
}

impl LimitFiles {
    /// The limit files of the cgroup folder `dir` that exist.
    pub fn open(dir: &Path, v2: bool) -> LimitFiles {
        if v2 {
            LimitFiles {
                v2,
                quota: open(&dir.join("cpu.max")),
                period: None,
                burst: open(&dir.join("cpu.max.burst")),
            }
        } else {
            LimitFiles {
                v2,
                quota: open(&dir.join("cpu.cfs_quota_us")),
                period: open(&dir.join("cpu.cfs_period_us")),
                burst: open(&dir.join("cpu.cfs_burst_us")),
            }
        }
    }

    /// The limits now, in seconds; what cannot be read is None.
    pub fn read(&mut self) -> CpuLimits {
        let us = |v: i64| v as f64 / 1e6;
        let num = |f: &mut Option<RereadFile>| -> Option<i64> {
            f.as_mut()?.read().ok()?.trim().parse().ok()
        };
        let burst_s = num(&mut self.burst).filter(|v| *v >= 0).map(us);
        if self.v2 {
            let Some(text) = self.quota.as_mut().and_then(|f| f.read().ok()) else {
                return CpuLimits {
                    burst_s,
                    ..CpuLimits::default()
                };
            };
            let mut it = text.split_ascii_whitespace();
            let (q, p) = (it.next(), it.next().and_then(|p| p.parse::<i64>().ok()));
            CpuLimits {
                quota_s: q.and_then(|q| q.parse::<i64>().ok()).map(us),
                period_s: p.map(us),
                burst_s,
            }
        } else {
            CpuLimits {
                quota_s: num(&mut self.quota).filter(|q| *q >= 0).map(us),
                period_s: num(&mut self.period).map(us),
                burst_s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn v1_and_v2_limits_in_seconds_and_no_quota_as_none() {
        let d = std::env::temp_dir().join(format!("tb-watch-limits-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("cpu.cfs_quota_us"), "20000\n").unwrap();
        fs::write(d.join("cpu.cfs_period_us"), "100000\n").unwrap();
        let mut v1 = LimitFiles::open(&d, false);
        let l = v1.read();
        assert_eq!(l.quota_s, Some(0.02));
        assert_eq!(l.period_s, Some(0.1));
        assert_eq!(l.burst_s, None, "no burst file: unknown");
        // Changed under the open handle: read again.
        fs::write(d.join("cpu.cfs_quota_us"), "-1\n").unwrap();
        assert_eq!(v1.read().quota_s, None);
        fs::write(d.join("cpu.max"), "max 50000\n").unwrap();
        fs::write(d.join("cpu.max.burst"), "10000\n").unwrap();
        let mut v2 = LimitFiles::open(&d, true);
        let l = v2.read();
        assert_eq!(
            (l.quota_s, l.period_s, l.burst_s),
            (None, Some(0.05), Some(0.01))
        );
        fs::write(d.join("cpu.max"), "30000 100000\n").unwrap();
        assert_eq!(v2.read().quota_s, Some(0.03));
        // A v2 cgroup without the cpu controller has no cpu.max.
        let e = d.join("none");
        fs::create_dir_all(&e).unwrap();
        assert_eq!(LimitFiles::open(&e, true).read(), CpuLimits::default());
        fs::remove_dir_all(&d).unwrap();
    }
}
