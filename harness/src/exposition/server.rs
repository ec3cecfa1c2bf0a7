//! `--serve ADDR`: a small HTTP server on its own thread that answers `GET /metrics` with
//! the exposition.
//!
//! Hand-written on `std::net::TcpListener`: one request per connection, answered in turn
//! (a scrape every few seconds needs no more), `Connection: close`. OpenMetrics when the
//! request's `Accept` names `application/openmetrics-text` (Prometheus's scrapes do), the
//! Prometheus text format 0.0.4 otherwise (curl, promtool). A slow or silent client is cut
//! off after `IO_TIMEOUT`, so it cannot hold the server, and sooner when the server stops. `stop` (or dropping the server)
//! wakes the blocked `accept` with a connection of its own and joins the thread.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Exposition, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};

/// How long one client may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a wait for a request's bytes looks whether the server is being stopped.
const STOP_POLL: Duration = Duration::from_millis(100);
/// The longest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// The server could not listen on the address given.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {source}")]
pub struct ServeError {
    pub addr: String,
    #[source]
    pub source: std::io::Error,
}

/// A running metrics server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Listen on `addr` (`127.0.0.1:9464`, `0.0.0.0:9464`, port 0 for any free port) and
    /// serve `exposition` until stopped.
    pub fn start(addr: &str, exposition: Exposition) -> Result<Server, ServeError> {
        let err = |source| ServeError {
            addr: addr.to_string(),
            source,
        };
        let resolved: Vec<SocketAddr> = addr.to_socket_addrs().map_err(err)?.collect();
        let listener = TcpListener::bind(&resolved[..]).map_err(err)?;
        let local = listener.local_addr().map_err(err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("metrics-server".into())
            .spawn(move || serve(listener, exposition, flag))
            .map_err(err)?;
        Ok(Server {
            addr: local,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on (with the port chosen when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop serving and wait for the thread (a request being answered is finished first).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocked accept(). A wildcard address is reached through loopback.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, IO_TIMEOUT);
        let _ = thread.join();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(listener: TcpListener, exposition: Exposition, stop: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        // A failed accept (a client that reset at once, too many files) is that client's
        // problem; keep serving the others.
        if let Ok(stream) = conn {
            let _ = answer(stream, &exposition, &stop);
        }
    }
}

/// Read one request and answer it.
fn answer(
    mut stream: TcpStream,
    exposition: &Exposition,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(STOP_POLL))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let started = Instant::now();
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop.load(Ordering::SeqCst) || started.elapsed() > IO_TIMEOUT {
                    return Ok(());
                }
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "request head too large\n",
            );
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or("").split(' ');
    let (method, target) = (request.next().unwrap_or(""), request.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let accept = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("accept"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => {
            if accept.contains("application/openmetrics-text") {
                respond(
                    &mut stream,
                    "200 OK",
                    OPENMETRICS_CONTENT_TYPE,
                    &exposition.encode_openmetrics(),
                )
            } else {
                respond(
                    &mut stream,
                    "200 OK",
                    TEXT_CONTENT_TYPE,
                    &exposition.encode_text(),
                )
            }
        }
        ("GET", "/") => respond(
            &mut stream,
            "200 OK",
            "text/plain; charset=utf-8",
            "throttlebench: metrics at /metrics\n",
        ),
        ("GET", _) => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            "not found; metrics are at /metrics\n",
        ),
        _ => respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n",
        ),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}
