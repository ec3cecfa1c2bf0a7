//! A cgroup's CPU usage, read again and again through one open file: v1
//! `cpuacct.usage` (ns), v2 `cpu.stat` usage_usec. The duty loops' and the credits'
//! measure, the budget limiter's `cgroup` tracking and its truth, the window's count.

use super::duty::CpuUsage;
use crate::cgroup::Cgroup;
use crate::sample::file::{parse_u64, RereadFile};
use std::io;
use std::path::{Path, PathBuf};

/// The cgroup's CPU usage, read through one open file.
pub struct UsageFile {
    file: RereadFile,
    /// v2 keeps usage in cpu.stat as usage_usec.
    v2: bool,
}

impl UsageFile {
    pub fn open(cg: &Cgroup) -> io::Result<UsageFile> {
        Self::open_path(&cg.usage_path())
    }

    /// The usage file at `p` (v2 when it is a cpu.stat).
    pub fn open_path(p: &Path) -> io::Result<UsageFile> {
        let p: PathBuf = p.to_path_buf();
        Ok(UsageFile {
            file: RereadFile::open(&p, 4096)?,
            v2: p.ends_with("cpu.stat"),
        })
    }
}

impl CpuUsage for UsageFile {
    fn usage_ns(&mut self) -> io::Result<u64> {
        let text = self.file.read()?;
        let v = if self.v2 {
            text.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(parse_u64)
                .map(|us| us * 1000)
        } else {
            parse_u64(text)
        };
        v.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "cannot read CPU usage"))
    }
}
