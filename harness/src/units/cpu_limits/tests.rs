//! The conversions against values worked out by hand from each system's source, with the
//! edge cases that trip people: kubelet's 1 ms minimum quota, periods that do not divide
//! evenly, the 10 ms period of kubernetes/kubernetes #79833, the ends of the shares and
//! weight ranges, and the text forms each system takes or refuses.

use super::*;

fn q(quota_us: u64, period_us: u64) -> CfsQuota {
    CfsQuota {
        quota_us,
        period_us,
    }
}

// --- Docker and Podman -----------------------------------------------------------------

#[test]
fn docker_cpus_half_is_50ms_per_100ms() {
    assert_eq!(parse_docker_cpus("0.5"), Ok(500_000_000));
    assert_eq!(docker_cpus(500_000_000, 2), Ok(Some(q(50_000, 100_000))));
    assert_eq!(
        docker_cpus(parse_docker_cpus("1.5").unwrap(), 2),
        Ok(Some(q(150_000, 100_000)))
    );
    assert_eq!(
        docker_cpus(parse_docker_cpus(".4").unwrap(), 2),
        Ok(Some(q(40_000, 100_000)))
    );
}

#[test]
fn docker_rounds_the_quota_down_to_a_microsecond() {
    // 0.123456789 CPUs: 123456789 ns per s; per 100 ms: 12345.6789 µs -> 12345.
    let nano = parse_docker_cpus("0.123456789").unwrap();
    assert_eq!(nano, 123_456_789);
    assert_eq!(docker_cpus(nano, 2), Ok(Some(q(12_345, 100_000))));
}

#[test]
fn docker_refuses_ten_decimals_negative_and_more_than_the_host_has() {
    let e = parse_docker_cpus("0.1234567891").unwrap_err();
    assert!(e.to_string().contains("too precise"), "{e}");
    assert!(e.to_string().contains("0.1234567891"), "{e}");
    // Trailing zeros are not extra precision.
    assert_eq!(parse_docker_cpus("0.5000000000"), Ok(500_000_000));
    let e = parse_docker_cpus("-1").unwrap_err();
    assert!(e.to_string().contains("negative"), "{e}");
    let e = docker_cpus(parse_docker_cpus("3").unwrap(), 2).unwrap_err();
    assert!(e.to_string().contains("only 2 CPUs"), "{e}");
    assert_eq!(docker_cpus(0, 2), Ok(None));
}

#[test]
fn docker_cpus_under_one_percent_gives_a_quota_the_kernel_refuses() {
    // 0.009 CPUs -> 900 µs per 100 ms: Docker does not check, the kernel says EINVAL.
    let e = docker_cpus(parse_docker_cpus("0.009").unwrap(), 2).unwrap_err();
    assert!(e.to_string().contains("900 µs"), "{e}");
    assert_eq!(
        docker_cpus(parse_docker_cpus("0.01").unwrap(), 2),
        Ok(Some(q(1_000, 100_000)))
    );
}

#[test]
fn docker_cpu_quota_and_period_flags_are_checked_as_docker_does() {
    assert_eq!(docker_cpu_quota(40_000, None), Ok(q(40_000, 100_000)));
    assert_eq!(docker_cpu_quota(4_000, Some(10_000)), Ok(q(4_000, 10_000)));
    assert!(docker_cpu_quota(999, None)
        .unwrap_err()
        .to_string()
        .contains("--cpu-quota 999"));
    assert!(docker_cpu_quota(5_000, Some(999))
        .unwrap_err()
        .to_string()
        .contains("--cpu-period 999"));
    assert!(docker_cpu_quota(5_000, Some(1_000_001)).is_err());
}

#[test]
fn docker_text_that_is_not_a_number_is_named() {
    for bad in ["", "half", "0.5cpu", "1,5", "0..5", "."] {
        let e = parse_docker_cpus(bad).unwrap_err();
        assert!(e.to_string().contains(&format!("`{bad}`")), "{bad}: {e}");
    }
}

#[test]
fn podman_cpus_cuts_the_float_product_towards_zero() {
    // Go: int64(0.29 * 100000.0) = 28999 (0.29 is 0.28999999999999998 as a double).
    assert_eq!(
        podman_cpus(parse_podman_cpus("0.29").unwrap()),
        Ok(Some(q(28_999, 100_000)))
    );
    assert_eq!(podman_cpus(0.57), Ok(Some(q(56_999, 100_000))));
    assert_eq!(podman_cpus(0.4), Ok(Some(q(40_000, 100_000))));
    assert_eq!(podman_cpus(0.8), Ok(Some(q(80_000, 100_000))));
    // Docker's exact arithmetic gives the full value for the same text.
    assert_eq!(
        docker_cpus(parse_docker_cpus("0.29").unwrap(), 2),
        Ok(Some(q(29_000, 100_000)))
    );
    assert_eq!(podman_cpus(0.0), Ok(None));
    assert!(podman_cpus(0.005).is_err());
    assert!(parse_podman_cpus("x")
        .unwrap_err()
        .to_string()
        .contains("`x`"));
    assert!(parse_podman_cpus("-1").is_err());
}

// --- Kubernetes ------------------------------------------------------------------------

#[test]
fn k8s_500m_and_half_are_the_same_quantity() {
    assert_eq!(parse_k8s_cpu("500m"), Ok(500));
    assert_eq!(parse_k8s_cpu("0.5"), Ok(500));
    assert_eq!(parse_k8s_cpu(".5"), Ok(500));
    assert_eq!(parse_k8s_cpu("2"), Ok(2_000));
    assert_eq!(parse_k8s_cpu("1.25"), Ok(1_250));
    assert_eq!(parse_k8s_cpu("0"), Ok(0));
}

#[test]
fn k8s_quantity_finer_than_a_millicore_rounds_up() {
    // resource.Quantity.MilliValue is ceil(q * 1000).
    assert_eq!(parse_k8s_cpu("0.0005"), Ok(1));
    assert_eq!(parse_k8s_cpu("0.5m"), Ok(1));
    assert_eq!(parse_k8s_cpu("1.0001"), Ok(1_001));
    assert_eq!(parse_k8s_cpu("100.0m"), Ok(100));
}

#[test]
fn k8s_bad_text_names_the_value() {
    for bad in ["500M", "half", "500 m", "m", "1e3", "-500m"] {
        let e = parse_k8s_cpu(bad).unwrap_err();
        assert!(e.to_string().contains(&format!("`{bad}`")), "{bad}: {e}");
    }
    assert!(parse_k8s_cpu("-1")
        .unwrap_err()
        .to_string()
        .contains("negative"));
}

#[test]
fn kubelet_limit_with_the_default_period() {
    assert_eq!(
        kubelet_limit(500, KUBELET_PERIOD_US),
        Ok(Some(q(50_000, 100_000)))
    );
    assert_eq!(
        kubelet_limit(2_500, KUBELET_PERIOD_US),
        Ok(Some(q(250_000, 100_000)))
    );
    assert_eq!(kubelet_limit(0, KUBELET_PERIOD_US), Ok(None));
}

#[test]
fn kubelet_raises_small_limits_to_its_1ms_minimum_quota() {
    // 10m is exactly 1 ms per 100 ms; 9m and 1m would be 900 and 100 µs.
    assert_eq!(
        kubelet_limit(10, KUBELET_PERIOD_US),
        Ok(Some(q(1_000, 100_000)))
    );
    assert_eq!(
        kubelet_limit(9, KUBELET_PERIOD_US),
        Ok(Some(q(1_000, 100_000)))
    );
    assert_eq!(
        kubelet_limit(1, KUBELET_PERIOD_US),
        Ok(Some(q(1_000, 100_000)))
    );
}

#[test]
fn kubelet_10ms_period_of_kubernetes_79833() {
    // With the gate on: 500m at 10 ms is 5 ms per 10 ms.
    assert_eq!(kubelet_limit(500, 10_000), Ok(Some(q(5_000, 10_000))));
    // The minimum quota bites ten times sooner: 50m would be 500 µs, raised to 1 ms,
    // twice the limit asked for.
    let lim = kubelet_limit(50, 10_000).unwrap().unwrap();
    assert_eq!(lim, q(1_000, 10_000));
    assert!((lim.cpus() - 0.1).abs() < 1e-12);
    // Before Kubernetes 1.14, without the gate: quota for 100 ms, period 10 ms: 5 CPUs.
    let bug = kubelet_limit_ungated_before_1_14(500, 10_000)
        .unwrap()
        .unwrap();
    assert_eq!(bug, q(50_000, 10_000));
    assert!((bug.cpus() - 5.0).abs() < 1e-12);
}

#[test]
fn kubelet_periods_that_do_not_divide_evenly_round_the_quota_down() {
    // 333m at 100 ms: 33300 exactly; at 33333 µs: 11099.889 -> 11099.
    assert_eq!(kubelet_limit(333, 100_000), Ok(Some(q(33_300, 100_000))));
    assert_eq!(kubelet_limit(333, 33_333), Ok(Some(q(11_099, 33_333))));
    // 1999m at 7 ms: 13993 µs exactly; 1m at 999999 µs: 999.999 -> 999 -> minimum 1000.
    assert_eq!(kubelet_limit(1_999, 7_000), Ok(Some(q(13_993, 7_000))));
    assert_eq!(kubelet_limit(1, 999_999), Ok(Some(q(1_000, 999_999))));
}

#[test]
fn kubelet_refuses_a_period_outside_1ms_to_1s() {
    assert_eq!(kubelet_limit(500, 1_000), Ok(Some(q(1_000, 1_000))));
    assert_eq!(
        kubelet_limit(500, 1_000_000),
        Ok(Some(q(500_000, 1_000_000)))
    );
    for bad in [999, 1_000_001, 0] {
        let e = kubelet_limit(500, bad).unwrap_err();
        assert!(e.to_string().contains("--cpu-cfs-quota-period"), "{e}");
        assert!(e.to_string().contains(&format!("{bad} µs")), "{e}");
    }
}

#[test]
fn kubelet_request_shares_min_and_max() {
    assert_eq!(kubelet_request_shares(0), 2);
    assert_eq!(kubelet_request_shares(1), 2); // 1.024 -> 1 -> 2
    assert_eq!(kubelet_request_shares(2), 2); // 2.048 -> 2
    assert_eq!(kubelet_request_shares(3), 3); // 3.072 -> 3
    assert_eq!(kubelet_request_shares(100), 102);
    assert_eq!(kubelet_request_shares(500), 512);
    assert_eq!(kubelet_request_shares(1_000), 1_024);
    assert_eq!(kubelet_request_shares(256_000), 262_144);
    assert_eq!(kubelet_request_shares(256_001), 262_144);
    assert_eq!(kubelet_request_shares(1_000_000), 262_144);
}

#[test]
fn kubelet_pod_weight_is_linear_with_its_ends() {
    assert_eq!(kubelet_shares_to_weight(2), 1);
    assert_eq!(kubelet_shares_to_weight(3), 1);
    assert_eq!(kubelet_shares_to_weight(102), 4);
    assert_eq!(kubelet_shares_to_weight(1_024), 39);
    assert_eq!(kubelet_shares_to_weight(262_143), 9_999);
    assert_eq!(kubelet_shares_to_weight(262_144), 10_000);
    assert_eq!(kubelet_shares_to_weight(1_000_000), 10_000);
}

#[test]
fn oci_weight_linear_and_quadratic_at_the_ends_and_the_default() {
    use SharesToWeight::*;
    for rule in [Linear, Quadratic] {
        assert_eq!(oci_shares_to_weight(0, rule), 0, "{rule:?}: 0 is unset");
        assert_eq!(oci_shares_to_weight(2, rule), 1, "{rule:?}");
        assert_eq!(oci_shares_to_weight(262_144, rule), 10_000, "{rule:?}");
    }
    assert_eq!(oci_shares_to_weight(1_024, Linear), 39);
    assert_eq!(oci_shares_to_weight(1_024, Quadratic), 100);
    // opencontainers/cgroups' own cases: just above the minimum, just below the maximum.
    assert_eq!(oci_shares_to_weight(3, Quadratic), 2);
    assert_eq!(oci_shares_to_weight(262_143, Quadratic), 10_000);
    assert_eq!(oci_shares_to_weight(1, Quadratic), 1);
    assert_eq!(oci_shares_to_weight(262_145, Quadratic), 10_000);
    // A 100m request (102 shares): 4 under the old rule, 17 under the new.
    assert_eq!(oci_shares_to_weight(102, Linear), 4);
    assert_eq!(oci_shares_to_weight(102, Quadratic), 17);
    // The quadratic rule grows with the shares.
    let mut last = 0;
    for s in (2..=262_144).step_by(997) {
        let w = oci_shares_to_weight(s, Quadratic);
        assert!(w >= last && (1..=10_000).contains(&w), "{s} -> {w}");
        last = w;
    }
}

// --- systemd ---------------------------------------------------------------------------

#[test]
fn systemd_cpu_quota_40_percent_with_the_default_period() {
    assert_eq!(parse_systemd_cpu_quota("40%"), Ok(4_000));
    assert_eq!(systemd_cpu_quota(4_000, None), q(40_000, 100_000));
    assert_eq!(systemd_cpu_quota(25_000, None), q(250_000, 100_000));
}

#[test]
fn systemd_cpu_quota_forms() {
    assert_eq!(parse_systemd_cpu_quota("40.25%"), Ok(4_025));
    assert_eq!(parse_systemd_cpu_quota("40.10%"), Ok(4_010));
    assert_eq!(parse_systemd_cpu_quota("+40%"), Ok(4_000));
    assert_eq!(parse_systemd_cpu_quota(" 40%"), Ok(4_000));
    assert_eq!(parse_systemd_cpu_quota("400‰"), Ok(4_000));
    assert_eq!(parse_systemd_cpu_quota("400.5‰"), Ok(4_005));
    assert_eq!(parse_systemd_cpu_quota("4005‱"), Ok(4_005));
    for bad in [
        "40",
        "40.125%",
        "400.25‰",
        "4005.5‱",
        "40.%",
        ".5%",
        "1e1%",
        "40 %",
        "-40%",
    ] {
        let e = parse_systemd_cpu_quota(bad).unwrap_err();
        assert!(e.to_string().contains(&format!("`{bad}`")), "{bad}: {e}");
    }
    let e = parse_systemd_cpu_quota("0%").unwrap_err();
    assert!(e.to_string().contains("of 0"), "{e}");
    let e = parse_systemd_cpu_quota("040%").unwrap_err();
    assert!(e.to_string().contains("octal"), "{e}");
}

#[test]
fn systemd_does_not_round_the_quota_to_whole_milliseconds() {
    // 40.25% per 100 ms: 40250 µs, not 41 ms.
    assert_eq!(systemd_cpu_quota(4_025, None), q(40_250, 100_000));
    // 33.33% at a 33 ms period: 333300 µs/s * 0.033 = 10998.9 -> 10998.
    assert_eq!(systemd_cpu_quota(3_333, Some(33_000)), q(10_998, 33_000));
}

#[test]
fn systemd_raises_the_period_so_the_quota_is_at_least_1ms() {
    // 40% with a 1 ms period: 400 µs would be too little; period becomes 2.5 ms.
    assert_eq!(systemd_cpu_quota(4_000, Some(1_000)), q(1_000, 2_500));
    // 10% with 10 ms: 1 ms per 10 ms, kept.
    assert_eq!(systemd_cpu_quota(1_000, Some(10_000)), q(1_000, 10_000));
    // 1000% with 1 ms: kept.
    assert_eq!(systemd_cpu_quota(100_000, Some(1_000)), q(10_000, 1_000));
    // A period above 1 s is cut to 1 s; one below 1 ms raised to it.
    assert_eq!(
        systemd_cpu_quota(4_000, Some(5_000_000)),
        q(400_000, 1_000_000)
    );
    assert_eq!(
        systemd_cpu_quota(25_000, Some(2_000_000)),
        q(2_500_000, 1_000_000)
    );
    assert_eq!(systemd_cpu_quota(100_000, Some(10)), q(10_000, 1_000));
    // 0.01% cannot reach 1 ms in any period up to 1 s: period 1 s, quota raised to 1 ms,
    // ten times the limit asked for.
    assert_eq!(systemd_cpu_quota(1, Some(10_000)), q(1_000, 1_000_000));
}

#[test]
fn runc_systemd_driver_rounds_up_to_10ms_per_second() {
    assert_eq!(
        runc_systemd_driver_quota(40_000, 100_000),
        q(40_000, 100_000)
    );
    // 40.5 ms per 100 ms = 405 ms/s -> 410 ms/s -> 41 ms per 100 ms.
    assert_eq!(
        runc_systemd_driver_quota(40_500, 100_000),
        q(41_000, 100_000)
    );
    // 4.05 ms per 10 ms -> 410 ms/s -> 4.1 ms per 10 ms.
    assert_eq!(runc_systemd_driver_quota(4_050, 10_000), q(4_100, 10_000));
    // Period 0 is the default 100 ms.
    assert_eq!(runc_systemd_driver_quota(12_345, 0), q(13_000, 100_000));
}

#[test]
fn kernel_range_check() {
    assert!(q(1_000, 1_000).check_kernel().is_ok());
    assert!(q(999, 100_000)
        .check_kernel()
        .unwrap_err()
        .to_string()
        .contains("999 µs"));
    assert!(q(1_000, 999).check_kernel().is_err());
    assert!(q(1_000, 1_000_001).check_kernel().is_err());
    assert_eq!(
        q(40_000, 100_000).to_string(),
        "40000 µs per 100000 µs (0.400 CPUs)"
    );
}
