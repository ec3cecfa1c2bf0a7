//! Reading every group's workload output on one thread: poll(2) over all their stdout
//! and stderr pipes, each line parsed as it arrives (never the whole output held), units
//! and duty on-periods handed to the sink for latency.csv and duty.csv, other text to the
//! sink's files, and the records a summary needs kept. Two threads per group (the old
//! way) made 129 threads at 64 groups.

use super::sink::{OutputSink, Stream};
use crate::clock::monotonic_ns;
use crate::result::{Line, WorkloadOutput};
use nix::poll::{poll, PollFd, PollFlags};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{ChildStderr, ChildStdout};
use std::thread::JoinHandle;

/// Lines of stderr kept for a failure's message.
const STDERR_TAIL_LINES: usize = 20;

/// One pipe being read.
struct Pipe {
    group: usize,
    stream: Stream,
    /// The pipe's read end.
    file: File,
    /// The bytes of a line not yet ended.
    partial: Vec<u8>,
    open: bool,
}

/// The thread reading a run's output.
pub(super) struct OutputReader {
    handle: JoinHandle<(Vec<WorkloadOutput>, io::Result<()>)>,
}

impl OutputReader {
    /// Start reading `pipes` (one pair per group, in the plan's order; None for a group
    /// that runs nothing) into `sink`.
    pub(super) fn start(
        pipes: Vec<Option<(ChildStdout, ChildStderr)>>,
        sink: Box<dyn OutputSink>,
    ) -> io::Result<OutputReader> {
        let groups = pipes.len();
        let mut all = Vec::with_capacity(2 * groups);
        for (g, pair) in pipes.into_iter().enumerate() {
            let Some((out, err)) = pair else {
                continue;
            };
            all.push(Pipe {
                group: g,
                stream: Stream::Stdout,
                file: File::from(OwnedFd::from(out)),
                partial: Vec::new(),
                open: true,
            });
            all.push(Pipe {
                group: g,
                stream: Stream::Stderr,
                file: File::from(OwnedFd::from(err)),
                partial: Vec::new(),
                open: true,
            });
        }
        let handle = std::thread::Builder::new()
            .name("output".into())
            .spawn(move || read_all(all, groups, sink))?;
        Ok(OutputReader { handle })
    }

    /// Wait until every pipe is closed (the workloads and whatever inherited their
    /// pipes are gone); each group's output, and the sink's first error if any.
    pub(super) fn join(self) -> (Vec<WorkloadOutput>, io::Result<()>) {
        self.handle.join().unwrap_or_else(|_| {
            (
                Vec::new(),
                Err(io::Error::other("the output reader panicked")),
            )
        })
    }
}

/// Handle one whole line of a pipe.
fn line(
    p: &Pipe,
    text: &[u8],
    out: &mut WorkloadOutput,
    tail: &mut VecDeque<String>,
    sink: &mut dyn OutputSink,
) -> io::Result<()> {
    match p.stream {
        Stream::Stdout => {
            let s = String::from_utf8_lossy(text);
            match out.push_line(&s) {
                Line::Unit(u) => sink.unit(p.group, &u)?,
                Line::Duty(d) => sink.duty(p.group, &d)?,
                Line::Record => {}
                Line::Text => sink.text(p.group, Stream::Stdout, text)?,
            }
        }
        Stream::Stderr => {
            sink.text(p.group, Stream::Stderr, text)?;
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(String::from_utf8_lossy(text).trim_end().to_string());
        }
    }
    Ok(())
}

fn read_all(
    mut pipes: Vec<Pipe>,
    groups: usize,
    mut sink: Box<dyn OutputSink>,
) -> (Vec<WorkloadOutput>, io::Result<()>) {
    let mut outs: Vec<WorkloadOutput> = (0..groups).map(|_| WorkloadOutput::default()).collect();
    let mut tails: Vec<VecDeque<String>> = vec![VecDeque::new(); groups];
    let mut buf = vec![0u8; 64 * 1024];
    let mut failed: io::Result<()> = Ok(());
    let mut last_flush = monotonic_ns();
    while pipes.iter().any(|p| p.open) {
        let ready: Vec<usize> = {
            let open: Vec<usize> = (0..pipes.len()).filter(|&i| pipes[i].open).collect();
            let mut fds: Vec<PollFd> = open
                .iter()
                .map(|&i| PollFd::new(pipes[i].file.as_fd(), PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, 1000u16) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    failed = failed.and(Err(e.into()));
                    break;
                }
            }
            open.iter()
                .zip(&fds)
                .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                .map(|(i, _)| *i)
                .collect()
        };
        for i in ready {
            let p = &mut pipes[i];
            let n = match p.file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                p.open = false;
                if !p.partial.is_empty() {
                    let rest = std::mem::take(&mut p.partial);
                    let r = line(
                        p,
                        &rest,
                        &mut outs[p.group],
                        &mut tails[p.group],
                        sink.as_mut(),
                    );
                    failed = failed.and(r);
                }
                continue;
            }
            let mut start = 0;
            for (j, b) in buf[..n].iter().enumerate() {
                if *b == b'\n' {
                    let r = if p.partial.is_empty() {
                        line(
                            p,
                            &buf[start..j],
                            &mut outs[p.group],
                            &mut tails[p.group],
                            sink.as_mut(),
                        )
                    } else {
                        p.partial.extend_from_slice(&buf[start..j]);
                        let whole = std::mem::take(&mut p.partial);
                        let r = line(
                            p,
                            &whole,
                            &mut outs[p.group],
                            &mut tails[p.group],
                            sink.as_mut(),
                        );
                        p.partial = whole;
                        p.partial.clear();
                        r
                    };
                    failed = failed.and(r);
                    start = j + 1;
                }
            }
            p.partial.extend_from_slice(&buf[start..n]);
        }
        if monotonic_ns() - last_flush >= 1_000_000_000 {
            failed = failed.and(sink.flush());
            last_flush = monotonic_ns();
        }
    }
    failed = failed.and(sink.flush());
    for (o, t) in outs.iter_mut().zip(tails) {
        o.stderr_tail = t.into_iter().collect::<Vec<_>>().join("\n");
    }
    (outs, failed)
}
