//! `fibtest serve` end to end: the header comes once the port listens, requests are
//! answered, SIGTERM ends it with exit 0 and per-worker records that count the requests,
//! and a port already taken is an error naming the address.

use fibtest::record::{Mode, Record};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Send `n` keep-alive GETs on one connection and read each answer.
fn get(port: u16, n: usize) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    for _ in 0..n {
        w.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        assert_eq!(status, "HTTP/1.1 200 OK\r\n");
        let mut line = String::new();
        while line != "\r\n" {
            line.clear();
            r.read_line(&mut line).unwrap();
        }
        let mut body = [0u8; 3];
        r.read_exact(&mut body).unwrap();
        assert_eq!(&body, b"ok\n");
    }
}

#[test]
fn serves_until_sigterm_and_counts_requests() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fibtest"))
        .args(["serve", "--port", &port.to_string(), "--threads", "2"])
        .args(["--work", "1ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // The header is written once the socket listens: connecting after it cannot fail.
    let mut header = String::new();
    out.read_line(&mut header).unwrap();
    match serde_json::from_str::<Record>(&header).unwrap() {
        Record::Header(h) => {
            assert_eq!((h.mode, h.pid), (Mode::Serve, child.id()));
            assert!(h.args.contains(&port.to_string()));
        }
        other => panic!("{other:?}"),
    }
    get(port, 5);
    get(port, 3);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let records: Vec<Record> = rest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (mut requests, mut workers) = (0, 0);
    for r in &records {
        if let Record::Thread(t) = r {
            requests += t.units;
            workers += 1;
            assert!(t.cpu_s >= 0.001 * t.units as f64, "{t:?}");
        }
    }
    assert_eq!((workers, requests), (2, 8));
    assert!(matches!(records.last(), Some(Record::End(_))));
}

#[test]
fn a_port_in_use_is_an_error_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_fibtest"))
        .args(["serve", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("listening on 127.0.0.1:{port}")),
        "{err}"
    );
}
