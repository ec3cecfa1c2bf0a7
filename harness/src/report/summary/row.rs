//! The summary row of a run: what `summary.csv` holds, one row per run and group.
//!
//! The columns have one source of truth: the `columns!` list below gives each column's
//! name, type and meaning once, and from it come the struct's fields, `COLUMNS` and the
//! cells of a row. A test checks that every column is explained in docs/metrics.md.

use serde::Serialize;

/// A value as a summary.csv cell: numbers as Rust prints them (full precision), and an
/// empty cell for a value that does not apply or was not reported.
pub trait Cell {
    fn cell(&self) -> String;
}

macro_rules! cell_by_display {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            fn cell(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
cell_by_display!(String, f64, u64, u32, usize, bool);

impl<T: Cell> Cell for Option<T> {
    fn cell(&self) -> String {
        self.as_ref().map(Cell::cell).unwrap_or_default()
    }
}

/// Declares `SummaryRow` with one field per column, in column order, plus `COLUMNS` and
/// `SummaryRow::cells` from the same list.
macro_rules! columns {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty, )*) => {
        /// One run (and group) in numbers. Times in s, shares in CPUs (1.0 = one CPU
        /// fully busy). docs/metrics.md says how each is computed.
        #[derive(Debug, Clone, Default, PartialEq, Serialize)]
        pub struct SummaryRow {
            /// Swept fields and their values, written as `param_<field>` columns.
            pub params: Vec<(String, String)>,
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        /// The fixed columns of summary.csv, in order; `param_<field>` columns follow `run`.
        pub const COLUMNS: &[&str] = &[$(stringify!($name)),*];

        impl SummaryRow {
            /// The fixed columns' cells, in `COLUMNS` order.
            fn cells(&self) -> Vec<String> {
                vec![$(Cell::cell(&self.$name)),*]
            }
        }
    };
}

columns! {
    scenario: String,
    /// Run number within the result folder, from 0.
    run: usize,
    /// The group this row is about ("main" when the scenario has no groups).
    group: String,
    /// Configuration number (one per sweep combination) and repeat within it.
    config: usize,
    repeat: u32,
    /// Limiter kind: "none", "cfs", ...
    limiter: String,
    /// CFS quota per period, in s (empty when no quota).
    quota_s: Option<f64>,
    period_s: Option<f64>,
    /// CFS burst allowance configured, in s.
    burst_s: Option<f64>,
    workload: String,
    /// How the run ended: completed, failed, interrupted, timed_out.
    outcome: String,
    /// The measured window: from the sample at the workload's time zero (after its
    /// start-up) to the sample after its exit, in s. Every count below is over it.
    wall_s: f64,
    /// CPU time the cgroup used, in s.
    cpu_usage_s: f64,
    /// cpu_usage_s / wall_s, in CPUs.
    cpu_share: f64,
    /// The CPU the workload asks for when nothing holds it back, from its plan, in
    /// CPUs (empty for a command or the entropy probe).
    demand_cpus: Option<f64>,
    /// The share the limiter aims at, in CPUs (empty when it has none).
    target_share: Option<f64>,
    /// cpu_share - target_share, in CPUs.
    share_error: Option<f64>,
    /// With several groups: 100 * this group's usage / all groups' usage, in %.
    group_share_pct: Option<f64>,
    /// CFS periods and throttled periods (empty when the cgroup's cpu.stat has no
    /// bandwidth counters: a v2 cgroup without the cpu controller, a kernel without
    /// CONFIG_CFS_BANDWIDTH).
    nr_periods: Option<u64>,
    nr_throttled: Option<u64>,
    /// 100 * nr_throttled / nr_periods (empty when no period elapsed).
    throttled_pct: Option<f64>,
    /// Total time the cgroup's threads spent throttled, in s (summed over threads; empty
    /// like nr_periods).
    throttled_s: Option<f64>,
    /// Periods that used burst (empty on kernels before 5.13 for v1, 5.14 for v2).
    nr_bursts: Option<u64>,
    /// Run time taken from the burst allowance, in s (kernel: burst_time / burst_usec;
    /// empty like nr_bursts).
    burst_time_s: Option<f64>,
    /// /proc/stat steal of all CPUs during the run, in s.
    steal_s: f64,
    /// PSI cpu `some` time during the run, in s (empty without PSI).
    psi_some_s: Option<f64>,
    latency_p50_s: Option<f64>,
    latency_p90_s: Option<f64>,
    latency_p99_s: Option<f64>,
    latency_p999_s: Option<f64>,
    latency_max_s: Option<f64>,
    /// Fibonacci steps per s of all fast threads together.
    fast_iters_per_s: Option<f64>,
    /// Slow-thread units completed.
    slow_units: Option<u64>,
    /// Requests completed.
    requests: Option<u64>,
    /// Duty workloads: 100 × the last on-period's work rate / the first's (about 100
    /// when the duty cycle is sustainable, lower when the job got throttled on the way).
    duty_end_rate_pct: Option<f64>,
    /// nr_throttled / requests.
    throttled_per_request: Option<f64>,
    /// throttled_s / requests.
    throttled_s_per_request: Option<f64>,
    /// Requests (of the requests workload or a `[load]`; answered, after the warm-up)
    /// whose life from due time to end touched a CFS period that ended throttled: how
    /// many, and the p50 and p99 latency of those that did and of those that did not
    /// (empty without a period grid: no quota, or too few samples to place it).
    touched_requests: Option<u64>,
    touched_p50_s: Option<f64>,
    touched_p99_s: Option<f64>,
    clear_p50_s: Option<f64>,
    clear_p99_s: Option<f64>,
    /// `[load]`: requests answered per s over the load's duration.
    achieved_rate: Option<f64>,
    /// `[load]`: requests that got no answer (refused, reset, timed out, ...; run.json
    /// has each kind), and of those, the ones that timed out.
    errors: Option<u64>,
    timeouts: Option<u64>,
    /// `[load]`: HTTP answers with a status outside 200-299 (counted in `requests`).
    non_2xx: Option<u64>,
    /// `[load]`: how the generator kept its schedule: 100 × sends more than 1 ms late /
    /// sends; the share of the time its threads were busy and waited for a CPU, in %;
    /// whether it could not keep up (10% late, 90% busy or 10% waiting: its latencies
    /// then say as much about it as about the service).
    generator_late_pct: Option<f64>,
    generator_busy_pct: Option<f64>,
    generator_wait_pct: Option<f64>,
    generator_saturated: Option<bool>,
    /// Steal probe: time its pinned spinning threads did not run, summed over its CPUs,
    /// in s; the share of each CPU that was (mean); the p99 and largest gap, in s; the
    /// stalls attributed to the cgroup's throttling and the rest; the loop's time per
    /// clock read, in ns (see docs/probes.md).
    stall_s: Option<f64>,
    stall_share: Option<f64>,
    gap_p99_s: Option<f64>,
    gap_max_s: Option<f64>,
    throttle_stall_s: Option<f64>,
    other_stall_s: Option<f64>,
    probe_loop_ns: Option<f64>,
    /// Entropy probe: the pool was ready (getrandom with GRND_NONBLOCK worked); each
    /// source's best single-reader supply, in bytes/s; the lowest share a reader got of
    /// its fair part with several readers; FIPS 140-2 blocks tested and failed.
    crng_ready: Option<bool>,
    getrandom_bytes_per_s: Option<f64>,
    urandom_bytes_per_s: Option<f64>,
    random_bytes_per_s: Option<f64>,
    hwrng_bytes_per_s: Option<f64>,
    min_reader_share: Option<f64>,
    fips_blocks: Option<u64>,
    fips_failures: Option<u64>,
    /// Processes of the run left stopped after the limiter was gone (same on every row of a run).
    leaked_stopped: usize,
    /// Processes still alive in the run's cgroups after the workload ended.
    leaked_escaped: usize,
    /// Cgroup folders of the run left after teardown.
    leaked_cgroups: usize,
    /// What went wrong with the limiter (an external command that exited early or
    /// ignored SIGTERM, a failed control loop): run.json says what.
    limiter_faults: usize,
    /// Sampler ticks taken more than half an interval late, and ticks skipped because
    /// the sampler fell more than an interval behind (same on every row of a run).
    late_ticks: u64,
    missed_ticks: u64,
}

impl SummaryRow {
    /// Column names for a result whose swept fields are `swept`.
    pub fn header(swept: &[String]) -> Vec<String> {
        let mut h: Vec<String> = Vec::new();
        for c in COLUMNS {
            h.push(c.to_string());
            if *c == "run" {
                h.extend(swept.iter().map(|s| format!("param_{s}")));
            }
        }
        h
    }

    /// Values in `header` order (empty text for values that do not apply).
    pub fn values(&self) -> Vec<String> {
        let mut v = self.cells();
        let at = COLUMNS
            .iter()
            .position(|c| *c == "run")
            .expect("a run column")
            + 1;
        v.splice(at..at, self.params.iter().map(|(_, val)| val.clone()));
        v
    }
}
