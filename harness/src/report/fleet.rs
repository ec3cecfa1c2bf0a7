//! `report DIR...`: result folders gathered from many machines (a `find-threshold` per
//! instance type, a scenario per kernel, a watch per node) in one table keyed by host,
//! kernel and scenario, for people (text), scripts (CSV, JSON) and CI job summaries or
//! pull-request comments (Markdown). `plot::fleet` draws the same rows.
//!
//! A run's or watch's folder gives a row per summary row (run and group); a threshold
//! search's folder gives one row with its findings. The machine comes from run.json's
//! `host` (or threshold.json's, for searches that record it).

use super::export::{Cell, Table};
use super::read::{run_label, ResultDir};
use serde_json::Value;

/// One row: a run and group of a folder, or a threshold search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetRow {
    pub host: String,
    pub kernel: String,
    /// "v1" or "v2".
    pub cgroup: String,
    pub scenario: String,
    /// The run and group ("run 0 main"), or "threshold".
    pub what: String,
    pub folder: String,
    pub outcome: String,
    /// CPU used, in CPUs.
    pub cpu_share: Option<f64>,
    pub throttled_pct: Option<f64>,
    pub throttled_s: Option<f64>,
    pub latency_p99_s: Option<f64>,
    /// A threshold search's sustainable duty share and its bracket, in CPUs.
    pub sustainable_share: Option<f64>,
    pub sustainable_low: Option<f64>,
    pub sustainable_high: Option<f64>,
    /// Seconds at full speed from rest before the rate collapsed.
    pub burst_budget_s: Option<f64>,
    /// The rate once throttled, as a share of the unthrottled rate.
    pub throttled_rate: Option<f64>,
}

/// The machine of a folder: (host name, kernel release, cgroup version).
fn machine(dir: &ResultDir) -> (String, String, String) {
    let host = dir
        .run_json
        .as_ref()
        .and_then(|j| j.get("host"))
        .or_else(|| dir.threshold.as_ref().and_then(|t| t.get("host")));
    let s = |k: &str| {
        host.and_then(|h| h.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut name = s("hostname");
    if let Some(vm) = host.and_then(|h| h.get("vm")).and_then(Value::as_str) {
        name.push_str(&format!(" [{vm}]"));
    }
    (name, s("kernel_release"), s("cgroup_version"))
}

/// The rows of one folder.
pub fn rows_of(dir: &ResultDir) -> Vec<FleetRow> {
    let (host, kernel, cgroup) = machine(dir);
    let base = FleetRow {
        host,
        kernel,
        cgroup,
        scenario: dir.scenario_name(),
        folder: dir.dir.display().to_string(),
        ..FleetRow::default()
    };
    let mut out = Vec::new();
    if let Some(t) = &dir.threshold {
        let f = |k: &str| t.get(k).and_then(Value::as_f64);
        out.push(FleetRow {
            what: "threshold".into(),
            outcome: if t.get("budget_exhausted").and_then(Value::as_bool) == Some(true) {
                "budget used up".into()
            } else {
                "found".into()
            },
            sustainable_share: f("sustainable_share"),
            sustainable_low: f("sustainable_share_low"),
            sustainable_high: f("sustainable_share_high"),
            burst_budget_s: f("burst_budget_s"),
            throttled_rate: f("throttled_share"),
            ..base.clone()
        });
    }
    if let Some(s) = &dir.summary {
        for i in 0..s.len() {
            out.push(FleetRow {
                what: run_label(s, i),
                outcome: s.text(i, "outcome").to_string(),
                cpu_share: s.num(i, "cpu_share"),
                throttled_pct: s.num(i, "throttled_pct"),
                throttled_s: s.num(i, "throttled_s"),
                latency_p99_s: s.num(i, "latency_p99_s"),
                ..base.clone()
            });
        }
    }
    out
}

/// Every folder's rows, ordered by host, kernel and scenario (then as found).
pub fn rows(dirs: &[ResultDir]) -> Vec<FleetRow> {
    let mut v: Vec<FleetRow> = dirs.iter().flat_map(rows_of).collect();
    v.sort_by(|a, b| (&a.host, &a.kernel, &a.scenario).cmp(&(&b.host, &b.kernel, &b.scenario)));
    v
}

/// The table of `rows`.
pub fn table(rows: &[FleetRow]) -> Table {
    let mut t = Table::new(
        "Results by host, kernel and scenario",
        &[
            "host",
            "kernel",
            "cgroup",
            "scenario",
            "what",
            "outcome",
            "cpu_share",
            "throttled_pct",
            "throttled_s",
            "latency_p99_ms",
            "sustainable_share",
            "sustainable_bracket",
            "burst_budget_s",
            "throttled_rate",
            "folder",
        ],
    );
    for r in rows {
        t.push(vec![
            r.host.clone().into(),
            r.kernel.clone().into(),
            r.cgroup.clone().into(),
            r.scenario.clone().into(),
            r.what.clone().into(),
            r.outcome.clone().into(),
            Cell::opt(r.cpu_share, 3),
            Cell::opt(r.throttled_pct, 1),
            Cell::opt(r.throttled_s, 3),
            Cell::opt(r.latency_p99_s.map(|x| x * 1e3), 1),
            Cell::opt(r.sustainable_share, 3),
            match (r.sustainable_low, r.sustainable_high) {
                (Some(lo), Some(hi)) => format!("{lo:.3}-{hi:.3}").into(),
                _ => Cell::Empty,
            },
            Cell::opt(r.burst_budget_s, 1),
            Cell::opt(r.throttled_rate, 3),
            r.folder.clone().into(),
        ]);
    }
    let kernels: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.kernel.as_str()).collect();
    let hosts: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.host.as_str()).collect();
    t.notes.push(format!(
        "{} row(s) from {} host(s) and {} kernel(s); cpu_share and sustainable_share in CPUs, throttled_rate as a share of the unthrottled rate",
        rows.len(),
        hosts.len(),
        kernels.len()
    ));
    t
}
