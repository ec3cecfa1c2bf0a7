//! One generator thread: its connections, each with its own schedule, driven by one
//! ppoll loop. Sends when a request is due and its connection is free, reads answers as
//! they come, times out what takes too long, and streams a record per request.
//!
//! One request is in flight per connection (HTTP/1.1 without pipelining, as wrk2 does):
//! a request that falls due while its connection waits for an earlier answer is sent as
//! soon as that answer is in, and its latency still counts from when it was due.
//!
//! The loop allocates nothing: buffers, the poll set and the histograms are made before
//! time zero, the request bytes are rendered once, and records go into a bounded
//! channel (full: the record is counted as dropped; the summary still has it).

use super::http::{ResponseParser, Step};
use super::record::{histogram, ErrorCounts, ErrorKind, Outcome, RequestRecord};
use super::schedule::ConnSchedule;
use super::LoadSpec;
use hdrhistogram::Histogram;
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::socket::{send, MsgFlags};
use nix::sys::time::TimeSpec;
use std::io::{ErrorKind as IoKind, Read};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

/// Bytes of one connection's read buffer: an answer's head must fit.
pub const READ_BUFFER: usize = 16 * 1024;

/// A send more than this behind schedule counts as late (`LoadReport::late_sends`).
pub const LATE_SEND_NS: u64 = 1_000_000;

/// What one thread measured.
pub struct ThreadResult {
    /// Latency from due, of answered requests outside the warm-up.
    pub latency: Histogram<u64>,
    /// Send to end, of the same requests.
    pub service: Histogram<u64>,
    /// How late each send was against the later of its due time and its connection
    /// becoming free: the generator's own lateness, every send.
    pub lateness: Histogram<u64>,
    pub late_sends: u64,
    /// Requests due outside the warm-up, however they ended.
    pub scheduled: u64,
    pub warmup: u64,
    pub responses: u64,
    pub non_2xx: u64,
    pub errors: ErrorCounts,
    /// Sends, warm-up included.
    pub sends: u64,
    pub records_dropped: u64,
    /// Last end time, ns since time zero.
    pub last_end_ns: u64,
    /// CPU time of the thread from time zero on, in ns.
    pub cpu_ns: u64,
    /// Time the thread was ready to run but waited for a CPU, from time zero on, in ns
    /// (None when the kernel keeps no scheduler statistics).
    pub wait_ns: Option<u64>,
}

/// This thread's time waiting on a run queue so far, in ns: the second field of
/// /proc/thread-self/schedstat (kernels with CONFIG_SCHED_INFO).
fn run_queue_wait_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

struct InFlight {
    index: u64,
    due: u64,
    sent: u64,
    /// Bytes of the request written so far.
    written: usize,
    warmup: bool,
}

struct Conn {
    id: u32,
    stream: Option<TcpStream>,
    /// The stream has carried a request before (a failed write may be a stale
    /// keep-alive connection: retried once on a fresh one).
    reused: bool,
    sched: ConnSchedule,
    busy: Option<InFlight>,
    /// When it last became free, ns since time zero.
    ready: u64,
    parser: ResponseParser,
    buf: Box<[u8]>,
    fill: usize,
}

/// A generator thread, before and during its run.
pub struct Engine<'a> {
    spec: &'a LoadSpec,
    request: &'a [u8],
    stops: [&'a AtomicBool; 2],
    tx: SyncSender<RequestRecord>,
    conns: Vec<Conn>,
    t0: u64,
    warmup_ns: u64,
    /// No request is due at or after this (ns since time zero).
    end_ns: u64,
    timeout_ns: u64,
    spin_ns: u64,
    fds: Vec<PollFd<'static>>,
    fd_conn: Vec<usize>,
    ready: Vec<(usize, PollFlags)>,
    out: ThreadResult,
}

/// ns since `t0` on CLOCK_MONOTONIC (a function, so it can be called while a connection
/// is borrowed).
#[inline]
fn since(t0: u64) -> u64 {
    fibtest::clock::mono_ns().saturating_sub(t0)
}

fn connect(spec: &LoadSpec) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&spec.target.addr, spec.timeout)?;
    s.set_nonblocking(true)?;
    s.set_nodelay(true)?;
    Ok(s)
}

impl<'a> Engine<'a> {
    /// A thread for connections `ids`, connected now where the service lets it
    /// (failures are retried at the first request).
    pub fn new(
        spec: &'a LoadSpec,
        request: &'a [u8],
        stops: [&'a AtomicBool; 2],
        tx: SyncSender<RequestRecord>,
        ids: &[u32],
    ) -> Engine<'a> {
        let line = spec.target.protocol == super::Protocol::Line;
        let conns: Vec<Conn> = ids
            .iter()
            .map(|&id| Conn {
                id,
                stream: connect(spec).ok(),
                reused: false,
                sched: ConnSchedule::new(spec.arrivals, spec.rate, id, spec.connections),
                busy: None,
                ready: 0,
                parser: ResponseParser::new(line),
                buf: vec![0; READ_BUFFER].into_boxed_slice(),
                fill: 0,
            })
            .collect();
        let n = conns.len();
        let ns = |d: Duration| d.as_nanos() as u64;
        Engine {
            spec,
            request,
            stops,
            tx,
            conns,
            t0: 0,
            warmup_ns: ns(spec.warmup),
            end_ns: ns(spec.warmup + spec.duration),
            timeout_ns: ns(spec.timeout),
            spin_ns: ns(spec.spin),
            fds: Vec::with_capacity(n),
            fd_conn: Vec::with_capacity(n),
            ready: Vec::with_capacity(n),
            out: ThreadResult {
                latency: histogram(),
                service: histogram(),
                lateness: histogram(),
                late_sends: 0,
                scheduled: 0,
                warmup: 0,
                responses: 0,
                non_2xx: 0,
                errors: ErrorCounts::default(),
                sends: 0,
                records_dropped: 0,
                last_end_ns: 0,
                cpu_ns: 0,
                wait_ns: None,
            },
        }
    }

    #[inline]
    fn now(&self) -> u64 {
        since(self.t0)
    }

    fn stopped(&self) -> bool {
        self.stops.iter().any(|s| s.load(Ordering::Relaxed))
    }

    /// Run from time zero `t0` (CLOCK_MONOTONIC ns) until every request due before the
    /// end is answered, failed or cut (at the end plus one timeout), or a stop flag is
    /// set.
    pub fn run(mut self, t0: u64) -> ThreadResult {
        self.t0 = t0;
        fibtest::clock::sleep_until(t0);
        let cpu0 = fibtest::clock::thread_cpu_ns();
        let wait0 = run_queue_wait_ns();
        let cut = self.end_ns + self.timeout_ns;
        loop {
            let now = self.now();
            if now >= cut || self.stopped() {
                self.cut(now);
                break;
            }
            let mut wake = cut;
            let mut active = false;
            for i in 0..self.conns.len() {
                if let Some(f) = &self.conns[i].busy {
                    if now >= f.sent + self.timeout_ns {
                        self.fail(i, ErrorKind::Timeout, now);
                    }
                }
                while self.conns[i].busy.is_none() {
                    let due = self.conns[i].sched.next_due_ns();
                    if due >= self.end_ns || due > now {
                        break;
                    }
                    self.start(i, due);
                }
                let c = &self.conns[i];
                match &c.busy {
                    Some(f) => wake = wake.min(f.sent + self.timeout_ns),
                    None if c.sched.next_due_ns() < self.end_ns => {
                        wake = wake.min(c.sched.next_due_ns())
                    }
                    None => continue,
                }
                active = true;
            }
            if !active {
                break;
            }
            // Sleep until `spin` before the next due time, then poll without sleeping
            // (see `LoadSpec::spin`).
            let left = wake.saturating_sub(self.now());
            self.wait(left.saturating_sub(self.spin_ns));
        }
        self.out.cpu_ns = fibtest::clock::thread_cpu_ns() - cpu0;
        self.out.wait_ns = wait0
            .zip(run_queue_wait_ns())
            .map(|(a, b)| b.saturating_sub(a));
        self.out
    }

    /// Send connection `i`'s next request (due at `due`, which has come).
    fn start(&mut self, i: usize, due: u64) {
        let spec = self.spec;
        let c = &mut self.conns[i];
        let index = c.sched.next_index();
        c.sched.advance();
        let warmup = due < self.warmup_ns;
        if c.stream.is_none() {
            match connect(spec) {
                Ok(s) => {
                    c.stream = Some(s);
                    c.reused = false;
                }
                Err(e) => {
                    let end = since(self.t0);
                    let connection = c.id;
                    self.account(RequestRecord {
                        index,
                        connection,
                        warmup,
                        due_ns: due,
                        sent_ns: None,
                        end_ns: end,
                        outcome: Outcome::Error(ErrorKind::of_io(&e, true)),
                    });
                    self.conns[i].ready = end;
                    return;
                }
            }
        }
        let sent = self.now();
        let c = &mut self.conns[i];
        let late = sent.saturating_sub(due.max(c.ready));
        self.out.lateness.saturating_record(late);
        self.out.late_sends += u64::from(late > LATE_SEND_NS);
        self.out.sends += 1;
        c.parser.reset();
        c.fill = 0;
        c.busy = Some(InFlight {
            index,
            due,
            sent,
            written: 0,
            warmup,
        });
        self.write(i);
    }

    /// Write what is left of connection `i`'s request; a write that fails before any
    /// byte went out on a reused connection is retried once on a fresh one.
    fn write(&mut self, i: usize) {
        loop {
            let c = &mut self.conns[i];
            let (Some(s), Some(f)) = (&c.stream, &mut c.busy) else {
                return;
            };
            let e = match send(
                s.as_raw_fd(),
                &self.request[f.written..],
                MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => {
                    f.written += n;
                    if f.written == self.request.len() {
                        c.reused = true;
                        return;
                    }
                    continue;
                }
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => std::io::Error::from(e),
            };
            if c.reused && f.written == 0 {
                c.stream = None;
                match connect(self.spec) {
                    Ok(s) => {
                        let c = &mut self.conns[i];
                        c.stream = Some(s);
                        c.reused = false;
                        continue;
                    }
                    Err(e) => {
                        let now = self.now();
                        return self.fail(i, ErrorKind::of_io(&e, true), now);
                    }
                }
            }
            let now = self.now();
            return self.fail(i, ErrorKind::of_io(&e, false), now);
        }
    }

    /// Wait up to `ns` for sockets, and handle those that are ready.
    fn wait(&mut self, ns: u64) {
        self.fds.clear();
        self.fd_conn.clear();
        for (i, c) in self.conns.iter().enumerate() {
            let Some(s) = &c.stream else { continue };
            let events = match &c.busy {
                Some(f) if f.written < self.request.len() => PollFlags::POLLOUT,
                // Idle connections too: to see a server close them between requests.
                _ => PollFlags::POLLIN,
            };
            // SAFETY: the descriptor stays open while `fds` holds it: streams are only
            // dropped after `fds` is cleared below, and `fds` is rebuilt before each use.
            let fd = unsafe { BorrowedFd::borrow_raw(s.as_raw_fd()) };
            self.fds.push(PollFd::new(fd, events));
            self.fd_conn.push(i);
        }
        let timeout = TimeSpec::from_duration(Duration::from_nanos(ns));
        self.ready.clear();
        if ppoll(&mut self.fds, Some(timeout), None).is_ok() {
            for (fd, &i) in self.fds.iter().zip(&self.fd_conn) {
                if let Some(ev) = fd.revents().filter(|e| !e.is_empty()) {
                    self.ready.push((i, ev));
                }
            }
        }
        self.fds.clear();
        for j in 0..self.ready.len() {
            let (i, ev) = self.ready[j];
            match &self.conns[i].busy {
                Some(f) if f.written < self.request.len() => {
                    if ev.intersects(PollFlags::POLLOUT | PollFlags::POLLERR | PollFlags::POLLHUP) {
                        self.write(i);
                    }
                }
                Some(_) => self.read(i),
                None => self.drain_idle(i),
            }
        }
    }

    /// Read connection `i`'s answer as far as it has come.
    fn read(&mut self, i: usize) {
        loop {
            let c = &mut self.conns[i];
            let Some(s) = &mut c.stream else { return };
            if c.fill == c.buf.len() {
                let now = self.now();
                return self.fail(i, ErrorKind::BadResponse, now);
            }
            match s.read(&mut c.buf[c.fill..]) {
                Ok(0) => {
                    let now = since(self.t0);
                    return match c.parser.on_close() {
                        Some(status) => {
                            c.stream = None;
                            self.finish(i, Outcome::Http(status), now)
                        }
                        None => self.fail(i, ErrorKind::Closed, now),
                    };
                }
                Ok(n) => {
                    c.fill += n;
                    match c.parser.feed(&c.buf[..c.fill]) {
                        Ok((used, Step::NeedMore)) => {
                            c.buf.copy_within(used..c.fill, 0);
                            c.fill -= used;
                        }
                        Ok((used, Step::Done { status, close })) => {
                            let now = self.now();
                            let c = &mut self.conns[i];
                            // More bytes than one answer: the connection is out of step.
                            if close || used < c.fill {
                                c.stream = None;
                            }
                            let outcome = match self.spec.target.protocol {
                                super::Protocol::Http => Outcome::Http(status),
                                super::Protocol::Line => Outcome::Line,
                            };
                            return self.finish(i, outcome, now);
                        }
                        Err(_) => {
                            let now = self.now();
                            return self.fail(i, ErrorKind::BadResponse, now);
                        }
                    }
                }
                Err(e) if e.kind() == IoKind::WouldBlock => return,
                Err(e) if e.kind() == IoKind::Interrupted => continue,
                Err(e) => {
                    let now = self.now();
                    return self.fail(i, ErrorKind::of_io(&e, false), now);
                }
            }
        }
    }

    /// An idle connection is readable: the server closed it (or sent what nobody asked
    /// for); drop it, the next request connects again.
    fn drain_idle(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if let Some(s) = &mut c.stream {
            let mut byte = [0u8; 1];
            if !matches!(s.read(&mut byte), Err(e) if e.kind() == IoKind::WouldBlock) {
                c.stream = None;
            }
        }
    }

    /// Connection `i`'s request failed: record it and drop the connection.
    fn fail(&mut self, i: usize, kind: ErrorKind, end: u64) {
        self.conns[i].stream = None;
        self.finish(i, Outcome::Error(kind), end);
    }

    /// Connection `i`'s request ended with `outcome` at `end`.
    fn finish(&mut self, i: usize, outcome: Outcome, end: u64) {
        let c = &mut self.conns[i];
        let Some(f) = c.busy.take() else { return };
        c.ready = end;
        let r = RequestRecord {
            index: f.index,
            connection: c.id,
            warmup: f.warmup,
            due_ns: f.due,
            sent_ns: Some(f.sent),
            end_ns: end,
            outcome,
        };
        self.account(r);
    }

    /// Count a finished request and pass it on.
    fn account(&mut self, r: RequestRecord) {
        let o = &mut self.out;
        o.last_end_ns = o.last_end_ns.max(r.end_ns);
        if r.warmup {
            o.warmup += 1;
        } else {
            o.scheduled += 1;
            match r.outcome {
                Outcome::Error(k) => o.errors.add(k),
                answer => {
                    if let Outcome::Http(status) = answer {
                        o.non_2xx += u64::from(!(200..300).contains(&status));
                    }
                    o.responses += 1;
                    o.latency.saturating_record(r.latency_ns());
                    o.service.saturating_record(r.service_ns().unwrap_or(0));
                }
            }
        }
        if self.tx.try_send(r).is_err() {
            o.records_dropped += 1;
        }
    }

    /// The run ends at `now`: requests in flight are unfinished, requests due before the
    /// end and never sent are unsent.
    fn cut(&mut self, now: u64) {
        for i in 0..self.conns.len() {
            if self.conns[i].busy.is_some() {
                self.fail(i, ErrorKind::Unfinished, now);
            }
            loop {
                let c = &mut self.conns[i];
                let due = c.sched.next_due_ns();
                if due >= self.end_ns || due > now {
                    break;
                }
                let r = RequestRecord {
                    index: c.sched.next_index(),
                    connection: c.id,
                    warmup: due < self.warmup_ns,
                    due_ns: due,
                    sent_ns: None,
                    end_ns: now,
                    outcome: Outcome::Error(ErrorKind::Unsent),
                };
                c.sched.advance();
                self.account(r);
            }
        }
    }
}
