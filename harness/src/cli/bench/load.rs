//! `throttlebench bench load`: the open-loop generator (`crate::load`) against wrk
//! (closed loop), on the same machine and the same server, in one run.
//!
//! Without `--target` it starts `fibtest serve` itself (pinned to `--server-cpu`) and
//! prints two tables:
//! 1. capacity: wrk's closed-loop maximum with `--connections`, then the generator at
//!    rising open-loop rates until it falls behind its schedule (or the server stops
//!    keeping up); the generator and wrk both pinned to `--gen-cpu`, one thread each, with
//!    their CPU time per request;
//! 2. low load (`--low-rate` on one connection, `--low-work` per request): the
//!    generator's latency percentiles (also with 100 µs of spinning before each send)
//!    next to wrk's, back to back and with a think time that gives about the same rate,
//!    where no request waits for another, so they should agree.
//!
//! With `--target URL` it loads a server started elsewhere (under a CPU limit, say):
//! wrk first with `--wrk-think` between requests on each connection, then the generator
//! open loop at the rate wrk reached, and prints both: how much of the tail the closed
//! loop hides (docs/latency.md).

use crate::load::{self, Arrivals, LoadReport, LoadSpec, Target};
use anyhow::{bail, Context, Result};
use clap::Args;
use fibtest::cpulist::CpuList;
use fibtest::span::Span;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct LoadBenchArgs {
    /// Load this server instead of starting `fibtest serve` (http://127.0.0.1:PORT/...).
    #[arg(long)]
    pub target: Option<String>,
    /// Length of each measured run.
    #[arg(long, default_value = "3s")]
    pub duration: Span,
    /// Connections of wrk's capacity run and of the generator (and of --target runs).
    #[arg(long, default_value_t = 8)]
    pub connections: u32,
    /// Open-loop rates to try, rising; stops after the first the generator cannot keep.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "5000,7000,10000,14000,20000,28000,40000,56000,80000,112000"
    )]
    pub rates: Vec<f64>,
    /// CPU of the generator and of wrk.
    #[arg(long, default_value_t = 0)]
    pub gen_cpu: u32,
    /// CPU of the server's workers.
    #[arg(long, default_value_t = 1)]
    pub server_cpu: u32,
    /// Worker threads of the server.
    #[arg(long, default_value_t = 1)]
    pub server_threads: u32,
    /// Low-load comparison: requests per second on one connection.
    #[arg(long, default_value_t = 200.0)]
    pub low_rate: f64,
    /// Low-load comparison: CPU time per request at the server.
    #[arg(long, default_value = "1ms")]
    pub low_work: Span,
    /// With --target: wrk's pause between an answer and the next request on each
    /// connection (a closed loop with think time).
    #[arg(long, default_value = "20ms")]
    pub wrk_think: Span,
    /// With --target: Poisson arrivals for the generator (default: constant).
    #[arg(long)]
    pub poisson: bool,
    /// With --target: the server's cgroup `cpu.stat` (v1 or v2), read before and after
    /// each tool's run for its throttled periods.
    #[arg(long, value_name = "FILE")]
    pub cpu_stat: Option<PathBuf>,
    /// The generator polls without sleeping once a send is this close (see
    /// `load::LoadSpec::spin`; 0: always sleep).
    #[arg(long, default_value = "0us")]
    pub spin: Span,
    /// Also write every row as CSV here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// One row of a table: a tool's run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadRow {
    /// Which table: "capacity", "low-load", "target".
    pub table: &'static str,
    /// "wrk" or "throttlebench".
    pub tool: &'static str,
    /// How it loaded: "closed", "closed+think", "open", "open, spin 100us", or "open
    /// (from send)" for the generator's send-to-end times (what a closed loop would
    /// record).
    pub mode: &'static str,
    pub connections: u32,
    /// Rate asked for (open loop), per s; 0 for a closed loop.
    pub rate_asked: f64,
    /// Answers per second of the measured time.
    pub rate_done: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// wrk prints no p99.9: empty for wrk.
    pub p999_ms: Option<f64>,
    pub max_ms: f64,
    /// CPU time of the tool per request, in µs.
    pub cpu_per_request_us: f64,
    /// Tool CPU time / wall time, in % of one CPU.
    pub cpu_pct: f64,
    /// The generator's lateness p99 against its schedule, in µs (empty for wrk).
    pub late_p99_us: Option<f64>,
    /// Requests without an answer (wrk: socket errors).
    pub errors: u64,
    /// The generator could not keep to its schedule (10% of sends over 1 ms late).
    pub saturated: bool,
    /// Capacity sweep: the server did not keep up (answers missing, or a median ten
    /// times that of the lowest rate).
    pub server_behind: bool,
    /// With --cpu-stat: CFS periods during the tool's run, and those throttled.
    pub nr_periods: Option<u64>,
    pub nr_throttled: Option<u64>,
}

/// nr_periods and nr_throttled from a cgroup's cpu.stat.
fn throttle_counts(path: &Path) -> Result<(u64, u64)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .with_context(|| format!("{}: no {name} line", path.display()))
    };
    Ok((field("nr_periods")?, field("nr_throttled")?))
}

/// Fill a row's throttle columns from counts before and after its run.
fn with_throttling(
    mut row: LoadRow,
    before: Option<(u64, u64)>,
    after: Option<(u64, u64)>,
) -> LoadRow {
    if let (Some(b), Some(a)) = (before, after) {
        row.nr_periods = Some(a.0 - b.0);
        row.nr_throttled = Some(a.1 - b.1);
    }
    row
}

/// What wrk printed, read back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WrkResult {
    pub requests: u64,
    pub seconds: f64,
    pub rate: f64,
    /// Latency percentiles 50, 75, 90, 99, in s.
    pub p50_s: f64,
    pub p75_s: f64,
    pub p90_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
    pub socket_errors: u64,
    pub non_2xx: u64,
}

/// A duration as wrk prints it: `812.00us`, `1.23ms`, `2.00s`, `1.50m`.
fn wrk_time(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = text.split_at(split);
    let v: f64 = num.parse().ok()?;
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some(v * scale)
}

/// Read wrk's report (run with `--latency`).
pub fn parse_wrk(out: &str) -> Result<WrkResult> {
    let mut r = WrkResult::default();
    let mut seen = 0;
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["Latency", _avg, _sd, max, ..] => {
                r.max_s = wrk_time(max).context("wrk's latency max")?;
            }
            [p, t] if p.ends_with('%') => {
                let v = wrk_time(t).with_context(|| format!("wrk's {p} latency `{t}`"))?;
                match *p {
                    "50%" => r.p50_s = v,
                    "75%" => r.p75_s = v,
                    "90%" => r.p90_s = v,
                    "99%" => r.p99_s = v,
                    _ => {}
                }
                seen += 1;
            }
            [n, "requests", "in", secs, ..] => {
                r.requests = n.parse().context("wrk's request count")?;
                r.seconds = secs
                    .trim_end_matches(',')
                    .trim_end_matches('s')
                    .parse()
                    .context("wrk's run time")?;
            }
            ["Requests/sec:", v] => r.rate = v.parse().context("wrk's Requests/sec")?,
            ["Socket", "errors:", rest @ ..] => {
                r.socket_errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => r.non_2xx = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    if seen < 4 || r.requests == 0 {
        bail!("wrk printed no latency distribution or no request count:\n{out}");
    }
    Ok(r)
}

/// A child process ended (SIGTERM, then reaped) when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// Start `fibtest serve` (this binary's `fibtest` command) on a free port, and wait
/// until it has written its header and accepts connections.
fn start_server(work: Span, threads: u32, cpu: u32) -> Result<Server> {
    let port = load::free_loopback_port().context("picking a free port")?;
    let exe = std::env::current_exe().context("finding this program")?;
    let mut child = Command::new(exe)
        .args(["fibtest", "serve", "--port", &port.to_string()])
        .args([
            "--threads",
            &threads.to_string(),
            "--work",
            &work.to_string(),
        ])
        .args(["--cpus", &cpu.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting fibtest serve")?;
    let mut header = String::new();
    let stdout = child.stdout.take().expect("piped");
    BufReader::new(stdout)
        .read_line(&mut header)
        .context("reading fibtest serve's header")?;
    let server = Server { child, port };
    if !header.contains("\"mode\":\"serve\"") {
        bail!("fibtest serve did not start (its first line: {header:?})");
    }
    load::wait_for_port(([127, 0, 0, 1], port).into(), Duration::from_secs(10))?;
    Ok(server)
}

/// CPU time of reaped children so far, in s.
fn children_cpu_s() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

/// A Lua script for wrk that pauses `think` between requests, in a `tb-*` temp file
/// removed when dropped.
struct ThinkScript(PathBuf);

impl ThinkScript {
    fn new(think: Span) -> Result<ThinkScript> {
        let path = std::env::temp_dir().join(format!("tb-load-think-{}.lua", std::process::id()));
        std::fs::write(
            &path,
            format!("function delay()\n  return {}\nend\n", think.0.as_millis()),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        Ok(ThinkScript(path))
    }
}

impl Drop for ThinkScript {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Run wrk (one thread, pinned to `cpu`) and read its report; None when wrk is not
/// installed. Its CPU time is what it used as a reaped child.
fn run_wrk(
    url: &str,
    connections: u32,
    duration: Span,
    cpu: u32,
    script: Option<&Path>,
) -> Result<Option<(WrkResult, f64)>> {
    let secs = duration.0.as_secs().max(1);
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "--latency", "--timeout", "10s"]).args([
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{secs}s"),
    ]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    cmd.arg(url).stdin(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: between fork and exec only sched_setaffinity, a system call, runs.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            let mut set = nix::sched::CpuSet::new();
            set.set(cpu as usize)?;
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
            Ok(())
        });
    }
    let cpu0 = children_cpu_s();
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("running wrk"),
    };
    let cpu = children_cpu_s() - cpu0;
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(Some((
        parse_wrk(&String::from_utf8_lossy(&out.stdout))?,
        cpu,
    )))
}

fn wrk_row(table: &'static str, mode: &'static str, c: u32, w: &WrkResult, cpu: f64) -> LoadRow {
    LoadRow {
        table,
        tool: "wrk",
        mode,
        connections: c,
        rate_asked: 0.0,
        rate_done: w.rate,
        p50_ms: w.p50_s * 1e3,
        p90_ms: w.p90_s * 1e3,
        p99_ms: w.p99_s * 1e3,
        p999_ms: None,
        max_ms: w.max_s * 1e3,
        cpu_per_request_us: cpu * 1e6 / w.requests.max(1) as f64,
        cpu_pct: 100.0 * cpu / w.seconds.max(1e-9),
        late_p99_us: None,
        errors: w.socket_errors,
        saturated: false,
        ..LoadRow::default()
    }
}

/// The generator's row, from due times (`from_send`: from sends).
fn gen_row(table: &'static str, r: &LoadReport, from_send: bool) -> LoadRow {
    let p = if from_send { &r.service } else { &r.latency };
    LoadRow {
        table,
        tool: "throttlebench",
        mode: if from_send {
            "open (from send)"
        } else {
            "open"
        },
        connections: r.connections,
        rate_asked: r.rate,
        rate_done: r.achieved_rate,
        p50_ms: p.p50_s * 1e3,
        p90_ms: p.p90_s * 1e3,
        p99_ms: p.p99_s * 1e3,
        p999_ms: Some(p.p999_s * 1e3),
        max_ms: p.max_s * 1e3,
        cpu_per_request_us: r.cpu_per_request_us,
        cpu_pct: 100.0 * r.generator_busy,
        late_p99_us: Some(r.lateness.p99_s * 1e6),
        errors: r.errors.total(),
        saturated: r.generator_saturated().is_some(),
        ..LoadRow::default()
    }
}

fn generate(spec: &LoadSpec) -> Result<LoadReport> {
    let stop = AtomicBool::new(false);
    Ok(load::run(spec, &stop, |_| Ok(()))?)
}

fn print_header() {
    println!(
        "{:<9} {:<14} {:<17} {:>5} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>9} {:>6} {:>9}",
        "table", "tool", "mode", "conns", "rate_asked", "rate_done", "p50_ms", "p90_ms", "p99_ms",
        "p99.9_ms", "max_ms", "cpu/req_us", "cpu_%", "late99_us", "errors", "throttled"
    );
}

fn print_row(r: &LoadRow) {
    let opt = |v: Option<f64>, prec: usize| v.map_or("-".to_string(), |v| format!("{v:.prec$}"));
    println!(
        "{:<9} {:<14} {:<17} {:>5} {:>10.0} {:>10.0} {:>8.3} {:>8.3} {:>8.3} {:>8} {:>8.3} {:>9.2} {:>6.1} {:>9} {:>6} {:>9}{}",
        r.table,
        r.tool,
        r.mode,
        r.connections,
        r.rate_asked,
        r.rate_done,
        r.p50_ms,
        r.p90_ms,
        r.p99_ms,
        opt(r.p999_ms, 3),
        r.max_ms,
        r.cpu_per_request_us,
        r.cpu_pct,
        opt(r.late_p99_us, 0),
        r.errors,
        match (r.nr_throttled, r.nr_periods) {
            (Some(t), Some(p)) => format!("{t}/{p}"),
            _ => "-".to_string(),
        },
        if r.saturated {
            "  generator saturated"
        } else if r.server_behind {
            "  server behind"
        } else {
            ""
        }
    );
    let _ = std::io::stdout().flush();
}

pub fn run(a: &LoadBenchArgs) -> Result<()> {
    let mut rows = Vec::new();
    let mut emit = |r: LoadRow| {
        print_row(&r);
        rows.push(r);
    };
    let gen_cpus = Some(CpuList::from_cpus([a.gen_cpu]));
    let spin = a.spin.0;
    let mut wrk_missing = false;
    print_header();
    match &a.target {
        Some(url) => {
            let target: Target = url.parse()?;
            let counts = || a.cpu_stat.as_deref().map(throttle_counts).transpose();
            let script = ThinkScript::new(a.wrk_think)?;
            let before = counts()?;
            let Some((w, cpu)) =
                run_wrk(url, a.connections, a.duration, a.gen_cpu, Some(&script.0))?
            else {
                bail!("wrk is not installed (apt-get install wrk): --target compares against it");
            };
            let row = wrk_row("target", "closed+think", a.connections, &w, cpu);
            emit(with_throttling(row, before, counts()?));
            let spec = LoadSpec {
                connections: a.connections,
                arrivals: if a.poisson {
                    Arrivals::Poisson { seed: 1 }
                } else {
                    Arrivals::Constant
                },
                timeout: Duration::from_secs(10),
                cpus: gen_cpus,
                spin,
                ..LoadSpec::new(
                    target,
                    w.rate,
                    Duration::from_secs(w.seconds.round().max(1.0) as u64),
                )
            };
            let before = counts()?;
            let r = generate(&spec)?;
            let after = counts()?;
            emit(with_throttling(gen_row("target", &r, false), before, after));
            emit(with_throttling(gen_row("target", &r, true), before, after));
        }
        None => {
            // 1. Capacity: the server answers at once (--work 0).
            let server = start_server(Span::default(), a.server_threads, a.server_cpu)?;
            let url = format!("http://127.0.0.1:{}/", server.port);
            match run_wrk(&url, a.connections, a.duration, a.gen_cpu, None)? {
                Some((w, cpu)) => emit(wrk_row("capacity", "closed", a.connections, &w, cpu)),
                None => wrk_missing = true,
            }
            let mut first_p50 = None;
            for &rate in &a.rates {
                let spec = LoadSpec {
                    connections: a.connections,
                    timeout: Duration::from_secs(2),
                    cpus: gen_cpus.clone(),
                    spin,
                    ..LoadSpec::new(url.parse()?, rate, a.duration.0)
                };
                let r = generate(&spec)?;
                // The sweep ends where either side stops keeping up: the generator (late
                // sends) or the server (answers missing, or a median ten times that of
                // the lowest rate: requests queue).
                let p50 = *first_p50.get_or_insert(r.latency.p50_s);
                let server_behind =
                    r.responses * 100 < r.scheduled * 99 || r.latency.p50_s > 10.0 * p50;
                let mut row = gen_row("capacity", &r, false);
                row.server_behind = server_behind;
                emit(row);
                if r.generator_saturated().is_some() || server_behind {
                    break;
                }
            }
            drop(server);
            // 2. Low load: one connection, requests of --low-work, no request waits for
            // another.
            let server = start_server(a.low_work, 1, a.server_cpu)?;
            let url = format!("http://127.0.0.1:{}/", server.port);
            if let Some((w, cpu)) = run_wrk(&url, 1, a.duration, a.gen_cpu, None)? {
                emit(wrk_row("low-load", "closed", 1, &w, cpu));
            }
            let gap_ms = (1e3 / a.low_rate - a.low_work.as_secs_f64() * 1e3).max(0.0) as u64;
            let script = ThinkScript::new(Span::from_millis(gap_ms))?;
            if let Some((w, cpu)) = run_wrk(&url, 1, a.duration, a.gen_cpu, Some(&script.0))? {
                emit(wrk_row("low-load", "closed+think", 1, &w, cpu));
            }
            let spec = LoadSpec {
                cpus: gen_cpus,
                spin,
                ..LoadSpec::new(url.parse()?, a.low_rate, a.duration.0)
            };
            let r = generate(&spec)?;
            emit(gen_row("low-load", &r, false));
            emit(gen_row("low-load", &r, true));
            // The same with 100 µs of spinning before each send (`LoadSpec::spin`): what
            // punctual sends change at low load.
            if spin.is_zero() {
                let spec = LoadSpec {
                    spin: Duration::from_micros(100),
                    ..spec
                };
                let mut row = gen_row("low-load", &generate(&spec)?, false);
                row.mode = "open, spin 100us";
                emit(row);
            }
        }
    }
    if wrk_missing {
        println!("wrk not found (apt-get install wrk): only the generator's rows");
    }
    if let Some(path) = &a.csv {
        super::write_csv(path, &rows)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_report() {
        let out = "Running 2s test @ http://127.0.0.1:18080/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.40ms    6.28ms   1.02s    85.59%
    Req/Sec     1.14k   172.86     1.40k    90.48%
  Latency Distribution
     50%  812.00us
     75%    6.07ms
     90%   11.04ms
     99%    1.01s
  2380 requests in 2.11s, 155.72KB read
  Socket errors: connect 1, read 2, write 0, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:   1125.75
Transfer/sec:     73.66KB
";
        let r = parse_wrk(out).unwrap();
        assert_eq!((r.requests, r.seconds, r.rate), (2380, 2.11, 1125.75));
        assert!((r.p50_s - 812e-6).abs() < 1e-12 && (r.p99_s - 1.01).abs() < 1e-12);
        assert!((r.max_s - 1.02).abs() < 1e-12 && (r.p90_s - 0.01104).abs() < 1e-12);
        assert_eq!((r.socket_errors, r.non_2xx), (7, 5));
        assert!(parse_wrk("wrk: connection refused").is_err());
    }
}
