//! How a run's processes died, from the kernel's own process events: the proc connector
//! (a NETLINK_CONNECTOR socket subscribed to CN_IDX_PROC, root only), which reports
//! every fork and every exit on the machine with the exit status as `wait` would give
//! it. A limiter that ends a pipeline in the wrong order shows here as processes killed
//! by SIGPIPE ("Practical resource limiting" [Practical Limiting]), whoever their parent
//! was, so no process has to be this one's child to be counted.
//!
//! The watch starts before the workloads, follows fork events from this process down
//! (each process is filed under the child of this process it descends from, its
//! `root`), and counts exits by root: a run asks for the deaths under its workloads'
//! main processes. Memory holds the live descendants and a few counters per root.
//!
//! The socket has no wrapper in nix (its protocol, NETLINK_CONNECTOR, is missing from
//! `SockProtocol`): one `socket(2)` call goes through nix's libc, the rest through nix.

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{bind, recv, sendto, setsockopt, sockopt, MsgFlags, NetlinkAddr};
use serde::Serialize;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

// The kernel's ABI (linux/netlink.h, linux/connector.h, linux/cn_proc.h).
const NETLINK_CONNECTOR: i32 = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const NLMSG_DONE: u16 = 3;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_CN_MCAST_IGNORE: u32 = 2;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_COMM: u32 = 0x0000_0200;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
/// struct nlmsghdr (16 bytes), then struct cn_msg (20), then struct proc_event: what,
/// cpu, timestamp_ns (8-aligned), then the event's data.
const CN_MSG_AT: usize = 16;
const EVENT_AT: usize = 16 + 20;
const DATA_AT: usize = EVENT_AT + 16;

/// One process event that matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    /// A new process (not a thread): its parent's and its own thread-group id.
    Fork { parent: i32, child: i32 },
    /// A process ended (its last thread, or its leader): its id and wait status.
    Exit { pid: i32, status: u32 },
    /// A process exec'd (its new name is in /proc; the event has none).
    Exec { pid: i32 },
    /// A process renamed itself (prctl): up to 16 bytes, NUL-padded.
    Comm { pid: i32, name: [u8; 16] },
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parse one datagram of the proc connector; None for other events (exec, uid, comm,
/// threads), other connectors and short messages.
pub fn parse(b: &[u8]) -> Option<ProcEvent> {
    if u32_at(b, CN_MSG_AT)? != CN_IDX_PROC || u32_at(b, CN_MSG_AT + 4)? != CN_VAL_PROC {
        return None;
    }
    let i = |n: usize| u32_at(b, DATA_AT + 4 * n).map(|v| v as i32);
    match u32_at(b, EVENT_AT)? {
        PROC_EVENT_FORK => {
            // parent_pid, parent_tgid, child_pid, child_tgid: a thread has pid != tgid.
            let (child_pid, child_tgid) = (i(2)?, i(3)?);
            (child_pid == child_tgid).then_some(ProcEvent::Fork {
                parent: i(1)?,
                child: child_tgid,
            })
        }
        PROC_EVENT_EXIT => {
            // process_pid, process_tgid, exit_code, exit_signal, ...: the leader's exit
            // carries the process's status.
            let (pid, tgid) = (i(0)?, i(1)?);
            (pid == tgid).then_some(ProcEvent::Exit {
                pid,
                status: i(2)? as u32,
            })
        }
        PROC_EVENT_EXEC => {
            let (pid, tgid) = (i(0)?, i(1)?);
            (pid == tgid).then_some(ProcEvent::Exec { pid })
        }
        PROC_EVENT_COMM => {
            let (pid, tgid) = (i(0)?, i(1)?);
            let name = b.get(DATA_AT + 8..DATA_AT + 24)?.try_into().ok()?;
            (pid == tgid).then_some(ProcEvent::Comm { pid, name })
        }
        _ => None,
    }
}

/// Deaths under one root (a workload's main process), in counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeathReport {
    /// Processes killed by each signal: (signal number, count), by number.
    pub by_signal: Vec<(i32, u64)>,
    /// Processes that exited on their own with code 0, and with another code.
    pub exited_0: u64,
    pub exited_other: u64,
    /// The first few processes killed by a signal: pid, name (from its last exec; empty
    /// for a process forked by this one that had not exec'd) and signal.
    pub first: Vec<Death>,
    /// Events the kernel could not deliver (a full socket buffer): when not 0, the
    /// counts may be short.
    pub lost_events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Death {
    pub pid: i32,
    pub name: String,
    pub signal: i32,
}

/// How many deaths by a signal are kept by name, per root.
const FIRST_KEPT: usize = 20;

impl DeathReport {
    /// Processes killed by `signal`.
    pub fn by(&self, signal: i32) -> u64 {
        self.by_signal
            .iter()
            .find(|(s, _)| *s == signal)
            .map_or(0, |(_, n)| *n)
    }

    /// Processes killed by any signal.
    pub fn signalled(&self) -> u64 {
        self.by_signal.iter().map(|(_, n)| n).sum()
    }

    fn add(&mut self, pid: i32, status: u32, name: impl FnOnce() -> String) {
        let signal = (status & 0x7f) as i32;
        if signal == 0 {
            if status >> 8 & 0xff == 0 {
                self.exited_0 += 1;
            } else {
                self.exited_other += 1;
            }
            return;
        }
        match self.by_signal.iter_mut().find(|(s, _)| *s == signal) {
            Some((_, n)) => *n += 1,
            None => {
                self.by_signal.push((signal, 1));
                self.by_signal.sort_unstable();
            }
        }
        if self.first.len() < FIRST_KEPT {
            self.first.push(Death {
                pid,
                name: name(),
                signal,
            });
        }
    }

    fn merge(&mut self, o: &DeathReport) {
        for &(signal, n) in &o.by_signal {
            match self.by_signal.iter_mut().find(|(s, _)| *s == signal) {
                Some((_, m)) => *m += n,
                None => self.by_signal.push((signal, n)),
            }
        }
        self.by_signal.sort_unstable();
        let room = FIRST_KEPT.saturating_sub(self.first.len());
        self.first.extend(o.first.iter().take(room).cloned());
        self.exited_0 += o.exited_0;
        self.exited_other += o.exited_other;
        self.lost_events = self.lost_events.max(o.lost_events);
    }
}

/// The processes descended from this one, each filed under its root, and the deaths
/// per root: fed one event at a time (no system calls, so it is tested on its own).
#[derive(Debug, Default)]
pub struct Family {
    me: i32,
    /// Live descendants: pid -> (root: the child of `me` it descends from, its name).
    root_of: HashMap<i32, (i32, [u8; 16])>,
    deaths: HashMap<i32, DeathReport>,
}

fn name_text(n: &[u8; 16]) -> String {
    let end = n.iter().position(|b| *b == 0).unwrap_or(n.len());
    String::from_utf8_lossy(&n[..end]).into_owned()
}

impl Family {
    pub fn new(me: i32) -> Family {
        Family {
            me,
            ..Family::default()
        }
    }

    /// Take one event; `name_of` reads the name of one of ours that exec'd.
    pub fn on_event(&mut self, e: ProcEvent, name_of: impl FnOnce(i32) -> Option<[u8; 16]>) {
        match e {
            ProcEvent::Fork { parent, child } => {
                // A child has its parent's name until it execs.
                let known = if parent == self.me {
                    Some((child, [0; 16]))
                } else {
                    self.root_of.get(&parent).copied()
                };
                if let Some(k) = known {
                    self.root_of.insert(child, k);
                }
            }
            ProcEvent::Comm { pid, name } => {
                if let Some(k) = self.root_of.get_mut(&pid) {
                    k.1 = name;
                }
            }
            ProcEvent::Exec { pid } => {
                if let Some(k) = self.root_of.get_mut(&pid) {
                    if let Some(name) = name_of(pid) {
                        k.1 = name;
                    }
                }
            }
            ProcEvent::Exit { pid, status } => {
                if let Some((r, name)) = self.root_of.remove(&pid) {
                    self.deaths
                        .entry(r)
                        .or_default()
                        .add(pid, status, || name_text(&name));
                }
            }
        }
    }

    /// The deaths under `roots`, together.
    pub fn report(&self, roots: &[i32]) -> DeathReport {
        let mut r = DeathReport::default();
        for d in roots.iter().filter_map(|x| self.deaths.get(x)) {
            r.merge(d);
        }
        r
    }
}

/// The proc connector socket.
struct Connector {
    fd: OwnedFd,
}

impl Connector {
    fn open() -> nix::Result<Connector> {
        // SAFETY: socket(2) takes no pointers; the descriptor it returns is new and owned
        // by the OwnedFd alone.
        let fd = unsafe {
            let raw = nix::libc::socket(
                nix::libc::AF_NETLINK,
                nix::libc::SOCK_DGRAM | nix::libc::SOCK_CLOEXEC,
                NETLINK_CONNECTOR,
            );
            if raw < 0 {
                return Err(Errno::last());
            }
            OwnedFd::from_raw_fd(raw)
        };
        // Room for bursts of a busy machine's events (root may exceed rmem_max).
        let _ = setsockopt(&fd, sockopt::RcvBufForce, &(8 << 20));
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, CN_IDX_PROC))?;
        let c = Connector { fd };
        c.control(PROC_CN_MCAST_LISTEN)?;
        Ok(c)
    }

    /// Send a multicast control operation (listen, ignore) to the kernel.
    fn control(&self, op: u32) -> nix::Result<()> {
        let mut m = Vec::with_capacity(40);
        m.extend_from_slice(&40u32.to_ne_bytes()); // nlmsg_len
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes()); // nlmsg_type
        m.extend_from_slice(&0u16.to_ne_bytes()); // nlmsg_flags
        m.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_seq
        m.extend_from_slice(&std::process::id().to_ne_bytes()); // nlmsg_pid
        for v in [CN_IDX_PROC, CN_VAL_PROC, 0, 0] {
            m.extend_from_slice(&v.to_ne_bytes()); // id.idx, id.val, seq, ack
        }
        m.extend_from_slice(&4u16.to_ne_bytes()); // len
        m.extend_from_slice(&0u16.to_ne_bytes()); // flags
        m.extend_from_slice(&op.to_ne_bytes());
        sendto(
            self.fd.as_raw_fd(),
            &m,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        Ok(())
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        // Older kernels count listeners until told: say we are gone.
        let _ = self.control(PROC_CN_MCAST_IGNORE);
    }
}

/// Watches the machine's process events on a thread of its own, from `start` to `stop`.
pub struct ExitWatch {
    stop: Arc<AtomicBool>,
    family: Arc<Mutex<Family>>,
    lost: Arc<Mutex<u64>>,
    thread: Option<JoinHandle<()>>,
}

impl ExitWatch {
    /// Subscribe and start following this process's descendants. None when the kernel
    /// or the user's rights do not allow it (not root, no CONFIG_PROC_EVENTS): the
    /// deaths are then not known.
    pub fn start() -> Option<ExitWatch> {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let conn = Connector::open().ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let family = Arc::new(Mutex::new(Family::new(std::process::id() as i32)));
        let lost = Arc::new(Mutex::new(0));
        let (s, f, l) = (stop.clone(), family.clone(), lost.clone());
        let thread = std::thread::Builder::new()
            .name("exits".into())
            .spawn(move || listen(conn, &s, &f, &l))
            .ok()?;
        Some(ExitWatch {
            stop,
            family,
            lost,
            thread: Some(thread),
        })
    }

    /// Stop watching once every event sent so far is read (call when the run's processes
    /// are gone: their exits are queued by then), and report the deaths under `roots`.
    pub fn finish(mut self, roots: &[i32]) -> DeathReport {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut r = self
            .family
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .report(roots);
        r.lost_events = *self.lost.lock().unwrap_or_else(|p| p.into_inner());
        r
    }
}

impl Drop for ExitWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A live process's name, as the 16 bytes of a comm field.
fn comm(pid: i32) -> Option<[u8; 16]> {
    let text = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    let mut name = [0u8; 16];
    let t = text.strip_suffix(b"\n").unwrap_or(&text);
    let n = t.len().min(15);
    name[..n].copy_from_slice(&t[..n]);
    Some(name)
}

/// Read events until `stop`, then what is left in the socket.
fn listen(conn: Connector, stop: &AtomicBool, family: &Mutex<Family>, lost: &Mutex<u64>) {
    let mut buf = [0u8; 4096];
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if !stopping {
            let mut fds = [PollFd::new(conn.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(20u8)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(_) => return,
            }
        }
        // Everything queued now, without waiting.
        loop {
            match recv(conn.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => {
                    if let Some(e) = parse(&buf[..n]) {
                        family
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .on_event(e, comm);
                    }
                }
                Err(Errno::ENOBUFS) => *lost.lock().unwrap_or_else(|p| p.into_inner()) += 1,
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram as the kernel sends it.
    fn datagram(what: u32, data: [u32; 4]) -> Vec<u8> {
        // Four ids, then room for a name (16 bytes).
        let mut b = vec![0u8; DATA_AT];
        let data: Vec<u32> = data.into_iter().chain([0; 4]).collect();
        b[CN_MSG_AT..CN_MSG_AT + 4].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
        b[CN_MSG_AT + 4..CN_MSG_AT + 8].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
        b[EVENT_AT..EVENT_AT + 4].copy_from_slice(&what.to_ne_bytes());
        for v in data {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b
    }

    #[test]
    fn forks_of_processes_and_exits_of_leaders_are_parsed_threads_are_not() {
        assert_eq!(
            parse(&datagram(PROC_EVENT_FORK, [10, 10, 11, 11])),
            Some(ProcEvent::Fork {
                parent: 10,
                child: 11
            })
        );
        // A new thread 12 of process 11.
        assert_eq!(parse(&datagram(PROC_EVENT_FORK, [11, 11, 12, 11])), None);
        // SIGPIPE's status as wait gives it: 13.
        assert_eq!(
            parse(&datagram(PROC_EVENT_EXIT, [11, 11, 13, 17])),
            Some(ProcEvent::Exit {
                pid: 11,
                status: 13
            })
        );
        assert_eq!(parse(&datagram(PROC_EVENT_EXIT, [12, 11, 0, 0])), None);
        // A name: "sed" in the 16 bytes after the ids.
        let mut comm = datagram(PROC_EVENT_COMM, [11, 11, 0, 0]);
        comm[DATA_AT + 8..DATA_AT + 11].copy_from_slice(b"sed");
        let Some(ProcEvent::Comm { pid: 11, name }) = parse(&comm) else {
            panic!("{:?}", parse(&comm));
        };
        assert_eq!(name_text(&name), "sed");
        assert_eq!(
            parse(&datagram(PROC_EVENT_EXEC, [11, 11, 0, 0])),
            Some(ProcEvent::Exec { pid: 11 })
        );
        // A uid change, another connector, a short message.
        assert_eq!(parse(&datagram(0x4, [11, 11, 0, 0])), None);
        let mut other = datagram(PROC_EVENT_FORK, [10, 10, 11, 11]);
        other[CN_MSG_AT] = 7;
        assert_eq!(parse(&other), None);
        assert_eq!(parse(&[0u8; 20]), None);
    }

    #[test]
    fn deaths_are_counted_under_the_root_they_descend_from() {
        let mut f = Family::new(1);
        let fork = |parent, child| ProcEvent::Fork { parent, child };
        // 1 (this process) starts 10 (a workload) and 20 (a limiter command); 10's tree
        // has a pipeline and a daemon whose parent exits (its root stays 10).
        for (p, c) in [
            (1, 10),
            (1, 20),
            (10, 11),
            (10, 12),
            (12, 13),
            (13, 14),
            (99, 98),
        ] {
            f.on_event(fork(p, c), |_| unreachable!());
        }
        let mut sed = [0u8; 16];
        sed[..3].copy_from_slice(b"sed");
        f.on_event(ProcEvent::Exec { pid: 11 }, |_| Some(sed));
        // Not ours: its name is not asked for.
        f.on_event(ProcEvent::Exec { pid: 98 }, |_| unreachable!());
        let exit = |pid, status| ProcEvent::Exit { pid, status };
        for (pid, status) in [
            (13, 0),      // the daemon's first parent exits at once
            (11, 13),     // SIGPIPE
            (12, 15),     // SIGTERM
            (14, 9),      // SIGKILL
            (20, 1 << 8), // the limiter command exits 1: another root
            (98, 13),     // not ours
            (10, 2 << 8), // the main process exits 2
        ] {
            f.on_event(exit(pid, status), |_| unreachable!());
        }
        let r = f.report(&[10]);
        assert_eq!(r.by_signal, vec![(9, 1), (13, 1), (15, 1)]);
        assert_eq!((r.by(13), r.signalled()), (1, 3));
        assert_eq!((r.exited_0, r.exited_other), (1, 1));
        assert_eq!(r.first[0].name, "sed");
        assert_eq!(f.report(&[20]).exited_other, 1);
        assert_eq!(f.report(&[10, 20]).signalled(), 3);
        assert_eq!(f.report(&[]), DeathReport::default());
    }

    #[test]
    fn a_real_death_by_sigpipe_is_seen() {
        let Some(w) = ExitWatch::start() else {
            eprintln!("skipped: the proc connector needs root");
            return;
        };
        // A writer whose reader is gone: killed by SIGPIPE at its first write.
        let mut c = std::process::Command::new("sh")
            .args(["-c", "(sleep 0.01; echo x) | true; exit 0"])
            .spawn()
            .unwrap();
        let root = c.id() as i32;
        assert!(c.wait().unwrap().success());
        let r = w.finish(&[root]);
        assert_eq!(r.by(13), 1, "{r:?}");
        // The subshell that died never exec'd: it has the name of the `sh` it forked from.
        assert_eq!(r.first[0].name, "sh", "{r:?}");
        assert!(r.exited_0 >= 2, "{r:?}");
    }
}
