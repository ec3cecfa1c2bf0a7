//! CPU limits in the units people write (Docker `--cpus`, Kubernetes millicores,
//! systemd `CPUQuota=`), turned into CFS quota/period (µs) and cgroup weights exactly as
//! each system does it: the same integer arithmetic, the same default periods, the same
//! minimums and clamps, and the same refusals. docs/limiters.md ("The units users write") has the table.
//!
//! Where each rule comes from (read from each project's source; file names are as in the
//! upstream repositories):
//! - **Docker** `--cpus`: docker/cli `opts/opts.go` (`ParseCPUs`: the text as an exact
//!   rational times 10^9, "value is too precise" otherwise) and moby `daemon/daemon_unix.go`
//!   (`getCPUResources`: period 100 ms, `quota = NanoCPUs * period / 1e9`;
//!   `verifyPlatformContainerResources`: `--cpus` conflicts with `--cpu-period` and
//!   `--cpu-quota`, at most the host's CPU count, `--cpu-period` 1 ms..1 s,
//!   `--cpu-quota` at least 1 ms). A quota under 1 ms from `--cpus` is not checked by
//!   Docker; the kernel refuses it when it is written.
//! - **Podman** `--cpus`: containers/podman `pkg/util/utils.go` (`CoresToPeriodAndQuota`:
//!   period 100 ms, `quota = int64(cores * 100000.0)` in floating point, so 0.29 gives
//!   28999) and `cmd/podman/containers/create.go` (`--cpus` cannot be set with
//!   `--cpu-period` or `--cpu-quota`).
//! - **Kubernetes**: kubernetes/kubernetes `pkg/kubelet/cm/helpers_linux.go`
//!   (`MilliCPUToQuota`: `quota = milliCPU * period / 1000`, at least 1000 µs, no quota for
//!   0; `MilliCPUToShares`: `milliCPU * 1024 / 1000`, clamped to 2..262144),
//!   `pkg/kubelet/cm/cgroup_manager_linux.go` (`getCPUWeight`, the linear shares → weight
//!   map kubelet uses for pod and QoS cgroups on v2),
//!   `pkg/kubelet/apis/config/validation/validation.go` (`--cpu-cfs-quota-period` must be
//!   1 ms..1 s and needs the `CustomCPUCFSQuotaPeriod` gate), and apimachinery's
//!   `resource.Quantity.MilliValue` (rounds up to a whole millicore). Before the fix for
//!   kubernetes/kubernetes #73264 (Kubernetes 1.14) a period set without the gate reached
//!   the cgroup while the quota was still computed for 100 ms: the 10 ms period of
//!   kubernetes/kubernetes #79833 turned a 500m limit into 5 CPUs
//!   ([`kubelet_limit_ungated_before_1_14`]).
//! - **OCI runtimes** (what a container's `cpu.weight` becomes on cgroup v2 from the
//!   OCI `shares` that kubelet or Docker sends): opencontainers/cgroups `utils.go`
//!   (`ConvertCPUSharesToCgroupV2Value`): linear `1 + (shares - 2) * 9999 / 262142` in runc
//!   up to 1.3.1 and crun up to 1.22 (crun `src/libcrun/cgroup-internal.h`), a quadratic
//!   in log2(shares) that maps 1024 to 100 from opencontainers/cgroups v0.0.3 (runc 1.3.2,
//!   1.4) and crun 1.23.
//! - **systemd** `CPUQuota=`: systemd `src/core/load-fragment.c` (`config_parse_cpu_quota`:
//!   a percentage with up to two decimals, also `‰` and `‱`, stored as µs per CPU
//!   second) and `src/core/cgroup.c` (`cgroup_cpu_adjust_period`,
//!   `cgroup_apply_legacy_cpu_quota`: default period 100 ms, `CPUQuotaPeriodSec=` clamped
//!   to 1 ms..1 s and raised so the quota is at least 1 ms,
//!   `quota = max(per_sec * period / 1e6, 1000)`). systemd does not round the quota to
//!   whole milliseconds; runc's *systemd* cgroup driver does round up, to 10 ms per CPU
//!   second (opencontainers/cgroups `systemd/common.go`, `addCPUQuota`), because systemd
//!   once stored CPUQuota= as a whole percentage ([`runc_systemd_driver_quota`]).
//!   Checked against systemd 252 (Debian 12) with `systemd-analyze verify`, which prints
//!   `CPUQuotaPerSecSec`: `40.25%` is 402.5 ms, `40.125%` is refused, and `040%` is read
//!   as octal (32%), which this module refuses instead (see [`parse_systemd_cpu_quota`]).
//! - **Linux**: a quota below 1 ms, or a period outside 1 ms..1 s, is refused with EINVAL
//!   (kernel/sched/core.c, `tg_set_cfs_bandwidth`).

use std::fmt;

/// Microseconds in one second.
const USEC_PER_SEC: u64 = 1_000_000;

/// The smallest CFS quota and period the kernel accepts, µs.
pub const KERNEL_MIN_US: u64 = 1_000;
/// The largest CFS period the kernel accepts, µs.
pub const KERNEL_MAX_PERIOD_US: u64 = 1_000_000;

/// The period Docker and Podman write with `--cpus`, µs.
pub const DOCKER_PERIOD_US: u64 = 100_000;
/// kubelet's default CFS period (`QuotaPeriod`), µs.
pub const KUBELET_PERIOD_US: u64 = 100_000;
/// kubelet's smallest quota (`MinQuotaPeriod`), µs.
pub const KUBELET_MIN_QUOTA_US: u64 = 1_000;
/// systemd's default `CPUQuotaPeriodSec=`, µs.
pub const SYSTEMD_PERIOD_US: u64 = 100_000;

/// cgroup v1 `cpu.shares` range and default.
pub const SHARES_MIN: u64 = 2;
pub const SHARES_MAX: u64 = 262_144;
pub const SHARES_DEFAULT: u64 = 1_024;
/// cgroup v2 `cpu.weight` range.
pub const WEIGHT_MIN: u64 = 1;
pub const WEIGHT_MAX: u64 = 10_000;

/// A CFS bandwidth limit as the kernel takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CfsQuota {
    /// CPU time the group may use per period, µs (`cpu.cfs_quota_us`, first field of
    /// `cpu.max`).
    pub quota_us: u64,
    /// Length of a period, µs (`cpu.cfs_period_us`, second field of `cpu.max`).
    pub period_us: u64,
}

impl CfsQuota {
    /// The limit in CPUs (quota / period).
    pub fn cpus(&self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }

    /// Whether the kernel accepts these values: quota at least 1 ms, period 1 ms..1 s.
    pub fn check_kernel(&self) -> Result<(), UnitError> {
        if self.period_us < KERNEL_MIN_US || self.period_us > KERNEL_MAX_PERIOD_US {
            return Err(UnitError::Refused {
                value: format!("{} µs", self.period_us),
                why: "the kernel takes a CFS period of 1 ms to 1 s (EINVAL otherwise)".into(),
            });
        }
        if self.quota_us < KERNEL_MIN_US {
            return Err(UnitError::Refused {
                value: format!("{} µs", self.quota_us),
                why: "the kernel takes a CFS quota of at least 1 ms (EINVAL otherwise)".into(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for CfsQuota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} µs per {} µs ({:.3} CPUs)",
            self.quota_us,
            self.period_us,
            self.cpus()
        )
    }
}

/// A CPU limit that cannot be read or that the system it imitates would refuse. Each
/// names the value as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("`{value}` is not {expected}")]
    Syntax {
        value: String,
        expected: &'static str,
    },
    #[error("`{value}`: {why}")]
    Refused { value: String, why: String },
}

fn syntax(value: &str, expected: &'static str) -> UnitError {
    UnitError::Syntax {
        value: value.to_string(),
        expected,
    }
}

fn refused(value: &str, why: impl Into<String>) -> UnitError {
    UnitError::Refused {
        value: value.to_string(),
        why: why.into(),
    }
}

/// A non-negative decimal as written: `[+]digits[.digits]` (either side may be empty,
/// not both), held as `digits / 10^frac_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    digits: u128,
    frac_len: u32,
    /// The integer part has a leading zero followed by more digits ("040").
    leading_zero: bool,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        let t = text.strip_prefix('+').unwrap_or(text);
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) => (i, f),
            None => (t, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        // u128 holds 38 decimal digits; more would be a typo, not a CPU count.
        if int.len() + frac.len() > 36 {
            return None;
        }
        let mut digits: u128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            digits = digits * 10 + u128::from(b - b'0');
        }
        Some(Decimal {
            digits,
            frac_len: frac.len() as u32,
            leading_zero: int.len() > 1 && int.starts_with('0'),
        })
    }

    /// The value times 10^scale: the whole part, and whether nothing was cut off.
    fn scaled(&self, scale: u32) -> (u128, bool) {
        if scale >= self.frac_len {
            (self.digits * 10u128.pow(scale - self.frac_len), true)
        } else {
            let div = 10u128.pow(self.frac_len - scale);
            (self.digits / div, self.digits.is_multiple_of(div))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Docker and Podman

/// Docker's `--cpus` text as nano-CPUs, as docker/cli's `ParseCPUs` reads it: the exact
/// value times 10^9, refused when that is not a whole number ("value is too precise").
/// Only decimals are read here (Docker's parser also takes `1/2` and `5e-1`); a negative
/// value is refused as the daemon refuses it.
pub fn parse_docker_cpus(text: &str) -> Result<u64, UnitError> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('-') {
        if Decimal::parse(rest).is_some() {
            return Err(refused(
                text,
                "Docker refuses a negative --cpus (\"range of CPUs is from 0.01 to N\")",
            ));
        }
    }
    let d = Decimal::parse(t).ok_or_else(|| syntax(text, "a number of CPUs such as 0.5"))?;
    let (nano, exact) = d.scaled(9);
    if !exact {
        return Err(refused(
            text,
            "Docker refuses more than 9 decimals (\"value is too precise\")",
        ));
    }
    u64::try_from(nano).map_err(|_| refused(text, "too many CPUs"))
}

/// What `docker run --cpus` writes, from nano-CPUs and the host's CPU count: period
/// 100 ms, `quota = nano * 100000 / 1e9` (rounded down). 0 means no limit (`None`).
/// Refused as Docker refuses it: more CPUs than the host has; and a quota under 1 ms,
/// which Docker passes on and the kernel refuses when the container starts.
pub fn docker_cpus(nano_cpus: u64, host_cpus: u32) -> Result<Option<CfsQuota>, UnitError> {
    let shown = || format!("{} CPUs", nano_cpus as f64 / 1e9);
    if nano_cpus == 0 {
        return Ok(None);
    }
    if nano_cpus > u64::from(host_cpus) * 1_000_000_000 {
        return Err(refused(
            &shown(),
            format!(
                "Docker refuses it: \"range of CPUs is from 0.01 to {host_cpus}.00, as there are only {host_cpus} CPUs available\""
            ),
        ));
    }
    let quota = (u128::from(nano_cpus) * u128::from(DOCKER_PERIOD_US) / 1_000_000_000) as u64;
    let q = CfsQuota {
        quota_us: quota,
        period_us: DOCKER_PERIOD_US,
    };
    if quota < KERNEL_MIN_US {
        return Err(refused(
            &shown(),
            format!("Docker writes a quota of {quota} µs per 100 ms, which the kernel refuses (at least 1000 µs): the container does not start"),
        ));
    }
    Ok(Some(q))
}

/// What `docker run --cpu-quota Q --cpu-period P` writes (µs; a period of `None` is the
/// kernel's default, 100 ms), with Docker's checks: period 1 ms..1 s, quota at least
/// 1 ms. These flags cannot be combined with `--cpus` (Docker: "Conflicting options:
/// Nano CPUs and CPU Period cannot both be set"); the caller refuses that combination.
pub fn docker_cpu_quota(quota_us: u64, period_us: Option<u64>) -> Result<CfsQuota, UnitError> {
    let period = period_us.unwrap_or(DOCKER_PERIOD_US);
    if !(KERNEL_MIN_US..=KERNEL_MAX_PERIOD_US).contains(&period) {
        return Err(refused(
            &format!("--cpu-period {period}"),
            "Docker refuses it: \"CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)\"",
        ));
    }
    if quota_us < KERNEL_MIN_US {
        return Err(refused(
            &format!("--cpu-quota {quota_us}"),
            "Docker refuses it: \"CPU cfs quota can not be less than 1ms (i.e. 1000)\"",
        ));
    }
    Ok(CfsQuota {
        quota_us,
        period_us: period,
    })
}

/// Podman's `--cpus` text as the float its flag parser reads.
pub fn parse_podman_cpus(text: &str) -> Result<f64, UnitError> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| syntax(text, "a number of CPUs such as 0.5"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(refused(text, "not a number of CPUs"));
    }
    Ok(v)
}

/// What `podman run --cpus` writes: period 100 ms and `quota = int64(cpus * 100000.0)`,
/// a float product cut towards zero, so some two-decimal values lose a microsecond
/// (0.29 → 28999, 0.57 → 56999). 0 means no limit (`None`); a quota under 1 ms is
/// refused by the kernel when the container starts.
pub fn podman_cpus(cpus: f64) -> Result<Option<CfsQuota>, UnitError> {
    if cpus <= 0.0 {
        return Ok(None);
    }
    // Go's int64(f) and Rust's `as` both cut towards zero for values in range.
    let quota = (cpus * DOCKER_PERIOD_US as f64) as u64;
    if quota < KERNEL_MIN_US {
        return Err(refused(
            &format!("{cpus} CPUs"),
            format!("Podman writes a quota of {quota} µs per 100 ms, which the kernel refuses (at least 1000 µs)"),
        ));
    }
    Ok(Some(CfsQuota {
        quota_us: quota,
        period_us: DOCKER_PERIOD_US,
    }))
}

// ---------------------------------------------------------------------------------------
// Kubernetes

/// A Kubernetes CPU quantity (`500m`, `0.5`, `2`) as millicores, as
/// `resource.Quantity.MilliValue` gives it: rounded up to a whole millicore (`0.0005` and
/// `0.5m` are 1m). Only the forms people write for CPU are read (a decimal, or a decimal
/// with `m`); a negative quantity is refused as the API server refuses it.
pub fn parse_k8s_cpu(text: &str) -> Result<u64, UnitError> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(refused(
            text,
            "Kubernetes refuses a negative CPU quantity (\"must be greater than or equal to 0\")",
        ));
    }
    let (number, scale) = match t.strip_suffix('m') {
        Some(n) => (n, 0),
        None => (t, 3),
    };
    let d = Decimal::parse(number).ok_or_else(|| {
        syntax(
            text,
            "a Kubernetes CPU quantity such as `500m` (millicores) or `0.5` (CPUs)",
        )
    })?;
    let (whole, exact) = d.scaled(scale);
    let milli = if exact { whole } else { whole + 1 };
    u64::try_from(milli).map_err(|_| refused(text, "too many CPUs"))
}

/// Check a kubelet `--cpu-cfs-quota-period` (µs): 1 ms..1 s, as kubelet's configuration
/// validation requires.
pub fn kubelet_period(period_us: u64) -> Result<u64, UnitError> {
    if (KERNEL_MIN_US..=KERNEL_MAX_PERIOD_US).contains(&period_us) {
        Ok(period_us)
    } else {
        Err(refused(
            &format!("{period_us} µs"),
            "kubelet refuses it: \"cpuCFSQuotaPeriod (--cpu-cfs-quota-period) must be between 1ms and 1sec, inclusive\"",
        ))
    }
}

/// What kubelet writes for a CPU limit (`MilliCPUToQuota`) with the CFS period it uses
/// (`period_us`: 100 ms by default, or `--cpu-cfs-quota-period` with the
/// `CustomCPUCFSQuotaPeriod` gate on): `quota = milli * period / 1000`, rounded down, at
/// least 1000 µs. A limit of 0 sets no quota (`None`). The period is checked as kubelet
/// checks it.
pub fn kubelet_limit(milli_cpu: u64, period_us: u64) -> Result<Option<CfsQuota>, UnitError> {
    let period = kubelet_period(period_us)?;
    if milli_cpu == 0 {
        return Ok(None);
    }
    let quota = (u128::from(milli_cpu) * u128::from(period) / 1000) as u64;
    Ok(Some(CfsQuota {
        quota_us: quota.max(KUBELET_MIN_QUOTA_US),
        period_us: period,
    }))
}

/// What kubelet before Kubernetes 1.14 wrote when `--cpu-cfs-quota-period` was set without
/// the `CustomCPUCFSQuotaPeriod` gate (kubernetes/kubernetes #73264, #79833): the quota
/// computed for 100 ms, the period as configured. A 500m limit with a 10 ms period gives
/// 50000 µs per 10000 µs, 5 CPUs. (1.14-1.19 silently used 100 ms; since 1.20 kubelet
/// refuses to start.)
pub fn kubelet_limit_ungated_before_1_14(
    milli_cpu: u64,
    period_us: u64,
) -> Result<Option<CfsQuota>, UnitError> {
    Ok(
        kubelet_limit(milli_cpu, KUBELET_PERIOD_US)?.map(|q| CfsQuota {
            quota_us: q.quota_us,
            period_us,
        }),
    )
}

/// kubelet's `cpu.shares` for a CPU request (`MilliCPUToShares`):
/// `milli * 1024 / 1000`, rounded down, clamped to 2..262144; no request gives 2.
pub fn kubelet_request_shares(milli_cpu: u64) -> u64 {
    let shares = (u128::from(milli_cpu) * 1024 / 1000).min(u128::from(SHARES_MAX)) as u64;
    shares.max(SHARES_MIN)
}

/// kubelet's `cpu.weight` for pod and QoS cgroups on v2 (`getCPUWeight`):
/// `1 + (shares - 2) * 9999 / 262142`, 10000 from 262144 shares up. kubelet never passes
/// fewer than 2 shares; fewer are read as 2 here.
pub fn kubelet_shares_to_weight(shares: u64) -> u64 {
    if shares >= SHARES_MAX {
        return WEIGHT_MAX;
    }
    1 + (shares.max(SHARES_MIN) - SHARES_MIN) * 9999 / 262_142
}

/// How an OCI runtime turns a container's `shares` into `cpu.weight` on cgroup v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharesToWeight {
    /// `1 + (shares - 2) * 9999 / 262142`: runc up to 1.3.1, crun up to 1.22 (Debian 12's
    /// runc 1.1.5 and crun 1.8.1). 1024 shares give weight 39, not the default 100.
    Linear,
    /// `ceil(10^((l² + 125 l) / 612 - 7/34))` with `l = log2(shares)`, clamped to
    /// 1..10000: opencontainers/cgroups v0.0.3 and later (runc 1.3.2, 1.4), crun 1.23.
    /// Maps 2 → 1, 1024 → 100, 262144 → 10000.
    Quadratic,
}

/// A container's `cpu.weight` from OCI `shares` by `rule`. 0 means unset (0).
pub fn oci_shares_to_weight(shares: u64, rule: SharesToWeight) -> u64 {
    if shares == 0 {
        return 0;
    }
    match rule {
        SharesToWeight::Linear => {
            // runc and crun leave out-of-range shares to wrap or be refused by the
            // kernel; the range ends are kept here.
            let s = shares.clamp(SHARES_MIN, SHARES_MAX);
            1 + (s - SHARES_MIN) * 9999 / 262_142
        }
        SharesToWeight::Quadratic => {
            if shares <= SHARES_MIN {
                return WEIGHT_MIN;
            }
            if shares >= SHARES_MAX {
                return WEIGHT_MAX;
            }
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

// ---------------------------------------------------------------------------------------
// systemd

/// systemd's `CPUQuota=` text as permyriad (1/100 of a percent), as
/// `config_parse_cpu_quota` reads it: `40%` (up to two decimals), `400‰` (one decimal)
/// or `4000‱`, more than 0. systemd 252 reads an integer part with a leading zero as
/// octal (`040%` is 32%); such text is refused here rather than read silently.
pub fn parse_systemd_cpu_quota(text: &str) -> Result<u64, UnitError> {
    let t = text.trim();
    let (number, scale, max_decimals) = if let Some(n) = t.strip_suffix('%') {
        (n, 2, 2)
    } else if let Some(n) = t.strip_suffix('‰') {
        (n, 1, 1)
    } else if let Some(n) = t.strip_suffix('‱') {
        (n, 0, 0)
    } else {
        return Err(syntax(
            text,
            "a systemd CPUQuota= percentage such as `40%` (or `400‰`, `4000‱`)",
        ));
    };
    let d = Decimal::parse(number).filter(|d| {
        // systemd wants digits before a point and after it ("40.%" and ".5%" are refused).
        !number.ends_with('.')
            && !number.trim_start_matches('+').starts_with('.')
            && d.frac_len <= max_decimals
    });
    let d = d.ok_or_else(|| {
        syntax(
            text,
            "a systemd CPUQuota= percentage with at most two decimals, such as `40%` or `40.25%`",
        )
    })?;
    if d.leading_zero {
        return Err(refused(
            text,
            "systemd reads a leading zero as octal (040% is 32%); write the number without it",
        ));
    }
    let (v, _) = d.scaled(scale);
    if v == 0 {
        return Err(refused(text, "systemd refuses a CPU quota of 0"));
    }
    u64::try_from(v).map_err(|_| refused(text, "too large"))
}

/// What systemd writes for `CPUQuota=` (permyriad) and `CPUQuotaPeriodSec=` (µs, `None`
/// for the default 100 ms): the quota as µs per CPU second (`permyriad * 100`); the period
/// clamped to 1 ms..1 s and raised so that the quota per period is at least 1 ms
/// (`cgroup_cpu_adjust_period`); then `quota = max(per_sec * period / 1e6, 1000)`,
/// rounded down.
pub fn systemd_cpu_quota(permyriad: u64, period_us: Option<u64>) -> CfsQuota {
    let per_sec = permyriad.max(1) * USEC_PER_SEC / 10_000;
    let period = period_us.unwrap_or(SYSTEMD_PERIOD_US);
    let period = period
        .max(KERNEL_MIN_US)
        .max(KERNEL_MIN_US * USEC_PER_SEC / per_sec)
        .min(KERNEL_MAX_PERIOD_US);
    let quota = (u128::from(per_sec) * u128::from(period) / u128::from(USEC_PER_SEC)) as u64;
    CfsQuota {
        quota_us: quota.max(KERNEL_MIN_US),
        period_us: period,
    }
}

/// What runc's systemd cgroup driver writes for an OCI quota/period: the quota per CPU
/// second rounded up to a multiple of 10 ms (1%), and the quota recomputed from it
/// (`addCPUQuota`), so that the value systemd holds and the value in the cgroup agree.
pub fn runc_systemd_driver_quota(quota_us: u64, period_us: u64) -> CfsQuota {
    let period = if period_us == 0 {
        SYSTEMD_PERIOD_US
    } else {
        period_us
    };
    let per_sec = quota_us * USEC_PER_SEC / period;
    if per_sec.is_multiple_of(10_000) {
        return CfsQuota {
            quota_us,
            period_us: period,
        };
    }
    let per_sec = (per_sec / 10_000 + 1) * 10_000;
    CfsQuota {
        quota_us: per_sec * period / USEC_PER_SEC,
        period_us: period,
    }
}

#[cfg(test)]
mod tests;
