//! The `deploy/` folder, checked offline: the Kubernetes manifests against the API's
//! schema (`kubernetes-validate --strict`; `kubectl --dry-run=client` needs a reachable
//! API server for its type mapping, so it cannot run here), the rules with `promtool check
//! rules`, the dashboard's PromQL with promtool's parser, every metric name in rules and
//! dashboard against the exposition's own list, and the Job's scenario against the tool.

use std::collections::BTreeSet;
use std::process::Command;

use throttlebench::exposition::exported_series;

use crate::common::prometheus::{deploy_dir, program_or_skip, prometheus_or_skip, rule_file_of};
use crate::common::{tb, text, TempDir};

/// The metric names an expression reads: identifiers outside label matchers, ranges and
/// strings that are neither functions, keywords nor Grafana variables.
fn metric_names(expr: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
    ];
    let b = expr.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    let mut skip_parens_after = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' | b'[' => {
                let close = if c == b'{' { b'}' } else { b']' };
                while i < b.len() && b[i] != close {
                    if b[i] == b'"' {
                        i += 1;
                        while i < b.len() && b[i] != b'"' {
                            i += if b[i] == b'\\' { 2 } else { 1 };
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            b'(' if skip_parens_after => {
                while i < b.len() && b[i] != b')' {
                    i += 1;
                }
                i += 1;
                skip_parens_after = false;
            }
            b'$' => {
                // A Grafana variable: $name or ${name}.
                i += 1;
                if i < b.len() && b[i] == b'{' {
                    while i < b.len() && b[i] != b'}' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &expr[start..i];
                let rest = expr[i..].trim_start();
                let next = rest.chars().next();
                // `sum by (..) (..)`: an aggregation whose grouping comes first.
                let grouping_follows = ["by", "without"].iter().any(|k| {
                    rest.strip_prefix(k)
                        .is_some_and(|r| r.trim_start().starts_with('('))
                });
                if grouping_follows {
                    continue;
                }
                if matches!(
                    word,
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                ) {
                    skip_parens_after = next == Some('(');
                } else if next != Some('(') && !KEYWORDS.contains(&word) {
                    names.push(word.to_string());
                }
            }
            c if c.is_ascii_digit() || c == b'.' => {
                // A number or a duration (5m, 1.5e3).
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn the_name_finder_finds_metrics_and_nothing_else() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (le, host) (rate(a_bucket{le="1.0", x=~"$host"}[5m]))) / on (host) group_left b > bool 0.5 and c offset 5m"#
        ),
        vec!["a_bucket", "b", "c"]
    );
    assert_eq!(
        metric_names("rate(x_total[$__rate_interval]) * 60"),
        vec!["x_total"]
    );
    assert_eq!(
        metric_names("record:name:ratio / ignoring(le) y"),
        vec!["record:name:ratio", "y"]
    );
}

/// Every PromQL string of the dashboard: panel targets and template-variable queries.
fn dashboard_queries() -> (Vec<String>, Vec<String>) {
    let path = deploy_dir().join("grafana/throttlebench.json");
    let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut exprs = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    let mut templates = Vec::new();
    for v in d["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            templates.push(v["definition"].as_str().unwrap().to_string());
            templates.push(v["query"]["query"].as_str().unwrap().to_string());
        }
    }
    assert!(!exprs.is_empty());
    (exprs, templates)
}

#[test]
fn the_dashboard_reads_only_names_the_exposition_exports() {
    let exported: BTreeSet<String> = exported_series().into_iter().collect();
    let (exprs, templates) = dashboard_queries();
    for e in exprs.iter().chain(&templates) {
        // label_values(METRIC{...}, label): the metric is the first argument.
        let e = e
            .strip_prefix("label_values(")
            .map(|rest| rest.rsplit_once(',').unwrap().0)
            .unwrap_or(e);
        let names = metric_names(e);
        assert!(!names.is_empty(), "no metric in {e}");
        for n in names {
            assert!(
                exported.contains(&n),
                "{n} (in {e}) is not exported; exported: {exported:?}"
            );
        }
    }
}

#[test]
fn the_dashboard_queries_parse_as_promql() {
    if !prometheus_or_skip("the_dashboard_queries_parse_as_promql") {
        return;
    }
    let (exprs, _) = dashboard_queries();
    // Grafana's variables as Prometheus would get them, then one recording rule each, so
    // that promtool parses them.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        let e = e
            .replace("$__rate_interval", "1m")
            .replace("$__interval", "1m")
            .replace("$host", ".*")
            .replace("$group", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {}\n",
            serde_json::to_string(&e).unwrap()
        ));
    }
    let dir = TempDir::new("dashboard");
    let file = dir.file("dashboard-rules.yaml", &rules);
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{rules}", text(&out));
}

#[test]
fn the_rules_pass_promtool_and_read_only_exported_names() {
    let yaml = std::fs::read_to_string(deploy_dir().join("prometheusrule.yaml")).unwrap();
    assert!(yaml.contains("\napiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n"));
    let rules = rule_file_of(&yaml);
    // Names: exported ones, or recorded by the file itself.
    let exported: BTreeSet<String> = exported_series().into_iter().collect();
    let recorded: BTreeSet<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .map(|s| s.trim().to_string())
        .collect();
    // Each `expr:` with the lines indented deeper than it (a block or a folded scalar).
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut exprs = Vec::new();
    let mut lines = rules.lines().peekable();
    while let Some(l) = lines.next() {
        let Some(first) = l.trim().strip_prefix("expr:") else {
            continue;
        };
        let mut e = first.trim().trim_start_matches('|').to_string();
        while let Some(next) = lines.next_if(|n| n.trim().is_empty() || indent(n) > indent(l)) {
            e.push(' ');
            e.push_str(next.trim());
        }
        exprs.push(e);
    }
    assert!(exprs.len() >= 6, "{exprs:?}");
    for e in &exprs {
        let names = metric_names(e);
        assert!(!names.is_empty(), "no metric in {e}");
        for n in names {
            assert!(
                exported.contains(&n) || recorded.contains(&n),
                "{n} (in {e}) is neither exported nor recorded"
            );
        }
    }
    if !prometheus_or_skip("the_rules_pass_promtool_and_read_only_exported_names") {
        return;
    }
    let dir = TempDir::new("rules");
    let file = dir.file("rules.yaml", &rules);
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SUCCESS: 6 rules found"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_manifests_match_the_kubernetes_schema() {
    if !program_or_skip(
        "the_manifests_match_the_kubernetes_schema",
        "kubernetes-validate",
        "PyPI kubernetes-validate",
    ) {
        return;
    }
    // The oldest and the newest Kubernetes the validator has schemas for.
    for version in ["1.25.0", "1.37.0"] {
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "-k", version])
            .arg(deploy_dir().join("daemonset.yaml"))
            .arg(deploy_dir().join("job-template.yaml"))
            .output()
            .unwrap();
        let said = text(&out);
        assert!(out.status.success(), "{said}");
        assert_eq!(said.matches(" passed for resource ").count(), 5, "{said}");
    }
    // The CRDs' kinds are not in the Kubernetes schema (the validator warns and passes);
    // their shape is checked here and their rules by promtool above.
    for (file, kind) in [
        ("podmonitor.yaml", "PodMonitor"),
        ("prometheusrule.yaml", "PrometheusRule"),
    ] {
        let y = std::fs::read_to_string(deploy_dir().join(file)).unwrap();
        assert!(
            y.contains(&format!(
                "apiVersion: monitoring.coreos.com/v1\nkind: {kind}\nmetadata:\n  name: "
            )),
            "{file}"
        );
        assert!(y.contains("\n  namespace: throttlebench\n"), "{file}");
    }
}

#[test]
fn the_watch_serves_on_the_port_the_pods_and_podmonitor_name() {
    let ds = std::fs::read_to_string(deploy_dir().join("daemonset.yaml")).unwrap();
    assert!(
        ds.contains("            - watch\n"),
        "the DaemonSet runs `watch`"
    );
    assert!(ds.contains("--children=/host/sys/fs/cgroup/"));
    let port = ds
        .lines()
        .find_map(|l| l.trim().strip_prefix("- --serve=0.0.0.0:"))
        .expect("--serve in the DaemonSet");
    assert!(
        ds.contains(&format!("containerPort: {port}\n")),
        "port {port}"
    );
    assert!(
        ds.contains("readOnly: true"),
        "the host cgroup mount is read-only"
    );
    assert!(!ds.contains("privileged: true") && !ds.contains("hostPID: true"));
    let pm = std::fs::read_to_string(deploy_dir().join("podmonitor.yaml")).unwrap();
    assert!(pm.contains("- port: metrics\n") && ds.contains("- name: metrics\n"));
}

#[test]
fn the_job_template_s_scenario_is_one_the_tool_accepts() {
    let job = std::fs::read_to_string(deploy_dir().join("job-template.yaml")).unwrap();
    let mut lines = job
        .lines()
        .skip_while(|l| l.trim() != "scenario.toml: |")
        .skip(1);
    let scenario: String = lines
        .by_ref()
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
        .collect();
    assert!(scenario.contains("[limiter]"), "{scenario}");
    let dir = TempDir::new("job-scenario");
    let file = dir.file("scenario.toml", &scenario);
    let out = tb()
        .args(["run", file.to_str().unwrap(), "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}
