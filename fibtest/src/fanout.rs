//! Requests split across threads (`fibtest requests --fanout N`), like a parallel garbage
//! collector or a fork-join handler: each request's CPU work is cut into N equal parts,
//! the request thread does part 0 itself and N - 1 helper threads do the others, and the
//! request is done when the last part is. Its latency ends at that last part's end.
//!
//! The helpers of a request thread (its `Crew`) are made, pinned and parked before time
//! zero and live until the run ends, so the measured loop makes no thread and allocates
//! nothing: a request stores its part's CPU time and bumps a generation counter, wakes
//! the helpers (`Thread::unpark`, a futex on Linux), and parks until the last helper to
//! finish wakes it. No lock is taken.
//!
//! The request loop reaches its helpers through the `Parts` trait, so the tests in `work`
//! can script when helpers finish; `Crew` is the real one (with no helpers for
//! `--fanout 1`), tested here with real threads.

use crate::clock::{Host, System};
use crate::cpulist::pin_current_thread;
use crate::fib::Fib;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread};

/// Run Fibonacci steps until the calling thread's CPU clock has advanced by `work_ns`,
/// reading it every `check_steps` steps. Returns the steps done and whether the work was
/// done (false: the run was asked to stop first).
pub fn spin_cpu<H: Host>(h: &H, fib: &mut Fib, work_ns: u64, check_steps: u64) -> (u64, bool) {
    let c0 = h.thread_cpu_ns();
    let mut steps = 0u64;
    loop {
        h.steps(fib, check_steps);
        steps += check_steps;
        if h.thread_cpu_ns() - c0 >= work_ns {
            return (steps, true);
        }
        if h.stop_requested() {
            return (steps, false);
        }
    }
}

/// Part `j` of `n` of `work_ns`: an even share, the remainder going to part 0.
pub fn part_ns(work_ns: u64, n: u32, j: u32) -> u64 {
    let n = u64::from(n.max(1));
    work_ns / n + if j == 0 { work_ns % n } else { 0 }
}

/// The helpers of one request thread, as the request loop sees them.
pub trait Parts {
    /// Start every helper on a part of `part_ns` of CPU time.
    fn fork(&mut self, part_ns: u64);
    /// Wait until every helper is done with its part. Returns the latest end among them
    /// (CLOCK_MONOTONIC ns; 0 with no helpers), or None if a part was cut short by a stop.
    fn join(&mut self) -> Option<u64>;
    /// What the helpers did over the run: (steps, CPU ns). Ends them.
    fn finish(&mut self) -> (u64, u64);
}

/// What a request thread and its helpers share.
#[derive(Debug)]
struct Shared {
    /// Bumped once per request; a helper works when it sees a value it has not seen.
    generation: AtomicU64,
    /// CPU time of each helper's part of the current request, in ns.
    part_ns: AtomicU64,
    /// Helpers still working on the current request.
    remaining: AtomicU32,
    /// Set when the run is over: helpers return.
    shutdown: AtomicBool,
    /// Each helper's end of its last part (CLOCK_MONOTONIC ns), 0 if a stop cut it short.
    ends: Vec<AtomicU64>,
    /// The request thread, woken by the last helper to finish.
    leader: Thread,
    /// Steps between CPU-clock reads.
    check_steps: u64,
}

/// A request thread's helpers: real threads, pinned and parked between requests.
#[derive(Debug)]
pub struct Crew {
    shared: Arc<Shared>,
    helpers: Vec<(Thread, JoinHandle<(u64, u64)>)>,
    finished: Option<(u64, u64)>,
}

impl Crew {
    /// Start one helper per entry of `cpus` (pinned to it, or not pinned for None) and
    /// wait until each is pinned. Call it on the request thread itself, before
    /// time zero: the helpers wake that thread when they are done.
    pub fn start(cpus: &[Option<u32>], check_steps: u64) -> Result<Crew, String> {
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            part_ns: AtomicU64::new(0),
            remaining: AtomicU32::new(0),
            shutdown: AtomicBool::new(false),
            ends: cpus.iter().map(|_| AtomicU64::new(0)).collect(),
            leader: thread::current(),
            check_steps,
        });
        let mut crew = Crew {
            shared,
            helpers: Vec::with_capacity(cpus.len()),
            finished: None,
        };
        for (j, &cpu) in cpus.iter().enumerate() {
            let shared = Arc::clone(&crew.shared);
            let (tx, rx) = std::sync::mpsc::channel();
            let spawned = thread::Builder::new()
                .name(format!("fanout-{}", j + 1))
                .spawn(move || {
                    let pinned = cpu.map_or(Ok(()), |c| {
                        pin_current_thread(c)
                            .map_err(|e| format!("pinning a request's helper to CPU {c}: {e}"))
                    });
                    let ok = pinned.is_ok();
                    let _ = tx.send(pinned);
                    if ok {
                        helper(&shared, j)
                    } else {
                        (0, 0)
                    }
                });
            let handle = match spawned {
                Ok(h) => h,
                Err(e) => {
                    crew.finish();
                    return Err(format!("starting a request's helper thread: {e}"));
                }
            };
            crew.helpers.push((handle.thread().clone(), handle));
            // Each helper is pinned before the next is made, and before time zero.
            if let Ok(Err(e)) = rx.recv() {
                crew.finish();
                return Err(e);
            }
        }
        Ok(crew)
    }

    /// Number of helpers.
    pub fn len(&self) -> usize {
        self.helpers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.helpers.is_empty()
    }
}

/// A helper's life: wait for a request, do its part, tell the request thread, again;
/// returns its steps and CPU time when the run is over.
fn helper(s: &Shared, j: usize) -> (u64, u64) {
    let h = &System;
    let cpu0 = h.thread_cpu_ns();
    let mut fib = Fib::default();
    let mut steps = 0u64;
    let mut seen = 0u64;
    loop {
        loop {
            let g = s.generation.load(Ordering::Acquire);
            if g != seen {
                seen = g;
                break;
            }
            if s.shutdown.load(Ordering::Acquire) {
                return (steps, h.thread_cpu_ns().saturating_sub(cpu0));
            }
            thread::park();
        }
        let part = s.part_ns.load(Ordering::Relaxed);
        let (n, done) = spin_cpu(h, &mut fib, part, s.check_steps);
        steps += n;
        let end = if done { h.now_ns() } else { 0 };
        s.ends[j].store(end, Ordering::Relaxed);
        // Release: the end stored above is visible to the request thread once it sees 0.
        if s.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            s.leader.unpark();
        }
    }
}

impl Parts for Crew {
    fn fork(&mut self, part_ns: u64) {
        let s = &self.shared;
        s.part_ns.store(part_ns, Ordering::Relaxed);
        s.remaining
            .store(self.helpers.len() as u32, Ordering::Relaxed);
        // Release: a helper that sees the new generation sees the part and the count.
        s.generation.fetch_add(1, Ordering::Release);
        for (t, _) in &self.helpers {
            t.unpark();
        }
    }

    fn join(&mut self) -> Option<u64> {
        let s = &self.shared;
        while s.remaining.load(Ordering::Acquire) != 0 {
            thread::park();
        }
        let mut last = 0u64;
        for e in &s.ends {
            match e.load(Ordering::Relaxed) {
                0 => return None,
                t => last = last.max(t),
            }
        }
        Some(last)
    }

    fn finish(&mut self) -> (u64, u64) {
        if let Some(done) = self.finished {
            return done;
        }
        self.shared.shutdown.store(true, Ordering::Release);
        let mut total = (0u64, 0u64);
        for (t, handle) in self.helpers.drain(..) {
            t.unpark();
            // A helper that panicked did no more work; the others' totals still count.
            let (steps, cpu) = handle.join().unwrap_or((0, 0));
            total = (total.0 + steps, total.1 + cpu);
        }
        self.finished = Some(total);
        total
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeHost;
    use crate::record::Role;
    use crate::work::{request_thread, LatencyBuffer, RequestParams, ThreadSpec};

    const MS: u64 = 1_000_000;

    #[test]
    fn parts_split_the_work_evenly() {
        assert_eq!(part_ns(40 * MS, 4, 0), 10 * MS);
        assert_eq!(part_ns(40 * MS, 4, 3), 10 * MS);
        // The remainder goes to part 0, so the parts add up to the work.
        assert_eq!(part_ns(10, 3, 0), 4);
        assert_eq!(part_ns(10, 3, 1), 3);
        assert_eq!((0..3).map(|j| part_ns(10, 3, j)).sum::<u64>(), 10);
        assert_eq!(part_ns(7, 1, 0), 7);
    }

    /// Helpers whose parts end when the test says (one entry per request; None: cut
    /// short by a stop), recording the parts they were given.
    struct Scripted {
        ends: Vec<Option<u64>>,
        forked: Vec<u64>,
        joins: usize,
    }

    impl Scripted {
        fn new(ends: &[Option<u64>]) -> Scripted {
            Scripted {
                ends: ends.to_vec(),
                forked: Vec::new(),
                joins: 0,
            }
        }
    }

    impl Parts for Scripted {
        fn fork(&mut self, part_ns: u64) {
            self.forked.push(part_ns);
        }
        fn join(&mut self) -> Option<u64> {
            self.joins += 1;
            self.ends[self.joins - 1]
        }
        fn finish(&mut self) -> (u64, u64) {
            // Three helpers that did their 5 ms parts of three requests.
            (9_000, 45 * MS)
        }
    }

    fn spec() -> ThreadSpec {
        ThreadSpec {
            role: Role::Request,
            index: 0,
            cpu: None,
        }
    }

    fn params(count: u64, fanout: u32) -> RequestParams {
        RequestParams {
            work_ns: 20 * MS,
            count,
            interval_ns: 50 * MS,
            threads: 1,
            fanout,
            // 1 µs per step on the fake host: the CPU clock is read every 1 ms of work.
            check_steps: 1_000,
        }
    }

    #[test]
    fn a_request_ends_when_its_last_part_does() {
        // 20 ms of work in 4 parts: the request thread does 5 ms (due at 0, 50, 100 ms,
        // its part ends at 5, 55, 105), the helpers end at 9, 52 and 130 ms.
        let h = FakeHost::new(1_000, &[]);
        let mut parts = Scripted::new(&[Some(9 * MS), Some(52 * MS), Some(130 * MS)]);
        let out = request_thread(
            &h,
            &spec(),
            0,
            &params(3, 4),
            LatencyBuffer::with_capacity(3),
            &mut parts,
        );
        let us = |s: f64| (s * 1e6).round() as u64;
        let latency_us: Vec<u64> = out.units.iter().map(|u| us(u.latency_s)).collect();
        assert_eq!(latency_us, vec![9_000, 5_000, 30_000]);
        let end_us: Vec<u64> = out.units.iter().map(|u| us(u.end_s)).collect();
        assert_eq!(end_us, vec![9_000, 55_000, 130_000]);
        // Each helper was given a quarter of the work; the thread did its own quarter.
        assert_eq!(parts.forked, vec![5 * MS; 3]);
        assert_eq!(parts.joins, 3);
        // One record per request; the thread's totals count its helpers.
        assert_eq!(out.report.units, 3);
        assert_eq!(out.report.steps, 3 * 5_000 + 9_000);
        assert_eq!((out.report.cpu_s * 1e3).round(), 15.0 + 45.0);
    }

    #[test]
    fn a_stall_of_the_request_thread_delays_the_request() {
        // The thread's own part stalls 2-30 ms (throttled), the helpers end at 5 ms: the
        // request waits for its slowest part.
        let h = FakeHost::new(1_000, &[(2 * MS, 30 * MS)]);
        let mut parts = Scripted::new(&[Some(5 * MS)]);
        let out = request_thread(
            &h,
            &spec(),
            0,
            &params(1, 4),
            LatencyBuffer::with_capacity(1),
            &mut parts,
        );
        assert_eq!((out.units[0].latency_s * 1e6).round(), 33_000.0);
    }

    #[test]
    fn a_request_whose_part_was_cut_short_is_not_reported() {
        let h = FakeHost::new(1_000, &[]);
        let mut parts = Scripted::new(&[Some(6 * MS), None, Some(0)]);
        let out = request_thread(
            &h,
            &spec(),
            0,
            &params(3, 2),
            LatencyBuffer::with_capacity(3),
            &mut parts,
        );
        assert_eq!(out.units.len(), 1);
        assert_eq!(parts.forked, vec![10 * MS, 10 * MS]);
        // A stop inside the thread's own part still joins the helpers of that request.
        let h = FakeHost::new(1_000, &[]).stop_at(3 * MS);
        let mut parts = Scripted::new(&[Some(1)]);
        let out = request_thread(
            &h,
            &spec(),
            0,
            &params(3, 2),
            LatencyBuffer::with_capacity(3),
            &mut parts,
        );
        assert!(out.units.is_empty());
        assert_eq!((parts.forked.len(), parts.joins), (1, 1));
    }

    #[test]
    fn crew_helpers_each_do_their_part_request_after_request() {
        // Three helpers, unpinned, 2 ms of CPU each, three requests in a row: every
        // join waits for all of them (each helper's CPU time covers every part it did),
        // and the last end is no earlier than the fork.
        let mut crew = Crew::start(&[None, None, None], 1 << 12).unwrap();
        assert_eq!(crew.len(), 3);
        for _ in 0..3 {
            let forked = crate::clock::mono_ns();
            crew.fork(2 * MS);
            let last = crew.join().expect("no stop was requested");
            assert!(last >= forked, "{last} < {forked}");
            assert_eq!(crew.shared.remaining.load(Ordering::Relaxed), 0);
        }
        let (steps, cpu_ns) = crew.finish();
        assert!(steps > 0);
        assert!(cpu_ns >= 3 * 3 * 2 * MS, "{cpu_ns}");
        // Finishing twice gives the same totals and joins nothing more.
        assert_eq!(crew.finish(), (steps, cpu_ns));
    }

    #[test]
    fn crew_without_requests_ends_cleanly() {
        let mut crew = Crew::start(&[None], 1 << 12).unwrap();
        assert_eq!(crew.finish().0, 0);
        // Dropping a crew ends its helpers too.
        drop(Crew::start(&[None, None], 1 << 12).unwrap());
    }

    #[test]
    fn crew_names_a_cpu_it_cannot_pin_to() {
        // CPU 100000 exists nowhere, so pinning fails and says where.
        let e = Crew::start(&[None, Some(100_000)], 1 << 12).unwrap_err();
        assert!(e.contains("CPU 100000"), "{e}");
    }
}
