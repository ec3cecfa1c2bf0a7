//! The machine a result was measured on: kernel, CPUs, cgroup version, the CFS settings
//! that change what a run measures, and whether it ran in a guest started by
//! `throttlebench vm`. Read once when a result folder is made.

use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

/// The machine a result was measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub hostname: String,
    pub kernel_release: String,
    pub cpus: usize,
    pub cpu_model: String,
    /// "v1" or "v2".
    pub cgroup_version: String,
    /// /proc/sys/kernel/sched_cfs_bandwidth_slice_us at the start (None if unreadable).
    pub sched_cfs_bandwidth_slice_us: Option<u64>,
    /// USER_HZ, the unit of /proc/stat.
    pub clock_ticks_per_s: u64,
    /// Whether /proc/pressure/cpu was read.
    pub psi: bool,
    /// /proc/sys/kernel/version: the build's number and date, which tell two builds of one
    /// release apart.
    pub kernel_version: String,
    /// CONFIG_HZ and CONFIG_CFS_BANDWIDTH from the kernel's config, where readable
    /// (`THROTTLEBENCH_KERNEL_CONFIG`, set by `throttlebench vm`, else
    /// /boot/config-<release>).
    pub config_hz: Option<u64>,
    pub config_cfs_bandwidth: Option<bool>,
    /// Set when the run was inside a VM started by `throttlebench vm` (e.g. "virtme-ng,
    /// emulated (TCG)"): timings are not comparable with the host's, cgroup accounting is.
    pub vm: Option<String>,
}

/// CONFIG_HZ and CONFIG_CFS_BANDWIDTH of a kernel config's text.
pub fn kernel_config(text: &str) -> (Option<u64>, Option<bool>) {
    let mut hz = None;
    let mut bw = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("CONFIG_HZ=") {
            hz = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("CONFIG_CFS_BANDWIDTH=") {
            bw = Some(v.trim() == "y");
        } else if line.starts_with("# CONFIG_CFS_BANDWIDTH is not set") {
            bw = Some(false);
        }
    }
    (hz, bw)
}

impl Host {
    pub fn read(proc_root: &Path, cgroup_version: &str, psi: bool) -> Host {
        let read = |p: PathBuf| {
            fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let cpuinfo = read(proc_root.join("cpuinfo"));
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_default();
        let release = read(proc_root.join("sys/kernel/osrelease"));
        let config = std::env::var_os("THROTTLEBENCH_KERNEL_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(format!("/boot/config-{release}")));
        let (config_hz, config_cfs_bandwidth) = fs::read_to_string(&config)
            .map(|t| kernel_config(&t))
            .unwrap_or((None, None));
        Host {
            hostname: read(proc_root.join("sys/kernel/hostname")),
            kernel_release: read(proc_root.join("sys/kernel/osrelease")),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model,
            cgroup_version: cgroup_version.to_string(),
            sched_cfs_bandwidth_slice_us: read(
                proc_root.join("sys/kernel/sched_cfs_bandwidth_slice_us"),
            )
            .parse()
            .ok(),
            clock_ticks_per_s: super::procstat::clock_ticks_per_s(),
            psi,
            kernel_version: read(proc_root.join("sys/kernel/version")),
            config_hz,
            config_cfs_bandwidth,
            vm: std::env::var("THROTTLEBENCH_VM")
                .ok()
                .filter(|v| !v.is_empty()),
        }
    }
}
