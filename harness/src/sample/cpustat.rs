//! A cgroup's `cpu.stat`: CFS bandwidth counters in one unit (ns) whatever the version.
//!
//! | meaning | v1 name (unit) | v2 name (unit) |
//! | --- | --- | --- |
//! | periods with runnable tasks | nr_periods | nr_periods |
//! | periods that ran out of quota | nr_throttled | nr_throttled |
//! | total time threads were throttled | throttled_time (ns) | throttled_usec (µs) |
//! | periods that used burst | nr_bursts | nr_bursts |
//! | run time taken from burst | burst_time (ns) | burst_usec (µs) |
//! | CPU time used | (cpuacct.usage, ns) | usage_usec (µs) |

/// Counters read from cpu.stat, in ns for times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CpuStat {
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_ns: u64,
    pub nr_bursts: u64,
    pub burst_ns: u64,
    /// v2 only (`usage_usec`); v1 usage comes from cpuacct.usage.
    pub usage_ns: Option<u64>,
    /// Which of the counters above the file had: a missing counter reads 0 above, and
    /// this tells that 0 from "not reported".
    pub has: Has,
}

/// Which groups of cpu.stat counters a kernel printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Has {
    /// nr_periods, nr_throttled and throttled time. v1 always prints them (its cpu.stat
    /// exists only with CONFIG_CFS_BANDWIDTH); v2 only where the cpu controller is enabled
    /// for the cgroup and the kernel has CONFIG_CFS_BANDWIDTH (else the file holds only
    /// usage_usec, user_usec, system_usec and later nice_usec).
    pub bandwidth: bool,
    /// nr_bursts and burst time: kernels from 5.13 (v1) and 5.14 (v2).
    pub burst: bool,
}

impl Has {
    /// What a kernel with every counter prints.
    pub const ALL: Has = Has {
        bandwidth: true,
        burst: true,
    };
}

impl CpuStat {
    /// Parse cpu.stat text of either version. Unknown keys are skipped; a known key with a
    /// value that is not a number is an error naming the key; `has` says which counters
    /// were there.
    pub fn parse(text: &str) -> Result<CpuStat, String> {
        let mut s = CpuStat::default();
        for line in text.lines() {
            let mut it = line.split_ascii_whitespace();
            let (Some(key), Some(value)) = (it.next(), it.next()) else {
                continue;
            };
            match key {
                "nr_periods" => s.has.bandwidth = true,
                "nr_bursts" => s.has.burst = true,
                _ => {}
            }
            let field: Option<(&mut u64, u64)> = match key {
                "nr_periods" => Some((&mut s.nr_periods, 1)),
                "nr_throttled" => Some((&mut s.nr_throttled, 1)),
                "throttled_time" => Some((&mut s.throttled_ns, 1)),
                "throttled_usec" => Some((&mut s.throttled_ns, 1000)),
                "nr_bursts" => Some((&mut s.nr_bursts, 1)),
                "burst_time" => Some((&mut s.burst_ns, 1)),
                "burst_usec" => Some((&mut s.burst_ns, 1000)),
                "usage_usec" => {
                    let v: u64 = value.parse().map_err(|_| bad(key, value))?;
                    s.usage_ns = Some(v.checked_mul(1000).ok_or_else(|| bad(key, value))?);
                    None
                }
                _ => None,
            };
            if let Some((slot, scale)) = field {
                let v: u64 = value.parse().map_err(|_| bad(key, value))?;
                *slot = v.checked_mul(scale).ok_or_else(|| bad(key, value))?;
            }
        }
        Ok(s)
    }
}

fn bad(key: &str, value: &str) -> String {
    format!("cpu.stat: `{key}` has value `{value}`, not a number")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_times_are_ns() {
        let s = CpuStat::parse(
            "nr_periods 36\nnr_throttled 24\nthrottled_time 1430000000\nnr_bursts 2\nburst_time 5000000\nwait_sum 0\n",
        )
        .unwrap();
        assert_eq!(s.nr_periods, 36);
        assert_eq!(s.nr_throttled, 24);
        assert_eq!(s.throttled_ns, 1_430_000_000);
        assert_eq!(s.nr_bursts, 2);
        assert_eq!(s.burst_ns, 5_000_000);
        assert_eq!(s.usage_ns, None);
    }

    #[test]
    fn v2_times_are_converted_from_us() {
        let s = CpuStat::parse(
            "usage_usec 2000000\nuser_usec 1900000\nsystem_usec 100000\nnr_periods 5\nnr_throttled 4\nthrottled_usec 240000\nnr_bursts 0\nburst_usec 0\n",
        )
        .unwrap();
        assert_eq!(s.usage_ns, Some(2_000_000_000));
        assert_eq!(s.throttled_ns, 240_000_000);
        assert_eq!(s.nr_throttled, 4);
    }

    #[test]
    fn old_kernels_without_burst_fields_read_zero() {
        let s = CpuStat::parse("nr_periods 1\nnr_throttled 0\nthrottled_time 0\n").unwrap();
        assert_eq!(s.nr_bursts, 0);
        assert_eq!(
            s.has,
            Has {
                bandwidth: true,
                burst: false
            }
        );
    }

    #[test]
    fn garbage_value_names_the_key() {
        let e = CpuStat::parse("nr_periods x\n").unwrap_err();
        assert!(e.contains("nr_periods"), "{e}");
    }

    #[test]
    fn a_value_too_large_for_ns_is_an_error_not_an_overflow() {
        // Found by the fuzz test: 2^64/1000 µs does not fit in ns.
        let e = CpuStat::parse("usage_usec 18446744073709552\n").unwrap_err();
        assert!(e.contains("usage_usec"), "{e}");
        assert!(CpuStat::parse("throttled_usec 18446744073709552\n").is_err());
    }
}
