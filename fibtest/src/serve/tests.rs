//! Tests of the reference server: the parsers on their own, and a real server on a
//! loopback port (threads in this process) answering HTTP and line clients.

use super::*;
use crate::clock::FakeHost;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn http_heads_are_parsed_with_their_body_and_connection() {
    let get = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\nrest";
    assert_eq!(
        parse_http(get),
        Parsed::Request {
            head: get.len() - 4,
            body: 0,
            close: false
        }
    );
    let post = b"POST / HTTP/1.1\r\ncontent-LENGTH:  12 \r\nConnection: close\r\n\r\n";
    assert_eq!(
        parse_http(post),
        Parsed::Request {
            head: post.len(),
            body: 12,
            close: true
        }
    );
    let old = b"GET / HTTP/1.0\r\n\r\n";
    assert!(matches!(
        parse_http(old),
        Parsed::Request { close: true, .. }
    ));
    let kept = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    assert!(matches!(
        parse_http(kept),
        Parsed::Request { close: false, .. }
    ));
    assert_eq!(
        parse_http(b"GET / HTTP/1.1\r\nHost: a\r\n"),
        Parsed::Incomplete
    );
}

#[test]
fn bad_http_is_refused_with_a_status() {
    let status = |b: &[u8]| match parse_http(b) {
        Parsed::Refuse(answer) => String::from_utf8_lossy(&answer[9..12]).to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(status(b"GET /\r\n\r\n"), "400");
    assert_eq!(status(b"GET / HTTP/2\r\n\r\n"), "400");
    assert_eq!(status(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), "400");
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
        "400"
    );
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        "501"
    );
    assert_eq!(status(&[b'a'; CONN_BUFFER]), "431");
}

#[test]
fn lines_end_at_a_newline() {
    assert_eq!(
        parse_line(b"abc\ndef"),
        Parsed::Request {
            head: 4,
            body: 0,
            close: false
        }
    );
    assert_eq!(parse_line(b"abc"), Parsed::Incomplete);
    assert_eq!(parse_line(&[b'a'; CONN_BUFFER]), Parsed::Refuse(b""));
}

#[test]
fn request_work_is_thread_cpu_time() {
    // 1 µs a step, the clock read every 1000 steps: 5 ms of work is 5000 steps.
    let h = FakeHost::new(1_000, &[(1_000_000, 9_000_000)]);
    let mut fib = Fib::default();
    assert_eq!(spend_cpu(&h, &mut fib, 5_000_000, 1_000), 5_000);
    // The stall is in the wall time, not in the CPU time.
    assert_eq!((h.now_ns(), h.thread_cpu_ns()), (13_000_000, 5_000_000));
    assert_eq!(spend_cpu(&h, &mut fib, 0, 1_000), 0);
}

/// A server on a free loopback port, stopped (and its counts returned) by `stop`.
struct TestServer {
    addr: std::net::SocketAddr,
    stop: &'static AtomicBool,
    handle: Option<std::thread::JoinHandle<Result<Vec<WorkerCounts>>>>,
}

impl TestServer {
    fn start(threads: u32, work_ns: u64, protocol: Protocol) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let p = ServeParams {
            threads,
            work_ns,
            protocol,
            cpus: vec![None; threads as usize],
        };
        let handle =
            std::thread::spawn(move || serve(&listener, &p, &|| stop.load(Ordering::Relaxed)));
        TestServer {
            addr,
            stop,
            handle: Some(handle),
        }
    }

    fn stop(mut self) -> Vec<WorkerCounts> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap().unwrap()
    }
}

/// Read one HTTP answer (head and Content-Length body) from `r`; returns the status
/// line and whether the server said it closes.
fn read_answer(r: &mut BufReader<TcpStream>) -> (String, bool) {
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let (mut length, mut close) = (0usize, false);
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        close |= lower.starts_with("connection: close");
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).unwrap();
    (status.trim_end().to_string(), close)
}

#[test]
fn answers_keep_alive_pipelined_and_posted_requests() {
    let server = TestServer::start(2, 200_000, Protocol::Http);
    let s = TcpStream::connect(server.addr).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    for _ in 0..3 {
        w.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert_eq!(read_answer(&mut r), ("HTTP/1.1 200 OK".into(), false));
    }
    // A POST whose body comes in two writes, then two pipelined GETs in one write.
    w.write_all(b"POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234")
        .unwrap();
    w.write_all(b"56789GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        .unwrap();
    for _ in 0..3 {
        assert_eq!(read_answer(&mut r).0, "HTTP/1.1 200 OK");
    }
    // Connection: close is answered, then the server closes.
    w.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut r), ("HTTP/1.1 200 OK".into(), true));
    let mut rest = Vec::new();
    assert_eq!(r.read_to_end(&mut rest).unwrap(), 0);
    let counts = server.stop();
    let total: u64 = counts.iter().map(|c| c.requests).sum();
    assert_eq!(total, 7);
    // Each request cost at least its 0.2 ms of CPU.
    let cpu: u64 = counts.iter().map(|c| c.cpu_ns).sum();
    assert!(cpu >= 7 * 200_000, "{cpu}");
}

#[test]
fn refuses_a_bad_request_and_closes() {
    let server = TestServer::start(1, 0, Protocol::Http);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"HELLO\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(server.stop()[0].refused, 1);
}

#[test]
fn line_protocol_echoes_each_line() {
    let server = TestServer::start(1, 100_000, Protocol::Line);
    let s = TcpStream::connect(server.addr).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    w.write_all(b"one\ntwo\nthr").unwrap();
    w.write_all(b"ee\n").unwrap();
    for want in ["one\n", "two\n", "three\n"] {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, want);
    }
    drop((w, r));
    assert_eq!(server.stop()[0].requests, 3);
}

#[test]
fn many_connections_share_few_workers() {
    // More connections than workers, all kept open: each is still answered.
    let server = TestServer::start(2, 0, Protocol::Http);
    let mut conns: Vec<_> = (0..10)
        .map(|_| {
            let s = TcpStream::connect(server.addr).unwrap();
            (s.try_clone().unwrap(), BufReader::new(s))
        })
        .collect();
    for _ in 0..2 {
        for (w, r) in &mut conns {
            w.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(read_answer(r).0, "HTTP/1.1 200 OK");
        }
    }
    let counts = server.stop();
    assert_eq!(counts.iter().map(|c| c.requests).sum::<u64>(), 20);
    assert_eq!(counts.iter().map(|c| c.connections).sum::<u64>(), 10);
}
