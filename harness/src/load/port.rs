//! Ports: picking a free loopback port to hand to a service, and waiting (for a bounded
//! time) until a service accepts connections on its port.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that was free a moment ago: the kernel picks it for a socket that
/// is closed at once. Another process may take it before the service binds it; the
/// kernel hands ports out in turn, so that is rare.
pub fn free_loopback_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// A port that never accepted a connection in time.
#[derive(Debug, thiserror::Error)]
#[error("nothing accepted connections on {addr} within {} ms (last try: {last})", .waited.as_millis())]
pub struct PortNeverOpened {
    pub addr: SocketAddr,
    pub waited: Duration,
    pub last: io::Error,
}

/// Try to connect to `addr` until it accepts, for at most `within`; returns how long it
/// took. Tries are 1 ms apart at first, doubling up to 50 ms, and each connect is bounded
/// by the time left, so the call returns within `within` plus one short try.
pub fn wait_for_port(addr: SocketAddr, within: Duration) -> Result<Duration, PortNeverOpened> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let left = within.saturating_sub(start.elapsed());
        let last = match TcpStream::connect_timeout(&addr, left.max(Duration::from_millis(1))) {
            Ok(_) => return Ok(start.elapsed()),
            Err(e) => e,
        };
        let left = within.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(PortNeverOpened {
                addr,
                waited: start.elapsed(),
                last,
            });
        }
        // Polling is the only way to learn that another process listens.
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
