//! The generator against test servers in this process (threads on loopback ports): the
//! schedule kept, latency from the due time through a server stall (coordinated
//! omission), timeouts, a server that closes connections or dies mid-load, a port that
//! never opens, the sink.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a test server does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    /// Answer every request.
    Answer,
    /// Read requests, never answer.
    Silent,
    /// Close each connection after this many answers.
    CloseAfter(u64),
    /// After this many answers in all, stop listening and close every connection.
    DieAfter(u64),
    /// Hold every connection still for `ms` when request number `at` comes (all
    /// requests are served under one lock, like one CPU).
    PauseAt { at: u64, ms: u64 },
}

struct Shared {
    behaviour: Behaviour,
    line: bool,
    /// Requests received, in all.
    received: AtomicU64,
    /// Body bytes received, in all.
    body_bytes: AtomicU64,
    /// One request at a time, so a pause stalls every connection.
    cpu: Mutex<()>,
    streams: Mutex<Vec<TcpStream>>,
    /// Owned here (not by the accept thread) so that its descriptor stays open, and
    /// cannot be reused by another test's socket, until the server is gone.
    listener: TcpListener,
}

struct TestServer {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    fn start(behaviour: Behaviour) -> TestServer {
        TestServer::start_with(behaviour, false)
    }

    fn start_with(behaviour: Behaviour, line: bool) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            behaviour,
            line,
            received: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            cpu: Mutex::new(()),
            streams: Mutex::new(Vec::new()),
            listener,
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            // Ends when the listener is shut down (accept then fails).
            while let Ok((stream, _)) = s.listener.accept() {
                s.streams.lock().unwrap().push(stream.try_clone().unwrap());
                let s = s.clone();
                std::thread::spawn(move || serve(&s, stream));
            }
        });
        TestServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    fn target(&self) -> Target {
        let scheme = if self.shared.line { "tcp" } else { "http" };
        format!("{scheme}://{}/", self.addr).parse().unwrap()
    }
}

/// Stop listening and close every connection: the port refuses from then on.
fn kill(s: &Shared) {
    use nix::sys::socket::{shutdown, Shutdown};
    let _ = shutdown(s.listener.as_raw_fd(), Shutdown::Both);
    for c in s.streams.lock().unwrap().iter() {
        let _ = c.shutdown(std::net::Shutdown::Both);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        kill(&self.shared);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Serve one connection as `s.behaviour` says.
fn serve(s: &Shared, stream: TcpStream) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut answered = 0u64;
    loop {
        // A request: a line, or an HTTP head and its Content-Length body.
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if !s.line {
            let mut length = 0u64;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                if h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length as usize];
            if r.read_exact(&mut body).is_err() {
                return;
            }
            s.body_bytes.fetch_add(length, Ordering::SeqCst);
        }
        let n = s.received.fetch_add(1, Ordering::SeqCst) + 1;
        let _cpu = s.cpu.lock().unwrap();
        match s.behaviour {
            Behaviour::Silent => continue,
            Behaviour::PauseAt { at, ms } if n == at => {
                // The stall being measured, not a way to wait for something.
                std::thread::sleep(Duration::from_millis(ms));
            }
            Behaviour::DieAfter(k) if n > k => {
                kill(s);
                return;
            }
            _ => {}
        }
        let answer: &[u8] = if s.line {
            line.as_bytes()
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        };
        if w.write_all(answer).is_err() {
            return;
        }
        answered += 1;
        if s.behaviour == Behaviour::CloseAfter(answered) {
            // The accept thread holds a clone: close the connection itself.
            let _ = w.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// Run `spec`, collecting every record.
fn run_collect(spec: &LoadSpec) -> (LoadReport, Vec<RequestRecord>) {
    let stop = AtomicBool::new(false);
    let mut records = Vec::new();
    let report = run(spec, &stop, |r| {
        records.push(*r);
        Ok(())
    })
    .unwrap();
    records.sort_by_key(|r| r.due_ns);
    (report, records)
}

fn spec(server: &TestServer, rate: f64, ms: u64) -> LoadSpec {
    LoadSpec::new(server.target(), rate, Duration::from_millis(ms))
}

const MS: u64 = 1_000_000;

#[test]
fn every_request_of_the_schedule_is_sent_answered_and_recorded() {
    let server = TestServer::start(Behaviour::Answer);
    let spec = LoadSpec {
        connections: 2,
        warmup: Duration::from_millis(100),
        ..spec(&server, 200.0, 500)
    };
    let (report, records) = run_collect(&spec);
    // 200/s: 20 requests in the warm-up, then exactly 100.
    assert_eq!((report.warmup_requests, report.scheduled), (20, 100));
    assert_eq!(report.responses, 100, "{report:?}");
    assert_eq!(report.errors.total(), 0);
    assert_eq!(records.len(), 120);
    assert_eq!(server.shared.received.load(Ordering::SeqCst), 120);
    for (i, r) in records.iter().enumerate() {
        // Due every 5 ms, numbered in due order, on alternating connections.
        assert_eq!((r.index, r.connection), (i as u64, i as u32 % 2));
        assert!(r.due_ns.abs_diff(i as u64 * 5 * MS) <= 1);
        assert_eq!(r.warmup, i < 20);
        let sent = r.sent_ns.unwrap();
        assert!(r.due_ns <= sent && sent <= r.end_ns, "{r:?}");
        assert_eq!(r.outcome, Outcome::Http(200));
    }
    assert_eq!(report.latency.count, 100);
    assert!(report.generator_cpu_s > 0.0 && report.cpu_per_request_us > 0.0);
    assert_eq!(report.records_dropped, 0);
}

#[test]
fn a_stalled_server_delays_every_request_due_during_the_stall() {
    // 1000 requests/s on 2 connections; at request 300 the server stalls 200 ms. The
    // ~200 requests due during the stall wait for its end: about 100 of them 100 ms or
    // more. Timed from their sends instead (a closed loop's view), only the requests in
    // flight when it began (one per connection) see it.
    let server = TestServer::start(Behaviour::PauseAt { at: 300, ms: 200 });
    let spec = LoadSpec {
        connections: 2,
        ..spec(&server, 1000.0, 1000)
    };
    let (report, records) = run_collect(&spec);
    assert_eq!(report.scheduled, 1000);
    assert_eq!(report.responses, 1000, "{report:?}");
    let from_due = records
        .iter()
        .filter(|r| r.latency_ns() >= 100 * MS)
        .count();
    let from_send = records
        .iter()
        .filter(|r| r.service_ns().unwrap() >= 100 * MS)
        .count();
    assert!((80..=130).contains(&from_due), "{from_due} from due");
    assert!(from_send <= 2, "{from_send} from send");
    assert!(report.latency.max_s >= 0.19, "{report:?}");
    assert!(
        report.latency.p99_s >= 0.1 && report.service.p99_s < 0.1,
        "{report:?}"
    );
    // The stall is the service's, not the generator's: its sends were on time against
    // their connection becoming free. Counted as the generator's, the ~200 requests
    // due during the stall would be late sends, more than those the stall delayed by
    // 100 ms; a generator that is late only when the machine starves it stays below.
    assert!(report.late_sends < from_due as u64, "{report:?}");
}

#[test]
fn timeouts_are_counted_and_the_schedule_goes_on() {
    let server = TestServer::start(Behaviour::Silent);
    let spec = LoadSpec {
        timeout: Duration::from_millis(50),
        ..spec(&server, 100.0, 300)
    };
    let (report, records) = run_collect(&spec);
    // One connection: a send every 50 ms times out; the requests due meanwhile wait
    // and are sent in turn, and those still waiting at the end are unsent.
    assert_eq!(report.scheduled, 30);
    assert_eq!(report.responses, 0);
    let e = report.errors;
    assert!(e.timeout >= 4, "{e:?}");
    assert_eq!(e.timeout + e.unsent + e.unfinished, 30, "{e:?}");
    assert_eq!(records.len(), 30);
    for r in records
        .iter()
        .filter(|r| r.outcome == Outcome::Error(ErrorKind::Timeout))
    {
        assert!(r.service_ns().unwrap() >= 50 * MS, "{r:?}");
    }
}

#[test]
fn connections_closed_by_the_server_are_reopened() {
    let server = TestServer::start(Behaviour::CloseAfter(3));
    let spec = LoadSpec {
        connections: 2,
        ..spec(&server, 200.0, 500)
    };
    let (report, _) = run_collect(&spec);
    assert_eq!(report.scheduled, 100);
    // A request that finds its connection closed goes on a new one; one sent as the
    // server closes is an error, and counted. Every connection carries 3 answers and
    // then closes, so there were about responses / 3 closes, and each can catch at most
    // the one request in flight on it: no more errors than that, all of them `closed`.
    assert_eq!(report.responses + report.errors.total(), 100);
    assert!(
        report.responses > 2 * 3,
        "connections were reopened: {report:?}"
    );
    assert_eq!(report.errors.closed, report.errors.total(), "{report:?}");
    assert!(
        report.errors.closed <= report.responses / 3 + 2,
        "at most one request lost per close: {report:?}"
    );
}

#[test]
fn a_server_that_dies_mid_load_gives_errors_and_the_run_goes_on() {
    let server = TestServer::start(Behaviour::DieAfter(50));
    let spec = LoadSpec {
        connections: 2,
        ..spec(&server, 200.0, 500)
    };
    let (report, records) = run_collect(&spec);
    assert_eq!(report.scheduled, 100);
    assert_eq!(records.len(), 100);
    assert_eq!(report.responses, 50, "{report:?}");
    let e = report.errors;
    assert_eq!(e.total(), 50, "{e:?}");
    // Once the port is closed, connects are refused.
    assert!(e.refused >= 40, "{e:?}");
    let last = records.last().unwrap();
    assert_eq!(last.outcome, Outcome::Error(ErrorKind::Refused));
    assert!(last.due_ns >= 495 * MS);
}

#[test]
fn a_port_that_never_opens_is_named_within_the_bound() {
    let port = free_loopback_port().unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let start = Instant::now();
    let e = wait_for_port(addr, Duration::from_millis(300)).unwrap_err();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    // run() waits the same way before its first request.
    let mut spec = LoadSpec::new(
        format!("http://127.0.0.1:{port}/").parse().unwrap(),
        100.0,
        Duration::from_secs(1),
    );
    spec.port_wait = Duration::from_millis(200);
    let stop = AtomicBool::new(false);
    match run(&spec, &stop, |_| Ok(())) {
        Err(LoadError::PortNeverOpened(e)) => assert_eq!(e.addr, addr),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_port_that_opens_late_is_waited_for() {
    let port = free_loopback_port().unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        tx.send(()).unwrap();
        wait_for_port(addr, Duration::from_secs(10))
    });
    // Bind only once the waiter is running.
    rx.recv().unwrap();
    let listener = TcpListener::bind(addr).unwrap();
    assert!(waiter.join().unwrap().is_ok());
    drop(listener);
}

#[test]
fn posts_carry_their_body_and_lines_are_echoed() {
    let server = TestServer::start(Behaviour::Answer);
    let post = LoadSpec {
        body: Some(b"0123456789".to_vec()),
        ..spec(&server, 100.0, 200)
    };
    let (report, _) = run_collect(&post);
    assert_eq!(report.responses, 20);
    assert_eq!(server.shared.body_bytes.load(Ordering::SeqCst), 200);

    let server = TestServer::start_with(Behaviour::Answer, true);
    let (report, records) = run_collect(&spec(&server, 100.0, 200));
    assert_eq!(report.responses, 20);
    assert!(records.iter().all(|r| r.outcome == Outcome::Line));
}

#[test]
fn poisson_runs_keep_the_rate() {
    let server = TestServer::start(Behaviour::Answer);
    let spec = LoadSpec {
        arrivals: Arrivals::Poisson { seed: 3 },
        connections: 4,
        threads: 2,
        ..spec(&server, 2000.0, 1000)
    };
    let (report, records) = run_collect(&spec);
    // 2000 expected; a Poisson count's standard deviation is about 45.
    assert!((1800..=2200).contains(&report.scheduled), "{report:?}");
    assert_eq!(report.responses, report.scheduled);
    assert_eq!(records.len() as u64, report.scheduled);
    assert_eq!(report.threads, 2);
}

#[test]
fn a_failing_sink_stops_the_run() {
    let server = TestServer::start(Behaviour::Answer);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let mut n = 0;
    let r = run(&spec(&server, 1000.0, 20_000), &stop, |_| {
        n += 1;
        if n == 5 {
            Err(std::io::Error::other("disk full"))
        } else {
            Ok(())
        }
    });
    assert!(matches!(r, Err(LoadError::Sink(_))), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn bad_specs_are_refused() {
    let server = TestServer::start(Behaviour::Answer);
    let stop = AtomicBool::new(false);
    for bad in [
        spec(&server, 0.0, 100),
        LoadSpec {
            connections: 0,
            ..spec(&server, 10.0, 100)
        },
        spec(&server, 10.0, 0),
    ] {
        assert!(matches!(
            run(&bad, &stop, |_| Ok(())),
            Err(LoadError::Spec(_))
        ));
    }
    let pinned = LoadSpec {
        cpus: Some(fibtest::cpulist::CpuList::from_cpus([1000])),
        ..spec(&server, 10.0, 100)
    };
    assert!(matches!(
        run(&pinned, &stop, |_| Ok(())),
        Err(LoadError::Pin { cpu: 1000, .. })
    ));
}
