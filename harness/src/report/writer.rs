//! Result folders: `summary.csv`, `timeseries.csv`, `latency.csv` (appended and flushed
//! run by run, so an interrupted or failed run keeps what it measured) and `run.json`
//! (rewritten after every run with everything so far, `complete: false` until the end).

use super::summary::{summarize, Delta, SummaryRow};
use crate::result::RunResult;
use crate::scenario::Plan;
use serde::Serialize;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Version of the result folder layout; bumped when a column or field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// The machine a result was measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub hostname: String,
    pub kernel_release: String,
    pub cpus: usize,
    pub cpu_model: String,
    /// "v1" or "v2".
    pub cgroup_version: String,
    /// /proc/sys/kernel/sched_cfs_bandwidth_slice_us at the start (None if unreadable).
    pub sched_cfs_bandwidth_slice_us: Option<u64>,
    /// USER_HZ, the unit of /proc/stat.
    pub clock_ticks_per_s: u64,
    /// Whether /proc/pressure/cpu was read.
    pub psi: bool,
    /// /proc/sys/kernel/version: the build's number and date, which tell two builds of one
    /// release apart.
    pub kernel_version: String,
    /// CONFIG_HZ and CONFIG_CFS_BANDWIDTH from the kernel's config, where readable
    /// (`THROTTLEBENCH_KERNEL_CONFIG`, set by `throttlebench vm`, else
    /// /boot/config-<release>).
    pub config_hz: Option<u64>,
    pub config_cfs_bandwidth: Option<bool>,
    /// Set when the run was inside a VM started by `throttlebench vm` (e.g. "virtme-ng,
    /// emulated (TCG)"): timings are not comparable with the host's, cgroup accounting is.
    pub vm: Option<String>,
}

/// CONFIG_HZ and CONFIG_CFS_BANDWIDTH of a kernel config's text.
pub fn kernel_config(text: &str) -> (Option<u64>, Option<bool>) {
    let mut hz = None;
    let mut bw = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("CONFIG_HZ=") {
            hz = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("CONFIG_CFS_BANDWIDTH=") {
            bw = Some(v.trim() == "y");
        } else if line.starts_with("# CONFIG_CFS_BANDWIDTH is not set") {
            bw = Some(false);
        }
    }
    (hz, bw)
}

impl Host {
    pub fn read(proc_root: &Path, cgroup_version: &str, psi: bool) -> Host {
        let read = |p: PathBuf| {
            fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let cpuinfo = read(proc_root.join("cpuinfo"));
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_default();
        let release = read(proc_root.join("sys/kernel/osrelease"));
        let config = std::env::var_os("THROTTLEBENCH_KERNEL_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(format!("/boot/config-{release}")));
        let (config_hz, config_cfs_bandwidth) = fs::read_to_string(&config)
            .map(|t| kernel_config(&t))
            .unwrap_or((None, None));
        Host {
            hostname: read(proc_root.join("sys/kernel/hostname")),
            kernel_release: read(proc_root.join("sys/kernel/osrelease")),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model,
            cgroup_version: cgroup_version.to_string(),
            sched_cfs_bandwidth_slice_us: read(
                proc_root.join("sys/kernel/sched_cfs_bandwidth_slice_us"),
            )
            .parse()
            .ok(),
            clock_ticks_per_s: crate::sample::procstat::clock_ticks_per_s(),
            psi,
            kernel_version: read(proc_root.join("sys/kernel/version")),
            config_hz,
            config_cfs_bandwidth,
            vm: std::env::var("THROTTLEBENCH_VM")
                .ok()
                .filter(|v| !v.is_empty()),
        }
    }
}

#[derive(Serialize)]
struct RunJson<'a> {
    schema_version: u32,
    tool: &'static str,
    tool_version: &'static str,
    /// UTC, ISO 8601.
    created: &'a str,
    /// False until every planned run has been written.
    complete: bool,
    host: &'a Host,
    plan: &'a Plan,
    runs: Vec<RunJsonEntry<'a>>,
}

#[derive(Serialize)]
struct RunJsonEntry<'a> {
    /// One row per group.
    summary: &'a [SummaryRow],
    result: &'a RunResult,
}

/// Writes one result folder.
pub struct ResultWriter {
    dir: PathBuf,
    created: String,
    host: Host,
    summary: csv::Writer<File>,
    timeseries: csv::Writer<BufWriter<File>>,
    latency: csv::Writer<BufWriter<File>>,
    /// Probe tables (steal.csv, gaps.csv, ...), opened when a probe first reports.
    probe_files: std::collections::BTreeMap<&'static str, csv::Writer<BufWriter<File>>>,
    /// Each run's summary rows and raw result, for run.json.
    runs: Vec<(Vec<SummaryRow>, RunResult)>,
}

/// Rows of a probe table, tagged with their run and group.
trait Tagged: Serialize + Clone {
    fn tag(&mut self, run: usize, group: &str);
}

macro_rules! tagged {
    ($($t:ty),*) => {$(
        impl Tagged for $t {
            fn tag(&mut self, run: usize, group: &str) {
                self.run = Some(run);
                self.group = Some(group.to_string());
            }
        }
    )*};
}

tagged!(
    crate::probe::steal::CpuRow,
    crate::probe::steal::GapBucket,
    crate::probe::steal::SeriesRow,
    crate::probe::entropy::SupplyRow,
    crate::probe::entropy::FipsRow
);

/// Columns of timeseries.csv: one row per run and sample, each counter's change since
/// the previous sample (times in s), plus two shares over the interval.
pub const TIMESERIES_COLUMNS: &[&str] = &[
    "run",
    "group",
    "t_s",
    "dt_s",
    "usage_s",
    "cpu_share",
    "nr_periods",
    "nr_throttled",
    "throttled_s",
    "throttled_share",
    "nr_bursts",
    "burst_time_s",
    "steal_s",
    "busy_s",
    "psi_some_s",
    "psi_full_s",
];

/// One row of timeseries.csv; counters the cgroup's cpu.stat does not have (`has`) are
/// left empty rather than written as 0.
fn timeseries_values(
    run: usize,
    group: &str,
    t_s: f64,
    d: &Delta,
    has: crate::sample::cpustat::Has,
) -> [String; 16] {
    let share = |x: f64| if d.dt_s > 0.0 { x / d.dt_s } else { 0.0 };
    let only = |ok: bool, v: String| if ok { v } else { String::new() };
    let (bw, burst) = (has.bandwidth, has.burst);
    [
        run.to_string(),
        group.to_string(),
        t_s.to_string(),
        d.dt_s.to_string(),
        d.usage_s.to_string(),
        share(d.usage_s).to_string(),
        only(bw, d.nr_periods.to_string()),
        only(bw, d.nr_throttled.to_string()),
        only(bw, d.throttled_s.to_string()),
        only(bw, share(d.throttled_s).to_string()),
        only(burst, d.nr_bursts.to_string()),
        only(burst, d.burst_time_s.to_string()),
        d.steal_s.to_string(),
        d.busy_s.to_string(),
        d.psi_some_s.to_string(),
        d.psi_full_s.to_string(),
    ]
}

/// Columns of latency.csv: one row per request or slow unit.
pub const LATENCY_COLUMNS: &[&str] = &[
    "run",
    "kind",
    "index",
    "due_s",
    "latency_s",
    "thread",
    "start_s",
    "end_s",
    "group",
];

#[derive(Serialize)]
struct LatencyRow<'a> {
    run: usize,
    kind: &'a str,
    index: u64,
    due_s: f64,
    latency_s: f64,
    thread: u32,
    start_s: f64,
    end_s: f64,
    group: &'a str,
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl ResultWriter {
    /// Make `dir` (and parents) and open the CSV files with their headers.
    pub fn create(
        dir: &Path,
        plan: &Plan,
        host: Host,
        created: String,
    ) -> io::Result<ResultWriter> {
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        let open = |name: &str| -> io::Result<File> {
            let p = dir.join(name);
            File::create(&p).map_err(io_at(&p))
        };
        let mut summary = csv::Writer::from_writer(open("summary.csv")?);
        summary.write_record(SummaryRow::header(&plan.swept))?;
        summary.flush()?;
        let mut timeseries = csv::Writer::from_writer(BufWriter::new(open("timeseries.csv")?));
        timeseries.write_record(TIMESERIES_COLUMNS)?;
        let mut latency = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::new(open("latency.csv")?));
        // Written by hand so a run without units still gets a header.
        latency.write_record(LATENCY_COLUMNS)?;
        let w = ResultWriter {
            dir: dir.to_path_buf(),
            created,
            host,
            summary,
            timeseries,
            latency,
            probe_files: Default::default(),
            runs: Vec::new(),
        };
        Ok(w)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every summary row written so far.
    pub fn rows(&self) -> Vec<&SummaryRow> {
        self.runs.iter().flat_map(|(rows, _)| rows).collect()
    }

    /// Append one run to every file and flush them; returns its summary rows (one per group).
    pub fn append(&mut self, plan: &Plan, result: RunResult) -> io::Result<Vec<SummaryRow>> {
        let rows = summarize(
            &plan.scenario.name,
            &result,
            self.host.clock_ticks_per_s,
            self.host.psi,
        );
        for row in &rows {
            self.summary.write_record(row.values())?;
        }
        self.summary.flush()?;
        let run = result.planned.index;
        for g in &result.groups {
            let t0 = g.samples.first().map(|s| s.t_ns).unwrap_or(0);
            for pair in g.samples.windows(2) {
                let delta = Delta::between(&pair[0], &pair[1], self.host.clock_ticks_per_s);
                let t_s = pair[1].t_ns.saturating_sub(t0) as f64 / 1e9;
                self.timeseries
                    .write_record(timeseries_values(run, &g.name, t_s, &delta, g.counters))?;
            }
            for u in &g.workload.units {
                self.latency.serialize(LatencyRow {
                    run,
                    kind: match u.kind {
                        fibtest::record::UnitKind::Slow => "slow",
                        fibtest::record::UnitKind::Request => "request",
                    },
                    index: u.index,
                    due_s: u.due_s,
                    latency_s: u.latency_s,
                    thread: u.thread,
                    start_s: u.start_s,
                    end_s: u.end_s,
                    group: &g.name,
                })?;
            }
        }
        for g in &result.groups {
            use crate::probe::ProbeOutput;
            match &g.workload.probe {
                Some(ProbeOutput::StealProbe(p)) => {
                    self.probe_rows("steal.csv", run, &g.name, &p.cpus)?;
                    self.probe_rows("gaps.csv", run, &g.name, &p.gaps)?;
                    self.probe_rows("steal_timeseries.csv", run, &g.name, &p.series)?;
                }
                Some(ProbeOutput::EntropyProbe(p)) => {
                    self.probe_rows("entropy.csv", run, &g.name, &p.supply)?;
                    self.probe_rows("fips.csv", run, &g.name, &p.fips)?;
                }
                None => {}
            }
        }
        for w in self.probe_files.values_mut() {
            w.flush()?;
        }
        self.timeseries.flush()?;
        self.latency.flush()?;
        self.runs.push((rows.clone(), result));
        self.write_json(plan, false)?;
        Ok(rows)
    }

    /// Append a probe's rows to `name` (opened, with its header, the first time).
    fn probe_rows<T: Tagged>(
        &mut self,
        name: &'static str,
        run: usize,
        group: &str,
        rows: &[T],
    ) -> io::Result<()> {
        if !self.probe_files.contains_key(name) {
            let p = self.dir.join(name);
            let f = File::create(&p).map_err(io_at(&p))?;
            self.probe_files
                .insert(name, csv::Writer::from_writer(BufWriter::new(f)));
        }
        let w = self.probe_files.get_mut(name).expect("just inserted");
        for r in rows {
            let mut r = r.clone();
            r.tag(run, group);
            w.serialize(&r)?;
        }
        Ok(())
    }

    /// Rewrite run.json; `complete` says whether every planned run is in.
    pub fn write_json(&self, plan: &Plan, complete: bool) -> io::Result<()> {
        let doc = RunJson {
            schema_version: SCHEMA_VERSION,
            tool: "throttlebench",
            tool_version: env!("CARGO_PKG_VERSION"),
            created: &self.created,
            complete,
            host: &self.host,
            plan,
            runs: self
                .runs
                .iter()
                .map(|(rows, result)| RunJsonEntry {
                    summary: rows,
                    result,
                })
                .collect(),
        };
        let path = self.dir.join("run.json");
        let tmp = self.dir.join("run.json.tmp");
        let f = File::create(&tmp).map_err(io_at(&tmp))?;
        let mut w = BufWriter::new(f);
        serde_json::to_writer_pretty(&mut w, &doc)?;
        w.write_all(b"\n")?;
        w.flush()?;
        drop(w);
        // Renamed into place so a reader never sees half a file.
        fs::rename(&tmp, &path).map_err(io_at(&path))
    }
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
    fn utc_formatting() {
        assert_eq!(utc_from_unix(0).1, "1970-01-01T00:00:00Z");
        assert_eq!(utc_from_unix(1795349214).0, "20261122T120654Z");
        assert_eq!(utc_from_unix(951_782_400).1, "2000-02-29T00:00:00Z");
    }
}
