//! A planned run's cgroup tree and changes in words, for `run --dry-run` (on stderr,
//! beside the plan as JSON on stdout).

use super::plan::{CfsLimit, GroupLimit, Limiter, PlannedRun, Weight, Workload};

fn cfs_text(c: &CfsLimit) -> String {
    let mut t = match c.quota_us {
        Some(q) => format!(
            "quota {q} µs per {} µs ({:.3} CPUs)",
            c.period_us,
            q as f64 / c.period_us as f64
        ),
        None => format!("no quota (max), period {} µs", c.period_us),
    };
    if c.burst_us > 0 {
        t.push_str(&format!(", burst {} µs", c.burst_us));
    }
    t
}

/// A limit in words: its settings, then where they came from.
pub fn limit_text(l: &GroupLimit) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &l.cfs {
        parts.push(cfs_text(c));
    }
    match l.weight {
        Some(Weight::V2(w)) => parts.push(format!("weight {w}")),
        Some(Weight::Shares(s)) => parts.push(format!("cpu.shares {s}")),
        None => {}
    }
    if let Some(c) = &l.cpuset {
        parts.push(format!("cpus {c}"));
    }
    let mut t = parts.join(", ");
    if !l.from.is_empty() {
        t.push_str(&format!(" [{}]", l.from.join("; ")));
    }
    t
}

/// The run's cgroups as a tree, one line each, then its changes.
pub fn tree(run: &PlannedRun) -> Vec<String> {
    let top = match &run.limiter {
        Limiter::Cfs(c) => cfs_text(c),
        other => format!("limiter {}", other.name()),
    };
    let mut lines = vec![format!("run cgroup: {top}")];
    fn walk(run: &PlannedRun, parent: Option<usize>, prefix: &str, lines: &mut Vec<String>) {
        let kids: Vec<usize> = (0..run.groups.len())
            .filter(|&g| run.groups[g].parent == parent)
            .collect();
        for (i, &g) in kids.iter().enumerate() {
            let last = i + 1 == kids.len();
            let grp = &run.groups[g];
            let mut t = format!("{prefix}{}{}", if last { "└─ " } else { "├─ " }, grp.name);
            if let Some(l) = &grp.limit {
                t.push_str(&format!(": {}", limit_text(l)));
            }
            if let Some(w) = grp.weight {
                t.push_str(&format!(", weight {w}"));
            }
            if grp.workload != Workload::None {
                t.push_str(&format!(" (runs {})", grp.workload.name()));
            }
            lines.push(t);
            let deeper = format!("{prefix}{}", if last { "   " } else { "│  " });
            walk(run, Some(g), &deeper, lines);
        }
    }
    if run.has_child_cgroups() {
        walk(run, None, "", &mut lines);
    } else {
        lines[0].push_str(&format!(" (runs {})", run.workload().name()));
    }
    for c in &run.changes {
        let whom = c
            .group
            .map(|g| run.groups[g].name.as_str())
            .unwrap_or("the run cgroup");
        lines.push(format!("at {}: {whom} → {}", c.at, limit_text(&c.limit)));
    }
    lines
}

#[cfg(test)]
mod tests {
    use crate::scenario;

    #[test]
    fn a_tree_and_its_changes_in_words() {
        let text = r#"
name = "pod"
[limiter]
kind = "none"
[[group]]
name = "app"
parent = "pod"
limit = { millicores = 500 }
workload = { kind = "duty", on = "1s", duration = "10s" }
[[group]]
name = "pod"
limit = { cpus = 1.0, request = "250m" }
[[change]]
at = "5s"
group = "pod"
limit = { cpu_quota_pct = 50 }
"#;
        let sc = scenario::parse(text, "t.toml").unwrap();
        let plan = scenario::resolve(&sc, "t.toml", &"0-1".parse().unwrap()).unwrap();
        let lines = super::tree(&plan.runs[0]);
        assert_eq!(lines[0], "run cgroup: limiter none");
        assert!(
            lines[1]
                .starts_with("└─ pod: quota 100000 µs per 100000 µs (1.000 CPUs), cpu.shares 256"),
            "{lines:#?}"
        );
        assert!(
            lines[2].starts_with(
                "   └─ app: quota 50000 µs per 100000 µs (0.500 CPUs) [millicores = 500m"
            ),
            "{lines:#?}"
        );
        assert!(lines[2].ends_with("(runs duty)"), "{lines:#?}");
        assert!(
            lines[3].starts_with("at 5s: pod → quota 50000 µs per 100000 µs"),
            "{lines:#?}"
        );
    }
}
