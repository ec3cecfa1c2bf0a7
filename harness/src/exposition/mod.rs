//! OpenMetrics / Prometheus exposition of groups' CPU counters, with the
//! `prometheus-client` crate's encoders.
//!
//! Names follow cAdvisor's (`container_cpu_cfs_throttled_periods_total` becomes
//! `throttlebench_cpu_cfs_throttled_periods_total`), so PromQL written for cAdvisor ports
//! by changing the prefix. Every counter is in base units (seconds, counts) on cgroup v1
//! (ns) and v2 (µs) alike: `CpuCounters` takes seconds, and the caller converts. A counter
//! the kernel does not print is absent from the exposition, never 0 (which would read as
//! "never throttled"): a family none of whose groups has a value is left out whole.
//! `METRICS` is the one list of what is exported; the dashboard test reads it.
//!
//! Live use: `Exposition::add_group` returns a `GroupHandle` for the sampler, whose
//! `update` stores a tick's values into atomics (`cells`), allocating nothing and taking
//! no lock; a scrape copies them with a sequence lock (it retries, the sampler never
//! waits). The set of groups is an `Arc<Vec>` behind a mutex that a scrape holds only to
//! clone the `Arc`; adding or dropping a group (not a tick) swaps in a new list.
//! prometheus-client's own `Counter`/`Gauge` are atomics too, but a counter can only be
//! incremented while the kernel's counters are cumulative values to store, and its
//! `Family` takes a lock for each labelled lookup; so the values live in `cells` and a
//! `Collector` encodes them at the scrape.
//!
//! Beside the kernel's counters, each group exports its throttling episodes (runs of
//! consecutive throttled periods, `crate::episodes`) as a histogram of their lengths and a
//! gauge of the one going on, which a scrape cannot average away.

mod cells;
pub mod server;

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::episodes::{EpisodeTracker, ThrottleDelta};
use cells::{Cells, Slot, Snapshot};
pub use cells::{EPISODE_BUCKETS_S, LATENCY_BUCKETS_S};
pub use server::{ServeError, Server};

/// The `Content-Type` of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The `Content-Type` of the Prometheus text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A group's cumulative counters in base units. `None`: the kernel did not print it.
/// Convert before: v1's `throttled_time`, `burst_time` and `cpuacct.usage` are ns, v2's
/// `throttled_usec`, `burst_usec` and `usage_usec` are µs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CpuCounters {
    /// `nr_periods`.
    pub nr_periods: Option<u64>,
    /// `nr_throttled`.
    pub nr_throttled: Option<u64>,
    /// Throttled time, s.
    pub throttled_s: Option<f64>,
    /// `nr_bursts`.
    pub nr_bursts: Option<u64>,
    /// Burst time used, s.
    pub burst_s: Option<f64>,
    /// CPU time used, s.
    pub usage_s: Option<f64>,
    /// PSI cpu `some` total of the group (or of the machine, on the host's row), s.
    pub pressure_waiting_s: Option<f64>,
    /// Steal time of all CPUs, s: machine-wide, so give it on the host's row only.
    pub steal_s: Option<f64>,
}

/// A group's CFS limits in seconds. `quota_s: None` is no quota (`-1`, `max`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CpuLimits {
    pub quota_s: Option<f64>,
    pub period_s: Option<f64>,
    pub burst_s: Option<f64>,
}

/// The labels of a group's series.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupLabels {
    /// The cgroup's path (`/throttlebench/run-1`, or `/` for the machine).
    pub cgroup: String,
    /// The group's name in the scenario or watch (`main`, a `[[group]]` name, a pod).
    pub group: String,
    /// The limiter kind (`cfs`, `none`, ...).
    pub limiter: String,
    /// The scenario's name, or `watch`.
    pub scenario: String,
    /// The host name.
    pub host: String,
}

impl GroupLabels {
    fn pairs(&self) -> [(&str, &str); 5] {
        [
            ("cgroup", &self.cgroup),
            ("group", &self.group),
            ("limiter", &self.limiter),
            ("scenario", &self.scenario),
            ("host", &self.host),
        ]
    }
}

/// The kind of an exported family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// Where a family's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Count(Slot),
    Seconds(Slot),
    Episodes,
    Latency,
}

/// One exported family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// The name without unit and suffix.
    pub base: &'static str,
    /// Its unit is seconds (the name then ends in `_seconds`).
    pub seconds: bool,
    pub kind: MetricKind,
    pub help: &'static str,
    source: Source,
}

impl MetricDef {
    /// The family's name (`throttlebench_cpu_cfs_throttled_seconds`).
    pub fn family(&self) -> String {
        if self.seconds {
            format!("{}_seconds", self.base)
        } else {
            self.base.to_string()
        }
    }

    /// The names of the series it exports (`..._total`, or `_bucket`, `_sum`, `_count`).
    pub fn series(&self) -> Vec<String> {
        let f = self.family();
        match self.kind {
            MetricKind::Counter => vec![format!("{f}_total")],
            MetricKind::Gauge => vec![f],
            MetricKind::Histogram => ["bucket", "sum", "count"]
                .iter()
                .map(|s| format!("{f}_{s}"))
                .collect(),
        }
    }
}

const fn def(
    base: &'static str,
    seconds: bool,
    kind: MetricKind,
    help: &'static str,
    source: Source,
) -> MetricDef {
    MetricDef {
        base,
        seconds,
        kind,
        help,
        source,
    }
}

use MetricKind::{Counter as C, Gauge as G, Histogram as H};

/// Every family the exposition can export. The one list: docs and the dashboard test
/// read it.
pub const METRICS: &[MetricDef] = &[
    def("throttlebench_cpu_cfs_periods", false, C, "CFS periods that elapsed while the group had runnable threads (cpu.stat nr_periods).", Source::Count(Slot::Periods)),
    def("throttlebench_cpu_cfs_throttled_periods", false, C, "CFS periods in which the group ran out of quota and was throttled (cpu.stat nr_throttled).", Source::Count(Slot::Throttled)),
    def("throttlebench_cpu_cfs_throttled", true, C, "Time the group's threads were throttled, summed over run queues (cpu.stat throttled_time ns, throttled_usec us).", Source::Seconds(Slot::ThrottledS)),
    def("throttlebench_cpu_cfs_burst_periods", false, C, "CFS periods in which the group used burst allowance (cpu.stat nr_bursts).", Source::Count(Slot::Bursts)),
    def("throttlebench_cpu_cfs_burst", true, C, "Run time taken from the burst allowance (cpu.stat burst_time ns, burst_usec us).", Source::Seconds(Slot::BurstS)),
    def("throttlebench_cpu_usage", true, C, "CPU time the group used (cpuacct.usage ns on v1, cpu.stat usage_usec us on v2).", Source::Seconds(Slot::UsageS)),
    def("throttlebench_cpu_pressure_waiting", true, C, "Time in which at least one runnable task of the group waited for a CPU (PSI cpu some total).", Source::Seconds(Slot::PressureWaitingS)),
    def("throttlebench_cpu_steal", true, C, "Time the hypervisor ran something else while a vCPU had work, all CPUs (/proc/stat steal); on the host row.", Source::Seconds(Slot::StealS)),
    def("throttlebench_spec_cpu_quota", true, G, "CFS quota per period (absent without a quota).", Source::Seconds(Slot::QuotaS)),
    def("throttlebench_spec_cpu_period", true, G, "CFS period.", Source::Seconds(Slot::PeriodS)),
    def("throttlebench_spec_cpu_burst", true, G, "CFS burst allowance.", Source::Seconds(Slot::BurstLimitS)),
    def("throttlebench_cpu_cfs_throttling_episode", true, H, "Lengths of ended throttling episodes: runs of consecutive throttled CFS periods.", Source::Episodes),
    def("throttlebench_cpu_cfs_throttling_episode_ongoing", true, G, "Length so far of the throttling episode going on (0: none).", Source::Seconds(Slot::EpisodeOngoingS)),
    def("throttlebench_latency", true, H, "Latency of requests or slow units, from when each was due.", Source::Latency),
];

/// The names of every series the exposition can export.
pub fn exported_series() -> Vec<String> {
    METRICS.iter().flat_map(|d| d.series()).collect()
}

/// A group registered with an exposition.
#[derive(Debug)]
struct Entry {
    labels: GroupLabels,
    latency: bool,
    cells: Cells,
}

/// The groups, swapped whole when one comes or goes.
#[derive(Debug, Default)]
struct Groups {
    list: Mutex<Arc<Vec<Arc<Entry>>>>,
}

impl Groups {
    fn current(&self) -> Arc<Vec<Arc<Entry>>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn change(&self, f: impl FnOnce(&mut Vec<Arc<Entry>>)) {
        let mut guard = self.list.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = (**guard).clone();
        f(&mut next);
        *guard = Arc::new(next);
    }
}

/// The collector that prometheus-client's registry calls at every scrape.
#[derive(Debug)]
struct GroupsCollector(Arc<Groups>);

impl Collector for GroupsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let groups = self.0.current();
        let snaps: Vec<(&Entry, Snapshot)> =
            groups.iter().map(|e| (&**e, e.cells.read())).collect();
        let seconds = Unit::Seconds;
        for d in METRICS {
            let present = |(e, s): &&(&Entry, Snapshot)| match d.source {
                Source::Count(slot) | Source::Seconds(slot) => s.get(slot).is_some(),
                Source::Episodes => s.get(Slot::EpisodeOngoingS).is_some(),
                Source::Latency => e.latency,
            };
            if !snaps.iter().any(|x| present(&x)) {
                continue;
            }
            let kind = match d.kind {
                MetricKind::Counter => MetricType::Counter,
                MetricKind::Gauge => MetricType::Gauge,
                MetricKind::Histogram => MetricType::Histogram,
            };
            let unit = d.seconds.then_some(&seconds);
            let mut family = encoder.encode_descriptor(d.base, d.help, unit, kind)?;
            for x in snaps.iter().filter(|x| present(x)) {
                let (e, s) = x;
                let labels = e.labels.pairs();
                let m = family.encode_family(&labels)?;
                match (d.source, d.kind) {
                    (Source::Count(slot), MetricKind::Counter) => {
                        ConstCounter::new(s.get(slot).unwrap_or(0.0) as u64).encode(m)?
                    }
                    (Source::Seconds(slot), MetricKind::Counter) => {
                        ConstCounter::new(s.get(slot).unwrap_or(0.0)).encode(m)?
                    }
                    (Source::Count(slot) | Source::Seconds(slot), _) => {
                        ConstGauge::new(s.get(slot).unwrap_or(0.0)).encode(m)?
                    }
                    (Source::Episodes, _) => encode_histogram(
                        m,
                        &s.episodes.buckets(&EPISODE_BUCKETS_S),
                        s.episodes.sum,
                    )?,
                    (Source::Latency, _) => {
                        encode_histogram(m, &s.latency.buckets(&LATENCY_BUCKETS_S), s.latency.sum)?
                    }
                }
            }
        }
        Ok(())
    }
}

fn encode_histogram(
    mut m: prometheus_client::encoding::MetricEncoder,
    buckets: &[(f64, u64)],
    sum: f64,
) -> Result<(), std::fmt::Error> {
    let count = buckets.iter().map(|b| b.1).sum();
    m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, buckets, None)
}

/// The exported groups and the registry that encodes them. Cheap to clone (shared).
#[derive(Clone)]
pub struct Exposition {
    groups: Arc<Groups>,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposition")
            .field("groups", &self.groups.current().len())
            .finish()
    }
}

impl Default for Exposition {
    fn default() -> Self {
        Self::new()
    }
}

impl Exposition {
    /// An exposition without groups.
    pub fn new() -> Exposition {
        let groups = Arc::new(Groups::default());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(GroupsCollector(groups.clone())));
        Exposition {
            groups,
            registry: Arc::new(registry),
        }
    }

    /// Export a group; `latency`: it has a latency histogram. Every value is absent until
    /// the handle stores one. The group is exported until its handle is dropped.
    pub fn add_group(&self, labels: GroupLabels, latency: bool) -> GroupHandle {
        let entry = Arc::new(Entry {
            labels,
            latency,
            cells: Cells::new(),
        });
        self.groups.change(|v| v.push(entry.clone()));
        GroupHandle {
            entry,
            groups: self.groups.clone(),
            tracker: EpisodeTracker::new(DEFAULT_PERIOD_S),
            prev: None,
        }
    }

    /// The OpenMetrics text of every group now (ends in `# EOF`).
    pub fn encode_openmetrics(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug here.
        prometheus_client::encoding::text::encode(&mut s, &self.registry)
            .expect("OpenMetrics encoding into a String");
        s
    }

    /// The Prometheus text format 0.0.4 of every group now (what `promtool check metrics`
    /// reads).
    pub fn encode_text(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut s, &self.registry)
            .expect("text encoding into a String");
        s
    }
}

/// The kernel's default CFS period, until `set_limits` says otherwise.
const DEFAULT_PERIOD_S: f64 = 0.1;

/// The sampler's side of one exported group. Not `Clone`: one writer per group. Dropping
/// it removes the group from the exposition.
#[derive(Debug)]
pub struct GroupHandle {
    entry: Arc<Entry>,
    groups: Arc<Groups>,
    tracker: EpisodeTracker,
    prev: Option<(f64, CpuCounters)>,
}

impl GroupHandle {
    /// Store the group's limits (at the start, and when they change).
    pub fn set_limits(&mut self, limits: &CpuLimits) {
        if let Some(p) = limits.period_s.filter(|p| *p > 0.0) {
            self.tracker.set_period(p);
        }
        self.entry.cells.write(|w| {
            w.set(Slot::QuotaS, limits.quota_s);
            w.set(Slot::PeriodS, limits.period_s);
            w.set(Slot::BurstLimitS, limits.burst_s);
        });
    }

    /// Store one tick's counters, read at `t_s` (s on any monotonic clock). Allocates
    /// nothing, takes no lock.
    pub fn update(&mut self, t_s: f64, c: &CpuCounters) {
        let mut ended = None;
        if let Some((t0, c0)) = self.prev {
            let d = ThrottleDelta {
                t_s,
                dt_s: t_s - t0,
                nr_periods: delta_count(c.nr_periods, c0.nr_periods),
                nr_throttled: delta_count(c.nr_throttled, c0.nr_throttled),
                throttled_s: match (c.throttled_s, c0.throttled_s) {
                    (Some(a), Some(b)) if a >= b => Some(a - b),
                    _ => None,
                },
            };
            ended = self.tracker.push(&d);
        }
        self.prev = Some((t_s, *c));
        let ongoing = self
            .tracker
            .reported()
            .then(|| self.tracker.open().map_or(0.0, |e| e.length_s()));
        let count = |v: Option<u64>| v.map(|x| x as f64);
        self.entry.cells.write(|w| {
            w.set(Slot::Periods, count(c.nr_periods));
            w.set(Slot::Throttled, count(c.nr_throttled));
            w.set(Slot::ThrottledS, c.throttled_s);
            w.set(Slot::Bursts, count(c.nr_bursts));
            w.set(Slot::BurstS, c.burst_s);
            w.set(Slot::UsageS, c.usage_s);
            w.set(Slot::PressureWaitingS, c.pressure_waiting_s);
            w.set(Slot::StealS, c.steal_s);
            if let Some(e) = ended {
                w.observe_episode(e.length_s());
            }
            w.set(Slot::EpisodeOngoingS, ongoing);
        });
    }

    /// Record one latency (s) in the group's histogram.
    pub fn observe_latency(&mut self, latency_s: f64) {
        self.entry.cells.write(|w| w.observe_latency(latency_s));
    }
}

/// The change of a count between two reads; `None` when either is missing or it went
/// down (the cgroup was made anew).
fn delta_count(now: Option<u64>, before: Option<u64>) -> Option<u64> {
    now?.checked_sub(before?)
}

impl Drop for GroupHandle {
    fn drop(&mut self) {
        let me = &self.entry;
        self.groups.change(|v| v.retain(|e| !Arc::ptr_eq(e, me)));
    }
}

#[cfg(test)]
mod tests;
