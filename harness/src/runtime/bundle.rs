//! The OCI bundle's `config.json`, written here rather than by `runc spec`, so every
//! runtime gets the same one: the defaults `runc spec` writes (namespaces, mounts,
//! capabilities, masked paths) with a read-only root, no terminal, the process's
//! arguments, `linux.resources.cpu` and a `cgroupsPath` under the suite's
//! `throttlebench` parents. The network namespace stays (nothing in it is configured:
//! the workloads need no network).

use super::RuntimeError;
use serde_json::{json, Value};
use std::path::Path;

/// The CPU part of `linux.resources` (all optional; absent means the runtime leaves the
/// kernel's value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuResources {
    /// `cpu.quota`, µs per period.
    pub quota_us: Option<u64>,
    /// `cpu.period`, µs.
    pub period_us: Option<u64>,
    /// `cpu.shares` (v1; runtimes turn it into `cpu.weight` on v2).
    pub shares: Option<u64>,
}

/// What goes into one container's config.json.
#[derive(Debug, Clone)]
pub struct OciConfig<'a> {
    /// The root file system folder (absolute).
    pub rootfs: &'a Path,
    /// The process: program (a path inside the root) and arguments.
    pub args: &'a [String],
    /// `NAME=value` pairs (PATH is set).
    pub env: &'a [String],
    pub cpu: CpuResources,
    /// `linux.cgroupsPath`: absolute, under the `throttlebench` parent.
    pub cgroups_path: &'a str,
    pub hostname: &'a str,
}

impl OciConfig<'_> {
    /// The config as JSON.
    pub fn to_json(&self) -> Value {
        let mut cpu = serde_json::Map::new();
        if let Some(q) = self.cpu.quota_us {
            cpu.insert("quota".into(), json!(q));
        }
        if let Some(p) = self.cpu.period_us {
            cpu.insert("period".into(), json!(p));
        }
        if let Some(s) = self.cpu.shares {
            cpu.insert("shares".into(), json!(s));
        }
        let mut env = vec!["PATH=/bin:/usr/bin:/sbin:/usr/sbin".to_string()];
        env.extend(self.env.iter().cloned());
        let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": self.args,
                "env": env,
                "cwd": "/",
                "capabilities": {
                    "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": self.rootfs, "readonly": true},
            "hostname": self.hostname,
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "nodev", "mode=1777", "size=65536k"]}
            ],
            "linux": {
                "resources": {
                    "devices": [{"allow": false, "access": "rwm"}],
                    "cpu": cpu
                },
                "cgroupsPath": self.cgroups_path,
                "namespaces": [
                    {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                    {"type": "uts"}, {"type": "mount"}
                ],
                "maskedPaths": [
                    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                    "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
                ],
                "readonlyPaths": [
                    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                    "/proc/sysrq-trigger"
                ]
            }
        })
    }
}

/// Write `config` as `<bundle>/config.json`.
pub fn write_config(bundle: &Path, config: &OciConfig) -> Result<(), RuntimeError> {
    let path = bundle.join("config.json");
    let text = serde_json::to_string_pretty(&config.to_json()).expect("JSON of known shape");
    std::fs::write(&path, text).map_err(|e| RuntimeError::io(&path, e))
}
