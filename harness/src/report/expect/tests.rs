//! Tests of parsing and evaluating expectations.

use super::*;
use crate::report::read::Table;

fn table() -> Table {
    let cols = [
        "scenario",
        "run",
        "param_limiter.quota",
        "repeat",
        "quota_s",
        "throttled_pct",
        "latency_p99_s",
        "fast_iters_per_s",
    ];
    let rows = [
        ["s", "0", "40ms", "0", "0.04", "80", "0.44", ""],
        ["s", "1", "40ms", "1", "0.04", "82", "0.45", ""],
        ["s", "2", "40ms", "2", "0.04", "78", "0.43", ""],
        ["s", "3", "80ms", "0", "0.08", "10", "0.2", ""],
        ["s", "4", "80ms", "1", "0.08", "12", "0.21", ""],
        ["s", "5", "80ms", "2", "0.08", "11", "0.22", ""],
    ];
    Table::new(
        cols.iter().map(|s| s.to_string()).collect(),
        rows.iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect(),
    )
}

#[test]
fn parses_the_documented_forms() {
    let e = parse("throttled_pct < 20").unwrap();
    assert_eq!(
        (e.aggregate, e.column.as_str(), e.op, e.limit),
        (Aggregate::Every, "throttled_pct", Op::Lt, 20.0)
    );
    let e = parse("median(latency_p99_s) <= 50ms").unwrap();
    assert_eq!(e.aggregate, Aggregate::Median);
    assert!((e.limit - 0.05).abs() < 1e-15);
    let e = parse("[param_limiter.quota=40ms, group != b] upper95(throttled_s)>=1.5e-1").unwrap();
    assert_eq!(e.select.len(), 2);
    assert_eq!(
        e.select[0],
        Condition {
            column: "param_limiter.quota".into(),
            equal: true,
            value: "40ms".into()
        }
    );
    assert!(!e.select[1].equal);
    assert_eq!(e.aggregate, Aggregate::Upper(0.95));
    assert_eq!(e.op, Op::Ge);
    assert!((e.limit - 0.15).abs() < 1e-15);
    assert_eq!(
        parse("p90(x) == 3").unwrap().aggregate,
        Aggregate::Percentile(90.0)
    );
    assert_eq!(
        parse("lower99(x) != 3").unwrap().aggregate,
        Aggregate::Lower(0.99)
    );
    assert_eq!(parse("throttled_pct < 20%").unwrap().limit, 20.0);
    let e = parse(r#"[param_limiter="kind=cfs period=100ms quota=10ms"] cpu_share < 0.2"#).unwrap();
    assert_eq!(e.select[0].value, "kind=cfs period=100ms quota=10ms");
}

#[test]
fn rejects_with_a_reason() {
    for (text, says) in [
        ("", "expected a column"),
        ("throttled_pct = 3", "=="),
        ("throttled_pct 3", "expected <"),
        ("throttled_pct <", "expected a number"),
        ("throttled_pct < abc", "not a number"),
        ("throttled_pct < 3ms", "time unit"),
        ("latency_p99_s < 3%", "_pct"),
        ("latency_p99_s < 3 parsecs", "unknown unit"),
        ("average(x) < 3", "unknown aggregate"),
        ("upper100(x) < 3", "unknown aggregate"),
        ("median(x < 3", "expected `median(column)`"),
        ("[a=1 x < 3", "expected `]`"),
        ("[=1] x < 3", "column name"),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.message.contains(says), "{text}: {e}");
    }
}

#[test]
fn every_row_by_default_reports_the_worst() {
    let t = table();
    let v = evaluate(&parse("throttled_pct < 81").unwrap(), &t, &[]).unwrap();
    assert!(!v.held);
    assert_eq!(v.value, 82.0);
    assert_eq!(v.margin, -1.0);
    assert_eq!(v.worst.as_deref(), Some("run 1 (limiter.quota=40ms)"));
    let v = evaluate(&parse("throttled_pct > 5").unwrap(), &t, &[]).unwrap();
    assert!(v.held);
    assert_eq!(v.value, 10.0);
    assert!((v.relative.unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn selections_by_text_number_and_duration() {
    let t = table();
    let e = parse("[limiter.quota=40ms] median(latency_p99_s) <= 440ms").unwrap();
    let v = evaluate(&e, &t, &[]).unwrap();
    assert!(v.held);
    assert_eq!(v.values.len(), 3);
    assert!((v.value - 0.44).abs() < 1e-12);
    assert!(v.margin.abs() < 1e-12);
    let v = evaluate(
        &parse("[quota_s=80ms] max(throttled_pct) < 12.5").unwrap(),
        &t,
        &[],
    )
    .unwrap();
    assert_eq!((v.held, v.value), (true, 12.0));
    let w = parse_selection("param_limiter.quota=80ms").unwrap();
    let v = evaluate(&parse("throttled_pct < 20").unwrap(), &t, &w).unwrap();
    assert!(v.held);
    let v = evaluate(
        &parse("[repeat!=0] min(throttled_pct) == 11").unwrap(),
        &t,
        &w,
    )
    .unwrap();
    assert!(v.held);
}

#[test]
fn aggregates_and_bounds() {
    let t = table();
    let w = parse_selection("[param_limiter.quota=40ms]").unwrap();
    let ev = |s: &str| evaluate(&parse(s).unwrap(), &t, &w).unwrap();
    assert_eq!(ev("mean(throttled_pct) < 100").value, 80.0);
    assert_eq!(ev("p90(throttled_pct) < 100").value, 82.0);
    assert_eq!(ev("min(throttled_pct) < 100").value, 78.0);
    // mean 80, s = 2, n = 3: t(0.95, 2) = 2.919986
    let up = ev("upper95(throttled_pct) < 100").value;
    assert!(
        (up - (80.0 + 2.919986 * 2.0 / 3f64.sqrt())).abs() < 1e-4,
        "{up}"
    );
    let lo = ev("lower95(throttled_pct) > 0").value;
    assert!(
        (lo - (80.0 - 2.919986 * 2.0 / 3f64.sqrt())).abs() < 1e-4,
        "{lo}"
    );
}

#[test]
fn what_cannot_be_tested_says_why() {
    let t = table();
    let e = evaluate(&parse("nope < 3").unwrap(), &t, &[]).unwrap_err();
    assert!(e.message.contains("no column `nope`"), "{e}");
    let e = evaluate(&parse("fast_iters_per_s > 3").unwrap(), &t, &[]).unwrap_err();
    assert!(e.message.contains("is empty"), "{e}");
    let e = evaluate(
        &parse("[limiter.quota=10ms] throttled_pct < 3").unwrap(),
        &t,
        &[],
    )
    .unwrap_err();
    assert!(
        e.message.contains("selects no row") && e.message.contains("40ms, 80ms"),
        "{e}"
    );
    let e = evaluate(
        &parse("[run=0] upper95(throttled_pct) < 3").unwrap(),
        &t,
        &[],
    )
    .unwrap_err();
    assert!(e.message.contains("at least 2 runs"), "{e}");
}

#[test]
fn a_mistyped_column_is_caught_before_a_run_with_the_name_it_meant() {
    let header: Vec<String> = [
        "run",
        "latency_p99_s",
        "throttled_pct",
        "param_limiter.quota",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let e = parse("latency_p99 < 20").unwrap();
    let msg = check_columns(&e, &header).unwrap_err().to_string();
    assert!(msg.contains("did you mean `latency_p99_s`"), "{msg}");
    let e = parse("[limiter.quota=40ms] throttld_pct < 20").unwrap();
    let msg = check_columns(&e, &header).unwrap_err().to_string();
    assert!(msg.contains("did you mean `throttled_pct`"), "{msg}");
    assert!(check_columns(
        &parse("[limiter.quota=40ms] throttled_pct < 20").unwrap(),
        &header
    )
    .is_ok());
    // With a time unit on a column that is not in seconds, the parse says it.
    let msg = parse("latency_p99 < 20ms").unwrap_err().to_string();
    assert!(msg.contains("did you mean `latency_p99_s`"), "{msg}");
    // A word of one column only is that column; a word of several is not guessed at.
    let mut more = header.clone();
    more.push("latency_p999_s".into());
    more.push("throttled_s".into());
    assert_eq!(suggest("p99", &more), Some("latency_p99_s"));
    assert_eq!(suggest("p999", &more), Some("latency_p999_s"));
    assert_eq!(suggest("latency", &more), None);
}

#[test]
fn a_bare_number_against_seconds_is_pointed_out() {
    let n = notes(&parse("latency_p99_s < 20").unwrap());
    assert_eq!(n.len(), 1);
    assert!(n[0].contains("20 s"), "{n:?}");
    assert!(notes(&parse("latency_p99_s < 20ms").unwrap()).is_empty());
    assert!(notes(&parse("throttled_pct < 20").unwrap()).is_empty());
    assert!(notes(&parse("latency_p99_s < 0.5").unwrap()).is_empty());
}
