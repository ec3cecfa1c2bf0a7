//! `fibtest serve`: a reference server whose every request costs a fixed amount of CPU, so
//! a load generator can measure what a CPU limit does to a service's latency without a
//! third-party server.
//!
//! ## Shape
//! N worker threads, each pinned (when CPUs are given) and each running its own epoll
//! loop, as nginx's worker processes do. The calling thread accepts connections and hands
//! them to the workers in turn; a worker serves a connection for its whole life. A request is parsed, its CPU work is done on the
//! worker's thread (Fibonacci steps until the thread's CPU clock has advanced by `--work`,
//! the same work as `fibtest requests`), and the answer is written. So at most N requests
//! run at once, and a request whose worker is busy waits in that worker's socket queue,
//! as it would in an event-loop server.
//!
//! ## Protocols
//! - `http`: HTTP/1.1 with keep-alive; GET, or any method with a `Content-Length` body
//!   (read and discarded). Pipelined requests are served in order. The answer is
//!   `200 OK` with a 3-byte body `ok\n`; `Connection: close` (or HTTP/1.0) closes after the
//!   answer. A chunked request body, or a request head over 8 KiB, is answered with an
//!   error status and the connection is closed.
//! - `line`: read a line (up to `\n`), do the work, write the same line back.
//!
//! ## The hot path
//! Each connection gets one buffer when it is accepted (reused from closed connections
//! where there is one); parsing works in that buffer, and answers are static bytes. No
//! allocation, lock or print happens per request. Counters are per worker and written as
//! `thread` records when the server stops (SIGINT or SIGTERM, seen within 100 ms).

use crate::clock::{Host, System};
use crate::cpulist::{pin_current_thread, CpuList};
use crate::fib::Fib;
use crate::record::{End, Header, Mode, Record, Role, ThreadReport, FORMAT_VERSION};
use crate::span::Span;
use crate::stop;
use crate::work::REQUEST_CHECK_STEPS;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Bytes a connection can hold: a request head (or a line) must fit.
pub const CONN_BUFFER: usize = 8192;
/// How often a worker looks at the stop flag while idle.
const STOP_POLL_MS: u16 = 100;

/// `fibtest serve` flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TCP port to listen on, on 127.0.0.1.
    #[arg(long)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: std::net::IpAddr,
    /// Worker threads (each serves its connections one request at a time).
    #[arg(long, default_value_t = 1)]
    pub threads: u32,
    /// CPU time each request costs (thread CPU clock); 0 answers at once.
    #[arg(long, default_value = "5ms")]
    pub work: Span,
    /// Wire protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Http)]
    pub protocol: Protocol,
    /// CPUs to pin the workers to (round-robin; default: not pinned).
    #[arg(long)]
    pub cpus: Option<CpuList>,
}

/// What the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    Http,
    /// One line in, the same line out.
    Line,
}

/// A server resolved from its flags.
#[derive(Debug, Clone)]
pub struct ServeParams {
    pub threads: u32,
    /// CPU time per request, in ns of the worker's thread CPU clock.
    pub work_ns: u64,
    pub protocol: Protocol,
    /// CPU of each worker, in worker order (None: not pinned).
    pub cpus: Vec<Option<u32>>,
}

/// What one worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Requests answered.
    pub requests: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Requests refused (bad head, chunked body, line too long).
    pub refused: u64,
    /// Fibonacci steps done as request work.
    pub steps: u64,
    /// CPU time of the worker thread, in ns.
    pub cpu_ns: u64,
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
const OK_CLOSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const NO_CHUNKED: &[u8] =
    b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// What the parser found at the front of a connection's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Not a whole request head (or line) yet.
    Incomplete,
    /// A request: its head (or line) is `head` bytes, its body `body` bytes more.
    Request {
        head: usize,
        body: usize,
        close: bool,
    },
    /// A request that cannot be served: answer this and close.
    Refuse(&'static [u8]),
}

/// Parse the HTTP/1.1 request head at the front of `buf`.
pub fn parse_http(buf: &[u8]) -> Parsed {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() >= CONN_BUFFER {
            Parsed::Refuse(TOO_LARGE)
        } else {
            Parsed::Incomplete
        };
    };
    let head = &buf[..end];
    let mut lines = head.split(|&b| b == b'\n').map(trim_cr);
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(_method), Some(_path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parsed::Refuse(BAD);
    };
    // HTTP/1.0 closes unless it asks for keep-alive; 1.1 keeps the connection unless
    // it asks to close.
    let mut close = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        _ => return Parsed::Refuse(BAD),
    };
    let mut body = 0usize;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Parsed::Refuse(BAD);
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            match std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) {
                Some(n) => body = n,
                None => return Parsed::Refuse(BAD),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Parsed::Refuse(NO_CHUNKED);
        } else if name.eq_ignore_ascii_case(b"connection") {
            if value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    Parsed::Request {
        head: end + 4,
        body,
        close,
    }
}

/// Parse a line at the front of `buf` (its `\n` included).
pub fn parse_line(buf: &[u8]) -> Parsed {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) => Parsed::Request {
            head: i + 1,
            body: 0,
            close: false,
        },
        None if buf.len() >= CONN_BUFFER => Parsed::Refuse(b""),
        None => Parsed::Incomplete,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// Spend `work_ns` of the calling thread's CPU time on Fibonacci steps, reading the CPU
/// clock every `check_steps` steps, as a `fibtest requests` request does; returns the
/// steps done.
pub fn spend_cpu<H: Host>(h: &H, fib: &mut Fib, work_ns: u64, check_steps: u64) -> u64 {
    if work_ns == 0 {
        return 0;
    }
    let c0 = h.thread_cpu_ns();
    let mut steps = 0;
    loop {
        h.steps(fib, check_steps);
        steps += check_steps;
        if h.thread_cpu_ns() - c0 >= work_ns {
            return steps;
        }
    }
}

/// One open connection of a worker.
struct Conn {
    stream: TcpStream,
    buf: Box<[u8]>,
    /// Bytes of `buf` filled.
    fill: usize,
    /// Body bytes of the current request still to read and discard.
    body_left: usize,
    /// The current request's head is parsed and its answer waits for the body.
    pending: Option<bool>,
}

/// A worker's epoll set and the connections handed to it that it has not taken yet.
struct WorkerInbox {
    epoll: Epoll,
    new: Mutex<Vec<TcpStream>>,
}

/// One worker's epoll loop, until `stop` says so. Connections come from the acceptor
/// through `inbox`; the epoll token of a connection is its file descriptor, which is
/// also its slot in `conns`.
fn worker(
    inbox: &WorkerInbox,
    p: &ServeParams,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<WorkerCounts> {
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut spare: Vec<Box<[u8]>> = Vec::new();
    let mut events = [EpollEvent::empty(); 64];
    let mut counts = WorkerCounts::default();
    let mut fib = Fib::default();
    let cpu0 = System.thread_cpu_ns();
    while !stop() {
        let n = match inbox
            .epoll
            .wait(&mut events, EpollTimeout::from(STOP_POLL_MS))
        {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("epoll_wait"),
        };
        for ev in &events[..n] {
            let slot = ev.data() as usize;
            if conns.get(slot).is_none_or(Option::is_none) {
                // A connection handed over since the last look: take them all (a lock
                // per new connection, never per request).
                adopt(&inbox.new, &mut conns, &mut spare, &mut counts);
            }
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if !serve_conn(conn, p, &mut fib, &mut counts) {
                let conn = conns[slot].take().expect("checked above");
                let _ = inbox.epoll.delete(conn.stream.as_fd());
                spare.push(conn.buf);
            }
        }
    }
    counts.cpu_ns = System.thread_cpu_ns() - cpu0;
    Ok(counts)
}

/// Move the connections waiting in `new` into their slots (by file descriptor), each
/// with a buffer (a spare one from a closed connection where there is one).
fn adopt(
    new: &Mutex<Vec<TcpStream>>,
    conns: &mut Vec<Option<Conn>>,
    spare: &mut Vec<Box<[u8]>>,
    counts: &mut WorkerCounts,
) {
    let mut new = new.lock().expect("no thread panics holding the inbox");
    for stream in new.drain(..) {
        let slot = stream.as_raw_fd() as usize;
        if conns.len() <= slot {
            conns.resize_with(slot + 1, || None);
        }
        let buf = spare
            .pop()
            .unwrap_or_else(|| vec![0u8; CONN_BUFFER].into_boxed_slice());
        conns[slot] = Some(Conn {
            stream,
            buf,
            fill: 0,
            body_left: 0,
            pending: None,
        });
        counts.connections += 1;
    }
}

/// Accept connections until `stop` says so, handing them to the workers in turn.
///
/// Round-robin from one acceptor, rather than every worker accepting from a shared
/// socket: with EPOLLEXCLUSIVE a burst of connects (wrk opens all of its connections at
/// once) went to the first worker to wake, leaving the others idle.
fn acceptor(
    listener: &TcpListener,
    inboxes: &[WorkerInbox],
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<()> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll_create1")?;
    epoll
        .add(listener.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 0))
        .context("adding the listening socket to epoll")?;
    let mut events = [EpollEvent::empty(); 1];
    let mut next = 0usize;
    while !stop() {
        match epoll.wait(&mut events, EpollTimeout::from(STOP_POLL_MS)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).context("epoll_wait"),
        }
        loop {
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // A connection reset before it was accepted, or out of descriptors:
                // not the server's end.
                Err(_) => break,
            };
            // Accepted sockets are blocking (accept4 without SOCK_NONBLOCK): a worker
            // reads only what epoll said is there and writes answers of a few bytes; the
            // write timeout keeps a client that never reads from holding a worker.
            let _ = stream.set_nodelay(true);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let w = &inboxes[next % inboxes.len()];
            next += 1;
            let fd = stream.as_raw_fd();
            // Into the inbox first, so the worker finds it when the first event comes.
            w.new
                .lock()
                .expect("no thread panics holding the inbox")
                .push(stream);
            // SAFETY: the stream is open: it is in the inbox, and the worker closes it
            // only after taking it out, which needs an event from this registration.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            w.epoll
                .add(
                    fd,
                    EpollEvent::new(
                        EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP,
                        fd.as_raw_fd() as u64,
                    ),
                )
                .context("adding a connection to a worker's epoll")?;
        }
    }
    Ok(())
}

/// Read what a readable connection has and answer every whole request in it. Returns
/// false when the connection is to be closed.
fn serve_conn(c: &mut Conn, p: &ServeParams, fib: &mut Fib, counts: &mut WorkerCounts) -> bool {
    let got = match c.stream.read(&mut c.buf[c.fill..]) {
        Ok(0) => return false,
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::Interrupted => return true,
        Err(_) => return false,
    };
    c.fill += got;
    let mut at = 0;
    loop {
        // Discard body bytes of the current request.
        let skip = c.body_left.min(c.fill - at);
        at += skip;
        c.body_left -= skip;
        if let Some(close) = c.pending {
            if c.body_left > 0 {
                break;
            }
            c.pending = None;
            counts.steps += spend_cpu(&System, fib, p.work_ns, REQUEST_CHECK_STEPS);
            let answer = if close { OK_CLOSE } else { OK };
            if c.stream.write_all(answer).is_err() {
                return false;
            }
            counts.requests += 1;
            if close {
                return false;
            }
            continue;
        }
        let input = &c.buf[at..c.fill];
        let parsed = match p.protocol {
            Protocol::Http => parse_http(input),
            Protocol::Line => parse_line(input),
        };
        match parsed {
            Parsed::Incomplete => break,
            Parsed::Refuse(answer) => {
                counts.refused += 1;
                let _ = c.stream.write_all(answer);
                return false;
            }
            Parsed::Request { head, body, close } => match p.protocol {
                Protocol::Http => {
                    at += head;
                    c.body_left = body;
                    c.pending = Some(close);
                }
                Protocol::Line => {
                    counts.steps += spend_cpu(&System, fib, p.work_ns, REQUEST_CHECK_STEPS);
                    if c.stream.write_all(&c.buf[at..at + head]).is_err() {
                        return false;
                    }
                    counts.requests += 1;
                    at += head;
                }
            },
        }
    }
    // Keep the unparsed rest at the front for the next read.
    c.buf.copy_within(at..c.fill, 0);
    c.fill -= at;
    true
}

/// Serve on `listener` with `p.threads` workers until `stop` says so; returns each
/// worker's counts, in worker order. The calling thread accepts connections. Every
/// thread asks `stop` between waits, at least every 100 ms.
pub fn serve(
    listener: &TcpListener,
    p: &ServeParams,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<WorkerCounts>> {
    listener
        .set_nonblocking(true)
        .context("making the listening socket non-blocking")?;
    let inboxes = p
        .cpus
        .iter()
        .map(|_| {
            Ok(WorkerInbox {
                epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll_create1")?,
                new: Mutex::new(Vec::new()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // A failing thread stops the others, so the scope can end.
    let failed = AtomicBool::new(false);
    let stop_all = || stop() || failed.load(Ordering::Relaxed);
    std::thread::scope(|s| {
        let handles: Vec<_> = p
            .cpus
            .iter()
            .zip(&inboxes)
            .map(|(&cpu, inbox)| {
                let (stop_all, failed) = (&stop_all, &failed);
                s.spawn(move || {
                    let r = match cpu {
                        Some(cpu) => pin_current_thread(cpu)
                            .with_context(|| format!("pinning a worker to CPU {cpu}")),
                        None => Ok(()),
                    }
                    .and_then(|()| worker(inbox, p, stop_all));
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        let accepted = acceptor(listener, &inboxes, &stop_all);
        if accepted.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        let results: Vec<Result<WorkerCounts>> = handles
            .into_iter()
            .map(|h| h.join().expect("a server worker panicked"))
            .collect();
        accepted?;
        results.into_iter().collect()
    })
}

/// Resolve the flags (every CPU must be one this process may use).
pub fn params(a: &ServeArgs, allowed: &CpuList) -> Result<ServeParams> {
    if a.threads == 0 {
        bail!("--threads must be more than 0");
    }
    let cpus: Vec<Option<u32>> = (0..a.threads as usize)
        .map(|i| a.cpus.as_ref().and_then(|c| c.nth_wrapping(i)))
        .collect();
    if let Some(cpu) = cpus.iter().flatten().find(|&&c| !allowed.contains(c)) {
        bail!("CPU {cpu} (for a server worker) is not one this process may use: allowed CPUs are {allowed}");
    }
    Ok(ServeParams {
        threads: a.threads,
        work_ns: a.work.0.as_nanos() as u64,
        protocol: a.protocol,
        cpus,
    })
}

/// `fibtest serve`: bind, write the header record, serve until stopped, write a `thread`
/// record per worker (units = requests answered) and the `end` record.
pub fn run(
    a: &ServeArgs,
    args: &[String],
    write: &mut dyn FnMut(&[Record]) -> Result<()>,
) -> Result<()> {
    let allowed = crate::cpulist::allowed_cpus().context("reading this process's CPU affinity")?;
    let p = params(a, &allowed)?;
    let addr = std::net::SocketAddr::new(a.address, a.port);
    let listener = TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    let start = crate::clock::mono_ns();
    // The header goes out once the socket listens, so a reader may connect as soon as it
    // has read it.
    write(&[Record::Header(Header {
        version: FORMAT_VERSION,
        mode: Mode::Serve,
        pid: std::process::id(),
        start_monotonic_ns: start,
        args: args.to_vec(),
    })])?;
    let counts = serve(&listener, &p, &stop::requested)?;
    let wall_s = (crate::clock::mono_ns() - start) as f64 / 1e9;
    let mut records: Vec<Record> = counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Record::Thread(ThreadReport {
                role: Role::Request,
                index: i as u32,
                cpu: p.cpus[i],
                steps: c.steps,
                units: c.requests,
                units_dropped: 0,
                wall_s,
                cpu_s: c.cpu_ns as f64 / 1e9,
            })
        })
        .collect();
    records.push(Record::End(End {
        wall_s,
        cpu_s: crate::clock::process_cpu_ns() as f64 / 1e9,
        fast_steps: 0,
    }));
    write(&records)?;
    let total: u64 = counts.iter().map(|c| c.requests).sum();
    let conns: u64 = counts.iter().map(|c| c.connections).sum();
    let refused: u64 = counts.iter().map(|c| c.refused).sum();
    eprintln!("fibtest: serve: {total} requests on {conns} connections ({refused} refused), {wall_s:.3} s");
    Ok(())
}

#[cfg(test)]
mod tests;
