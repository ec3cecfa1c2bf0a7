//! Units and formatting, in one place: values in a column's unit for people (`human`,
//! `signed`: seconds as s/ms/µs by the column's `_s` suffix, percentages by `_pct`),
//! numbers for plot axes, and UTC dates for folder names and `run.json`.
//!
//! Result files keep base units (seconds, CPUs, counts); only what people read is
//! formatted here.
//!
//! `cpu_limits`: CPU limits in the units people write (Docker `--cpus`, Kubernetes
//! millicores, systemd `CPUQuota=`) turned into CFS quota/period and weights the way each
//! system does it.

pub mod cpu_limits;

/// A value in a column's unit, for people: seconds as s/ms/µs, percent with %.
pub fn human(column: &str, v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if column.ends_with("_s") && !column.ends_with("_per_s") {
        let a = v.abs();
        if a != 0.0 && a < 1e-3 {
            format!("{:.1} µs", v * 1e6)
        } else if a != 0.0 && a < 1.0 {
            format!("{:.2} ms", v * 1e3)
        } else {
            format!("{v:.4} s")
        }
    } else if column.ends_with("_pct") {
        format!("{v:.2}%")
    } else if v.abs() >= 1e6 {
        // Large rates (steps per s, bytes per s) in SI prefixes, four digits.
        let (d, p) = if v.abs() >= 1e12 {
            (1e12, "T")
        } else if v.abs() >= 1e9 {
            (1e9, "G")
        } else {
            (1e6, "M")
        };
        format!("{:.4} {p}", v / d)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

/// A difference or margin: like `human` with its sign, but a difference of percentages
/// is in percentage points ("+1.96 points", not "+1.96%").
pub fn signed(column: &str, v: f64) -> String {
    // -0.0 (an equality that holds) reads as 0.
    let v = v + 0.0;
    if v == 0.0 {
        return "0".to_string();
    }
    if column.ends_with("_pct") {
        return format!("{v:+.2} points");
    }
    let h = human(column, v);
    if v >= 0.0 {
        format!("+{h}")
    } else {
        h
    }
}

/// Seconds for an axis label: "440 ms", "2.5 s", "120 µs".
pub fn fmt_seconds(v: f64) -> String {
    let a = v.abs();
    let trim = |x: f64| {
        let s = format!("{x:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    };
    if a == 0.0 {
        "0".to_string()
    } else if a < 1e-3 {
        format!("{} µs", trim(v * 1e6))
    } else if a < 1.0 {
        format!("{} ms", trim(v * 1e3))
    } else {
        format!("{} s", trim(v))
    }
}

/// A plain number for an axis label, without trailing zeros; k, M, G for large ones.
pub fn fmt_number(v: f64) -> String {
    let a = v.abs();
    let trim = |x: f64| {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    // An axis step landing next to zero by rounding (-2.8e-17) is zero.
    if a < 1e-12 {
        return "0".to_string();
    }
    if a >= 1e9 {
        format!("{} G", trim(v / 1e9))
    } else if a >= 1e6 {
        format!("{} M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{} k", trim(v / 1e3))
    } else if a != 0.0 && a < 1e-3 {
        format!("{v:.1e}")
    } else {
        trim(v)
    }
}

/// Whether a column is in seconds (`_s`, but not a rate `_per_s`).
pub fn is_seconds(column: &str) -> bool {
    column.ends_with("_s") && !column.ends_with("_per_s")
}

/// UTC now as `YYYYmmddTHHMMSSZ` (for folder names) and ISO 8601.
pub fn utc_now() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc_from_unix(secs)
}

fn utc_from_unix(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (
        format!("{y:04}{mo:02}{d:02}T{h:02}{m:02}{s:02}Z"),
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_their_columns_units() {
        assert_eq!(human("latency_p99_s", 0.4394), "439.40 ms");
        assert_eq!(human("wall_s", 9.4), "9.4000 s");
        assert_eq!(human("gap_max_s", 0.000_12), "120.0 µs");
        assert_eq!(human("fast_iters_per_s", 3.5e9), "3.5000 G");
        assert_eq!(human("fast_iters_per_s", 1_780_959_137.149_7), "1.7810 G");
        assert_eq!(human("requests", 20.0), "20");
        assert_eq!(human("throttled_pct", 66.129), "66.13%");
        assert_eq!(human("cpu_share", 0.0), "0");
        assert_eq!(signed("throttled_pct", 1.96), "+1.96 points");
        assert_eq!(signed("latency_p99_s", -0.02), "-20.00 ms");
        assert_eq!(signed("x", -0.0), "0");
    }

    #[test]
    fn axis_labels() {
        assert_eq!(fmt_seconds(0.44), "440 ms");
        assert_eq!(fmt_seconds(0.0001), "100 µs");
        assert_eq!(fmt_seconds(2.5), "2.5 s");
        assert_eq!(fmt_number(0.4), "0.4");
        assert_eq!(fmt_number(3.5e9), "3.5 G");
        assert_eq!(fmt_number(12345.0), "12.345 k");
        assert_eq!(fmt_number(1_500_000.0), "1.5 M");
        assert_eq!(fmt_number(-2.8e-17), "0");
        assert!(is_seconds("latency_p99_s") && !is_seconds("fast_iters_per_s"));
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(utc_from_unix(0).1, "1970-01-01T00:00:00Z");
        assert_eq!(utc_from_unix(1795349214).0, "20261122T120654Z");
        assert_eq!(utc_from_unix(951_782_400).1, "2000-02-29T00:00:00Z");
    }
}
