//! An open-loop load generator that times every request from when it was due.
//!
//! A closed-loop tool (wrk, ab, a benchmark loop) sends the next request when the last
//! answer came back. When the service stalls (a throttled CFS period, a GC pause), the
//! tool stalls with it and does not send the requests that real users would have sent
//! meanwhile; the one slow answer is recorded, the users who would have queued behind it
//! are not. This is coordinated omission, as Gil Tene's talk "How NOT to Measure
//! Latency" names it, and as wrk2 corrects it (docs/sources.md). Here each request has a
//! due time fixed by the schedule before the run (`schedule`), whatever the service
//! does, and its latency is its end minus its due time. A request that could not be
//! sent on time (its connection still waited for an earlier answer) is sent as soon as
//! it can be, and the wait counts.
//!
//! Each record keeps the due time, the actual send and the end, and the outcome (a
//! status, or an error by kind); records stream to the caller's sink, so memory does not
//! grow with the run (apart from fixed-size HDR histograms). The generator measures
//! itself too: its threads' CPU time and how late it sent against the schedule, so a
//! saturated generator is reported instead of looking like a slow service.
//!
//! Files: `target` (what to load, request bytes), `schedule` (due times), `http` (the
//! answer parsers, and why the client is hand-written), `engine` (one thread's poll
//! loop), `record` (records, error kinds, histograms), `port` (free ports, waiting for
//! one to open). This module imports nothing from the rest of the harness.

mod engine;
pub mod http;
pub mod port;
pub mod record;
pub mod schedule;
pub mod target;

pub use engine::{LATE_SEND_NS, READ_BUFFER};
pub use port::{free_loopback_port, wait_for_port, PortNeverOpened};
pub use record::{ErrorCounts, ErrorKind, Outcome, Percentiles, RequestRecord};
pub use schedule::Arrivals;
pub use target::{Protocol, Target, TargetError};

use fibtest::cpulist::CpuList;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, TryRecvError};
use std::sync::Barrier;
use std::time::Duration;

/// Records the channel from the generator threads to the sink holds; the sink is called
/// every `DRAIN_EVERY`, so this covers about 6 M requests/s.
const RECORD_QUEUE: usize = 1 << 16;
const DRAIN_EVERY: Duration = Duration::from_millis(10);

/// `LoadSpec::spin` by default: always sleep. Spinning makes sends punctual to a few µs
/// instead of a timer wake-up's tens (55-85 µs on average on the project's VMs), but only
/// on a CPU the generator has to itself: where other work shares it, a spinning thread
/// used up its fair share and was preempted for milliseconds (docs/latency.md).
pub const DEFAULT_SPIN: Duration = Duration::ZERO;

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub target: Target,
    /// HTTP: POST this body (GET without one). Line: the line to send (default `ping`).
    pub body: Option<Vec<u8>>,
    /// HTTP: headers to add, "Name: value" (`Accept-Encoding: gzip`).
    pub headers: Vec<String>,
    /// Requests per second, over all connections.
    pub rate: f64,
    pub arrivals: Arrivals,
    /// Connections, each with one request in flight at most.
    pub connections: u32,
    /// Measured time, after the warm-up.
    pub duration: Duration,
    /// Requests due in this first stretch are recorded (`warmup: true`) but not counted
    /// in the summary.
    pub warmup: Duration,
    /// An answer later than this after its send is a timeout; also bounds each connect,
    /// and the run ends at most this long after the last due time.
    pub timeout: Duration,
    /// How long to wait for the port to accept connections before the first request.
    pub port_wait: Duration,
    /// Poll without sleeping once the next due time is this close: sends are then on
    /// time to a few µs instead of a timer wake-up's tens, for up to this much CPU per
    /// send (0: always sleep).
    pub spin: Duration,
    /// Generator threads; connections are spread over them (connection c on thread
    /// c mod threads).
    pub threads: u32,
    /// CPUs to pin the generator threads to, round-robin (None: not pinned). Keep them
    /// apart from the service's.
    pub cpus: Option<CpuList>,
}

impl LoadSpec {
    /// A spec with the usual defaults: constant arrivals, one connection and thread, no
    /// warm-up, a 1 s timeout, 10 s to wait for the port.
    pub fn new(target: Target, rate: f64, duration: Duration) -> LoadSpec {
        LoadSpec {
            target,
            body: None,
            headers: Vec::new(),
            rate,
            arrivals: Arrivals::Constant,
            connections: 1,
            duration,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(1),
            port_wait: Duration::from_secs(10),
            spin: DEFAULT_SPIN,
            threads: 1,
            cpus: None,
        }
    }
}

/// Why a load run could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("load: {0}")]
    Spec(String),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    PortNeverOpened(#[from] PortNeverOpened),
    #[error("load: pinning a generator thread to CPU {cpu}: {source}")]
    Pin { cpu: u32, source: std::io::Error },
    #[error("load: the record sink failed: {0}")]
    Sink(std::io::Error),
}

/// What a run measured (requests due in the warm-up are left out of every figure but
/// `warmup_requests`).
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub target: String,
    /// Time zero on CLOCK_MONOTONIC, in ns: record times are relative to it.
    pub start_monotonic_ns: u64,
    /// Requests per second asked for.
    pub rate: f64,
    pub connections: u32,
    pub threads: u32,
    /// Time zero to the last request's end, in s.
    pub wall_s: f64,
    /// Requests due after the warm-up, however they ended.
    pub scheduled: u64,
    pub warmup_requests: u64,
    /// Requests answered (any status).
    pub responses: u64,
    /// HTTP answers outside 200-299.
    pub non_2xx: u64,
    pub errors: ErrorCounts,
    /// Answered requests / measured duration, per second.
    pub achieved_rate: f64,
    /// Latency from the due time, of answered requests.
    pub latency: Percentiles,
    /// Time from send to end, of the same requests (what a closed-loop tool reports).
    pub service: Percentiles,
    /// The generator's own lateness: each send against the later of its due time and
    /// its connection becoming free.
    pub lateness: Percentiles,
    /// Sends more than `LATE_SEND_NS` (1 ms) late by that measure.
    pub late_sends: u64,
    /// CPU time of the generator threads, in s.
    pub generator_cpu_s: f64,
    /// generator_cpu_s per send (warm-up included), in µs.
    pub cpu_per_request_us: f64,
    /// generator_cpu_s / (wall_s * threads): how busy its threads were (with
    /// `LoadSpec::spin`, spinning counts).
    pub generator_busy: f64,
    /// Time its threads were ready to run but waited for a CPU / (wall_s * threads)
    /// (None without the kernel's scheduler statistics).
    pub generator_wait: Option<f64>,
    /// Records the sink did not get because it fell behind (counted in the figures).
    pub records_dropped: u64,
    /// The latency histogram (ns), for merging or finer quantiles.
    #[serde(skip)]
    pub latency_histogram: LatencyHistogram,
}

/// A latency histogram in ns (see `record::histogram`); its Debug form is its count, not
/// its 20,000 buckets.
#[derive(Clone)]
pub struct LatencyHistogram(pub Histogram<u64>);

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Histogram({} values)", self.0.len())
    }
}

impl LoadReport {
    /// Why the generator could not keep to its schedule, if it could not: 10% of sends
    /// or more were over 1 ms late; or its threads were busy 90% of the time or more, or
    /// waited for a CPU 10% of the time or more (then it also noticed answers late,
    /// which its own lateness does not count, since a connection is busy until its
    /// answer is read). Its latencies then say as much about the generator as about the
    /// service. (A few late sends are timer jitter: on the project's VMs a timer wake-up
    /// is now and then 3 ms late on an idle machine.)
    pub fn generator_saturated(&self) -> Option<String> {
        let sends = (self.scheduled + self.warmup_requests).max(1);
        if self.late_sends * 10 >= sends {
            Some(format!(
                "{:.0}% of its sends were more than 1 ms late",
                100.0 * self.late_sends as f64 / sends as f64
            ))
        } else if self.generator_busy >= 0.9 {
            Some(format!(
                "its threads were busy {:.0}% of the time",
                100.0 * self.generator_busy
            ))
        } else {
            self.generator_wait
                .filter(|w| *w >= 0.1)
                .map(|w| format!("its threads waited for a CPU {:.0}% of the time", 100.0 * w))
        }
    }
}

fn check(spec: &LoadSpec) -> Result<(), LoadError> {
    let bad = |m: &str| Err(LoadError::Spec(m.to_string()));
    if !(spec.rate.is_finite() && spec.rate > 0.0) {
        return bad(&format!(
            "rate must be above 0 requests/s, not {}",
            spec.rate
        ));
    }
    if spec.connections == 0 || spec.threads == 0 {
        return bad("connections and threads must be at least 1");
    }
    if spec.duration.is_zero() || spec.timeout.is_zero() {
        return bad("duration and timeout must be longer than 0");
    }
    Ok(())
}

/// Load `spec.target` as `spec` says, passing every request's record to `sink` (on the
/// calling thread, in batches, in no particular order across connections), until the
/// schedule is done or `stop` is set. Waits for the port first (`spec.port_wait`).
pub fn run<S>(spec: &LoadSpec, stop: &AtomicBool, mut sink: S) -> Result<LoadReport, LoadError>
where
    S: FnMut(&RequestRecord) -> std::io::Result<()>,
{
    check(spec)?;
    let request = spec.target.render(spec.body.as_deref(), &spec.headers)?;
    wait_for_port(spec.target.addr, spec.port_wait)?;
    let threads = spec.threads.min(spec.connections);
    let cpus: Vec<Option<u32>> = (0..threads as usize)
        .map(|t| spec.cpus.as_ref().and_then(|c| c.nth_wrapping(t)))
        .collect();
    let (tx, rx) = sync_channel(RECORD_QUEUE);
    let sink_failed = AtomicBool::new(false);
    let ready = Barrier::new(threads as usize + 1);
    let go = Barrier::new(threads as usize + 1);
    let t0 = AtomicU64::new(0);
    let (results, sink_error) = std::thread::scope(|s| {
        let handles: Vec<_> = cpus
            .iter()
            .enumerate()
            .map(|(t, &cpu)| {
                let tx = tx.clone();
                let (ready, go, t0, request) = (&ready, &go, &t0, &request[..]);
                let stops = [stop, &sink_failed];
                s.spawn(move || {
                    let pinned = match cpu {
                        Some(cpu) => fibtest::cpulist::pin_current_thread(cpu)
                            .map_err(|source| LoadError::Pin { cpu, source }),
                        None => Ok(()),
                    };
                    // Exact wake-ups: the default 50 µs timer slack would make every
                    // send up to 50 µs late.
                    let _ = nix::sys::prctl::set_timerslack(1);
                    let ids: Vec<u32> = (t as u32..spec.connections)
                        .step_by(threads as usize)
                        .collect();
                    let engine = engine::Engine::new(spec, request, stops, tx, &ids);
                    ready.wait();
                    go.wait();
                    pinned.map(|()| engine.run(t0.load(Ordering::SeqCst)))
                })
            })
            .collect();
        drop(tx);
        ready.wait();
        // A millisecond ahead, so that every thread is waiting when the first request
        // falls due.
        t0.store(fibtest::clock::mono_ns() + 1_000_000, Ordering::SeqCst);
        go.wait();
        let mut sink_error = None;
        'drain: loop {
            std::thread::sleep(DRAIN_EVERY);
            loop {
                match rx.try_recv() {
                    Ok(r) => {
                        if sink_error.is_none() {
                            if let Err(e) = sink(&r) {
                                sink_error = Some(e);
                                sink_failed.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break 'drain,
                }
            }
        }
        let results: Vec<Result<engine::ThreadResult, LoadError>> = handles
            .into_iter()
            .map(|h| h.join().expect("a load generator thread panicked"))
            .collect();
        (results, sink_error)
    });
    if let Some(e) = sink_error {
        return Err(LoadError::Sink(e));
    }
    let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(report(spec, t0.load(Ordering::SeqCst), threads, &results))
}

/// Add the threads' results up.
fn report(spec: &LoadSpec, t0: u64, threads: u32, results: &[engine::ThreadResult]) -> LoadReport {
    let mut latency = record::histogram();
    let mut service = record::histogram();
    let mut lateness = record::histogram();
    let mut errors = ErrorCounts::default();
    let sum = |f: fn(&engine::ThreadResult) -> u64| results.iter().map(f).sum::<u64>();
    for r in results {
        latency.add(&r.latency).expect("same bounds");
        service.add(&r.service).expect("same bounds");
        lateness.add(&r.lateness).expect("same bounds");
        errors.merge(&r.errors);
    }
    let wall_s = results.iter().map(|r| r.last_end_ns).max().unwrap_or(0) as f64 / 1e9;
    let cpu_s = sum(|r| r.cpu_ns) as f64 / 1e9;
    let sends = sum(|r| r.sends);
    let responses = sum(|r| r.responses);
    LoadReport {
        target: spec.target.to_string(),
        start_monotonic_ns: t0,
        rate: spec.rate,
        connections: spec.connections,
        threads,
        wall_s,
        scheduled: sum(|r| r.scheduled),
        warmup_requests: sum(|r| r.warmup),
        responses,
        non_2xx: sum(|r| r.non_2xx),
        errors,
        achieved_rate: responses as f64 / spec.duration.as_secs_f64(),
        latency: Percentiles::of(&latency),
        service: Percentiles::of(&service),
        lateness: Percentiles::of(&lateness),
        late_sends: sum(|r| r.late_sends),
        generator_cpu_s: cpu_s,
        cpu_per_request_us: cpu_s * 1e6 / sends.max(1) as f64,
        generator_busy: if wall_s > 0.0 {
            cpu_s / (wall_s * threads as f64)
        } else {
            0.0
        },
        generator_wait: {
            let waits: Option<u64> = results.iter().map(|r| r.wait_ns).sum();
            waits
                .filter(|_| wall_s > 0.0)
                .map(|w| w as f64 / 1e9 / (wall_s * threads as f64))
        },
        records_dropped: sum(|r| r.records_dropped),
        latency_histogram: LatencyHistogram(latency),
    }
}

#[cfg(test)]
mod tests;
