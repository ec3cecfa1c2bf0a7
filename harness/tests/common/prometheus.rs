//! A real Prometheus server for integration tests: Debian's `prometheus` on a loopback
//! port, scraping one target at a short interval, queried through its HTTP API, stopped
//! and its data folder removed when dropped.
//!
//! Readiness is its `/-/ready` endpoint and data is waited for with queries, never with
//! sleeps. A test that needs it calls `prometheus_or_skip` first: without the binaries it
//! skips, except under CI, where it fails (`.ci/run` installs the package).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

/// Whether this run is CI's (`common::ci`).
pub fn in_ci() -> bool {
    super::ci()
}

/// Whether a program is on PATH (runs with `--version`).
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Skip (or fail under CI) without `program`; `package` is what provides it.
pub fn program_or_skip(test: &str, program: &str, package: &str) -> bool {
    if have(program) {
        return true;
    }
    let why = format!("{test}: needs `{program}` (Debian package or tool `{package}`)");
    assert!(!in_ci(), "{why}; .ci/run installs it");
    eprintln!("skipped: {why}");
    false
}

/// Skip (or fail under CI) without Debian's prometheus (server and promtool).
pub fn prometheus_or_skip(test: &str) -> bool {
    program_or_skip(test, "prometheus", "prometheus")
        && program_or_skip(test, "promtool", "prometheus")
}

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    // Removed after the process is stopped (`drop` runs before the fields are dropped).
    dir: TempDir,
}

impl Prometheus {
    /// Start one that scrapes `target` every `interval` (e.g. "1s"), with the rule files
    /// given (evaluated at the same interval). Waits until it is ready.
    pub fn start(target: SocketAddr, interval: &str, rule_files: &[PathBuf]) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let mut config =
            format!("global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n");
        if !rule_files.is_empty() {
            config.push_str("rule_files:\n");
            for p in rule_files {
                config.push_str(&format!("  - {}\n", p.display()));
            }
        }
        config.push_str(&format!(
            "scrape_configs:\n  - job_name: throttlebench\n    static_configs:\n      - targets: ['{target}']\n"
        ));
        let config = dir.file("prometheus.yml", &config);
        let log = dir.path().join("prometheus.log");
        // A free port: bound by us, released, then given to Prometheus. Another process
        // could take it in between; then Prometheus exits and we try another.
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut child = Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("start prometheus");
            match wait_ready(&mut child, addr, &log, Duration::from_secs(60)) {
                Ok(()) => return Prometheus { child, addr, dir },
                Err(e) => {
                    stop(&mut child);
                    last_err = e;
                }
            }
        }
        panic!("prometheus did not start: {last_err}");
    }

    /// `GET path` on its HTTP API; the body as JSON, `data` checked to be a success.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let (status, body) =
            http_get(self.addr, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"));
        assert_eq!(status, 200, "GET {path}: {body}");
        assert_eq!(v["status"], "success", "GET {path}: {body}");
        v["data"].clone()
    }

    /// An instant query at `time` (unix seconds, ms precision; now when `None`): its
    /// `result`.
    pub fn query(&self, expr: &str, time: Option<f64>) -> serde_json::Value {
        let mut path = format!("/api/v1/query?query={}", url_encode(expr));
        if let Some(t) = time {
            path.push_str(&format!("&time={t:.3}"));
        }
        self.api(&path)["result"].clone()
    }

    /// The value of the only sample of an instant vector query, `None` when it is empty.
    pub fn query_value(&self, expr: &str, time: Option<f64>) -> Option<f64> {
        let r = self.query(expr, time);
        let v = r
            .as_array()
            .unwrap_or_else(|| panic!("{expr}: not a vector: {r}"));
        assert!(v.len() <= 1, "{expr}: {} series: {r}", v.len());
        v.first().map(|s| sample_value(&s["value"]))
    }

    /// The raw samples of a range query `metric[range]` at `time`: (ms, value) pairs.
    pub fn samples(&self, selector: &str, time: f64) -> Vec<(i64, f64)> {
        let r = self.query(selector, Some(time));
        let series = r.as_array().unwrap();
        assert_eq!(series.len(), 1, "{selector}: {r}");
        series[0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                    sample_value(p),
                )
            })
            .collect()
    }

    /// Its version, from its build info ("2.42.0").
    pub fn version(&self) -> String {
        self.api("/api/v1/status/buildinfo")["version"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The folder of its config and data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Poll `/-/ready` until it answers 200; an error if the process exits first.
fn wait_ready(
    child: &mut Child,
    addr: SocketAddr,
    log: &Path,
    limit: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("exited with {status}:\n{log}"));
        }
        if let Ok((200, _)) = http_get(addr, "/-/ready") {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!("not ready after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM (a clean shutdown), SIGKILL if it takes over 10 s; reaped either way.
fn stop(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A sample's `[time, "value"]` pair's value.
fn sample_value(pair: &serde_json::Value) -> f64 {
    pair[1].as_str().unwrap().parse().unwrap()
}

/// One HTTP/1.0 GET on loopback: the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| e.to_string())?;
    let out = String::from_utf8_lossy(&out);
    let (head, body) = out.split_once("\r\n\r\n").ok_or("no HTTP head")?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status")?;
    Ok((code, body.to_string()))
}

/// Percent-encode a query parameter (RFC 3986 unreserved characters kept).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The rule groups of a PrometheusRule manifest as a Prometheus rule file: the lines
/// under its top-level `spec:`, de-indented by two spaces.
pub fn rule_file_of(prometheus_rule: &str) -> String {
    let mut lines = prometheus_rule.lines();
    assert!(
        lines.any(|l| l == "spec:"),
        "no top-level `spec:` line in the PrometheusRule"
    );
    let mut out = String::new();
    for l in lines {
        assert!(
            l.is_empty() || l.starts_with("  "),
            "a line after spec: that is not indented under it: {l:?}"
        );
        out.push_str(l.get(2..).unwrap_or(""));
        out.push('\n');
    }
    out
}

/// The repository's `deploy/` folder.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}
