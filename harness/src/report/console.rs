//! The line `run` prints for each run (and group): what people read first, from the
//! summary row and the planned run.

use super::summary::SummaryRow;
use crate::scenario::{Limiter, PlannedRun, Workload};

/// One run (or group) in a line: CPU, throttling, latency, the limit or target, leaks.
pub fn run_line(r: &SummaryRow, run: &PlannedRun) -> String {
    let ms = |v: Option<f64>| {
        v.map(|x| format!("{:.0}ms", x * 1e3))
            .unwrap_or_else(|| "-".into())
    };
    let mut s = match (r.nr_throttled, r.nr_periods, r.throttled_s) {
        (Some(n), Some(p), Some(t)) => format!(
            "cpu {:.3} CPUs, throttled {n}/{p} periods ({}), {t:.3}s throttled",
            r.cpu_share,
            r.throttled_pct
                .map(|p| format!("{p:.0}%"))
                .unwrap_or_else(|| "-".into()),
        ),
        _ => format!(
            "cpu {:.3} CPUs, throttling not reported by the kernel",
            r.cpu_share
        ),
    };
    if r.latency_p50_s.is_some() {
        s.push_str(&format!(
            ", latency p50 {} p99 {} max {}",
            ms(r.latency_p50_s),
            ms(r.latency_p99_s),
            ms(r.latency_max_s)
        ));
    }
    if let (Some(n), Some(t)) = (r.touched_requests, r.touched_p99_s) {
        s.push_str(&format!(
            ", {n} touched a throttled period (p99 {} against {})",
            ms(Some(t)),
            ms(r.clear_p99_s)
        ));
    }
    if let Some(rate) = r.achieved_rate {
        s.push_str(&format!(", {rate:.1} answers/s"));
    }
    if let Some(n) = r.non_2xx.filter(|n| *n > 0) {
        s.push_str(&format!(", {n} answers not 2xx"));
    }
    if let Some(e) = r.errors.filter(|e| *e > 0) {
        s.push_str(&format!(
            ", {e} requests failed ({} timed out)",
            r.timeouts.unwrap_or(0)
        ));
    }
    if let Some(n) = r.throttled_per_request {
        s.push_str(&format!(
            ", per request {:.1} throttled periods / {:.0}ms",
            n,
            r.throttled_s_per_request.unwrap_or(0.0) * 1e3
        ));
    }
    if let Some(f) = r.fast_iters_per_s {
        s.push_str(&format!(", fast {:.0} M steps/s", f / 1e6));
    }
    // A group's own quota (or the run's CFS quota) as the row says it.
    let quota = r.quota_s.zip(r.period_s).map(|(q, p)| q / p);
    match (&run.limiter, run.limiter.cap_cpus(), r.target_share) {
        // A cap, not a goal: a workload that asks for less uses less.
        _ if quota.is_some() => {
            s.push_str(&format!(", limit {:.3}", quota.unwrap_or_default()));
        }
        (Limiter::Cfs(_) | Limiter::Cpuset { .. }, Some(cap), _) => {
            s.push_str(&format!(", limit {cap:.3}"));
        }
        (_, _, Some(t)) => match r.demand_cpus {
            Some(d) if d < 0.98 * t => s.push_str(&format!(
                ", target {t:.3} (the workload asks for {d:.3} only)"
            )),
            _ => s.push_str(&format!(", target {t:.3} (error {:+.3})", r.cpu_share - t)),
        },
        _ => {}
    }
    // A quota changed mid-run: what it became, and when.
    let g = run.groups.iter().position(|g| g.name == r.group);
    for c in run
        .changes
        .iter()
        .filter(|c| c.group.is_some() && c.group == g)
    {
        if let Some(cfs) = &c.limit.cfs {
            match cfs.quota_us {
                Some(q) => s.push_str(&format!(
                    ", then {:.3} at {}",
                    q as f64 / cfs.period_us as f64,
                    c.at
                )),
                None => s.push_str(&format!(", then no quota at {}", c.at)),
            }
        }
    }
    if let Some(p) = r.group_share_pct {
        s.push_str(&format!(", {p:.1}% of the groups' CPU"));
    }
    if r.leaked_stopped + r.leaked_escaped + r.leaked_cgroups > 0 {
        s.push_str(&format!(
            ", LEFT BEHIND: {} stopped, {} escaped, {} cgroups",
            r.leaked_stopped, r.leaked_escaped, r.leaked_cgroups
        ));
    }
    s
}

/// What a reader of a run's line should be told besides: a workload of requests that
/// asks for more than its limit (each waits behind the last, so latency grows with the
/// run's length and the figures depend on it), and time stolen by the hypervisor large
/// enough to disturb the timings (over 1% of the machine's CPU time in the window).
pub fn warnings(r: &SummaryRow, run: &PlannedRun, cpus: usize) -> Vec<String> {
    let mut w = Vec::new();
    if let (Workload::Requests { .. }, Some(demand), Some(cap)) =
        (run.workload(), r.demand_cpus, run.limiter.cap_cpus())
    {
        if demand > cap * 1.02 {
            w.push(format!(
                "WARNING: the requests ask for {demand:.3} CPUs, more than the limit {cap:.3}: each waits behind the last, so latency grows with the run's length"
            ));
        }
    }
    if r.generator_saturated == Some(true) {
        let pct = |x: Option<f64>| x.map(|x| format!("{x:.0}%")).unwrap_or_else(|| "-".into());
        w.push(format!(
            "WARNING: the load generator could not keep its schedule ({} of sends over 1 ms late, busy {}, waiting for a CPU {}): these latencies say as much about it as about the service (give it CPUs of its own with load.cpus, more threads, or a lower rate)",
            pct(r.generator_late_pct),
            pct(r.generator_busy_pct),
            pct(r.generator_wait_pct)
        ));
    }
    let machine_s = r.wall_s * cpus.max(1) as f64;
    if machine_s > 0.0 && r.steal_s > 0.01 * machine_s {
        w.push(format!(
            "note: the hypervisor took {:.3}s of CPU (steal) during the run, {:.1}% of the machine's: timings are disturbed by that much",
            r.steal_s,
            100.0 * r.steal_s / machine_s
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario;

    fn run_of(limiter: &str, workload: &str) -> PlannedRun {
        let text = format!("name = \"t\"\n[limiter]\n{limiter}\n[workload]\n{workload}\n");
        let sc = scenario::parse(&text, "t.toml").unwrap();
        scenario::resolve(&sc, "t.toml", &"0-1".parse().unwrap())
            .unwrap()
            .runs
            .remove(0)
    }

    fn row(run: &PlannedRun, cpu_share: f64) -> SummaryRow {
        SummaryRow {
            cpu_share,
            demand_cpus: run.workload().demand_cpus(),
            target_share: run.limiter.target_share(),
            ..SummaryRow::default()
        }
    }

    #[test]
    fn a_quota_is_a_limit_and_a_control_loop_has_a_target() {
        // Requests that ask for 0.2 CPU under a 0.4 quota: a limit, not a missed target.
        let r = run_of(
            "kind = \"cfs\"\nquota = \"40ms\"",
            "kind = \"requests\"\nwork = \"200ms\"",
        );
        let line = run_line(&row(&r, 0.2), &r);
        assert!(
            line.contains("limit 0.400") && !line.contains("error"),
            "{line}"
        );
        // A closed-loop duty cycle over a spinning thread: its target and the error.
        let r = run_of(
            "kind = \"freezer\"\nshare = 0.4",
            "kind = \"duty\"\non = \"1s\"",
        );
        let line = run_line(&row(&r, 0.39), &r);
        assert!(line.contains("target 0.400 (error -0.010)"), "{line}");
        // The same loop over requests that ask for less: no error to speak of.
        let r = run_of(
            "kind = \"freezer\"\nshare = 0.4",
            "kind = \"requests\"\nwork = \"100ms\"",
        );
        let line = run_line(&row(&r, 0.1), &r);
        assert!(line.contains("asks for 0.100 only"), "{line}");
    }

    #[test]
    fn demand_above_the_limit_and_large_steal_are_said() {
        // 200 ms every 500 ms is 0.4 CPU against a 0.2 quota.
        let r = run_of(
            "kind = \"cfs\"\nquota = \"20ms\"",
            "kind = \"requests\"\nwork = \"200ms\"\ninterval = \"500ms\"",
        );
        let mut s = row(&r, 0.2);
        s.wall_s = 10.0;
        let w = warnings(&s, &r, 2);
        assert!(
            w.len() == 1 && w[0].contains("0.400 CPUs, more than the limit 0.200"),
            "{w:?}"
        );
        s.steal_s = 0.5;
        assert!(warnings(&s, &r, 2).iter().any(|l| l.contains("2.5%")));
        // At the limit: no warning.
        let r = run_of(
            "kind = \"cfs\"\nquota = \"40ms\"",
            "kind = \"requests\"\nwork = \"200ms\"\ninterval = \"500ms\"",
        );
        assert!(warnings(&row(&r, 0.4), &r, 2).is_empty());
    }
}
