//! What the generator measures: one `RequestRecord` per request (streamed to the caller's
//! sink, never kept), error counts by kind, and fixed-size HDR histograms reduced to
//! percentiles.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The connection was refused (nothing listens).
    Refused,
    /// Connecting failed otherwise (timed out, unreachable).
    ConnectFailed,
    /// The connection was reset, or broke while sending.
    Reset,
    /// The server closed the connection before a whole answer.
    Closed,
    /// No whole answer within the timeout after the send.
    Timeout,
    /// The answer was not HTTP/1.x (or more bytes came than one answer).
    BadResponse,
    /// Due, but never sent before the run ended (its connection stayed busy).
    Unsent,
    /// Sent, but the run ended before its answer or its timeout.
    Unfinished,
    /// Any other socket error.
    Io,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Refused,
        ErrorKind::ConnectFailed,
        ErrorKind::Reset,
        ErrorKind::Closed,
        ErrorKind::Timeout,
        ErrorKind::BadResponse,
        ErrorKind::Unsent,
        ErrorKind::Unfinished,
        ErrorKind::Io,
    ];

    /// The name used in files (snake case).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::Reset => "reset",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Unsent => "unsent",
            ErrorKind::Unfinished => "unfinished",
            ErrorKind::Io => "io",
        }
    }

    /// The kind of a socket error while connecting (`connecting`) or after.
    pub fn of_io(e: &std::io::Error, connecting: bool) -> ErrorKind {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => ErrorKind::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => ErrorKind::Reset,
            _ if connecting => ErrorKind::ConnectFailed,
            K::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Io,
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An HTTP answer with this status.
    Http(u16),
    /// A line answer.
    Line,
    /// No answer.
    Error(ErrorKind),
}

/// One request. Times are ns since the run's time zero (`LoadReport::start_monotonic_ns`
/// on CLOCK_MONOTONIC), so they line up with any other CLOCK_MONOTONIC record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// Request number (see `schedule`).
    pub index: u64,
    /// Connection it went on.
    pub connection: u32,
    /// Due in the warm-up: recorded, not counted in the summary.
    pub warmup: bool,
    /// When it was due (its intended start).
    pub due_ns: u64,
    /// When its first byte was sent (None: never sent).
    pub sent_ns: Option<u64>,
    /// When its answer was complete, or it failed.
    pub end_ns: u64,
    pub outcome: Outcome,
}

impl RequestRecord {
    /// Latency from when it was due, in ns: what a user arriving on schedule waits.
    pub fn latency_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.due_ns)
    }
    /// Time from its send to its end, in ns: what a closed-loop tool records.
    pub fn service_ns(&self) -> Option<u64> {
        self.sent_ns.map(|s| self.end_ns.saturating_sub(s))
    }
}

/// Requests that failed, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    pub refused: u64,
    pub connect_failed: u64,
    pub reset: u64,
    pub closed: u64,
    pub timeout: u64,
    pub bad_response: u64,
    pub unsent: u64,
    pub unfinished: u64,
    pub io: u64,
}

impl ErrorCounts {
    pub fn add(&mut self, k: ErrorKind) {
        *self.get_mut(k) += 1;
    }
    fn get_mut(&mut self, k: ErrorKind) -> &mut u64 {
        match k {
            ErrorKind::Refused => &mut self.refused,
            ErrorKind::ConnectFailed => &mut self.connect_failed,
            ErrorKind::Reset => &mut self.reset,
            ErrorKind::Closed => &mut self.closed,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::BadResponse => &mut self.bad_response,
            ErrorKind::Unsent => &mut self.unsent,
            ErrorKind::Unfinished => &mut self.unfinished,
            ErrorKind::Io => &mut self.io,
        }
    }
    pub fn get(&self, k: ErrorKind) -> u64 {
        let mut c = *self;
        *c.get_mut(k)
    }
    pub fn total(&self) -> u64 {
        ErrorKind::ALL.iter().map(|&k| self.get(k)).sum()
    }
    pub fn merge(&mut self, o: &ErrorCounts) {
        for k in ErrorKind::ALL {
            *self.get_mut(k) += o.get(k);
        }
    }
}

/// Highest value a histogram tracks, in ns (an hour); larger values count as this.
pub const HIST_MAX_NS: u64 = 3_600_000_000_000;

/// A histogram of ns values from 1 µs to an hour at 3 significant digits (about 200 KB,
/// allocated once; recording never allocates).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, HIST_MAX_NS, 3).expect("valid histogram bounds")
}

/// A distribution reduced to the figures a summary shows, in s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean_s: f64,
    pub p50_s: f64,
    pub p90_s: f64,
    pub p99_s: f64,
    pub p999_s: f64,
    pub max_s: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let s = |ns: u64| ns as f64 / 1e9;
        Percentiles {
            count: h.len(),
            mean_s: h.mean() / 1e9,
            p50_s: s(h.value_at_quantile(0.5)),
            p90_s: s(h.value_at_quantile(0.9)),
            p99_s: s(h.value_at_quantile(0.99)),
            p999_s: s(h.value_at_quantile(0.999)),
            max_s: s(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_counts_by_kind() {
        let mut c = ErrorCounts::default();
        for k in ErrorKind::ALL {
            c.add(k);
        }
        c.add(ErrorKind::Timeout);
        assert_eq!(c.total(), 10);
        assert_eq!(c.get(ErrorKind::Timeout), 2);
        let mut d = ErrorCounts::default();
        d.merge(&c);
        d.merge(&c);
        assert_eq!(d.refused, 2);
        let names: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn percentiles_of_a_histogram() {
        let mut h = histogram();
        for ms in 1..=1000u64 {
            h.saturating_record(ms * 1_000_000);
        }
        h.saturating_record(u64::MAX);
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1001);
        // 1001 values: the median is the 501st (501 ms), p99 the 991st; 3 significant
        // digits.
        assert!((p.p50_s / 0.501 - 1.0).abs() < 0.001, "{p:?}");
        assert!((p.p99_s / 0.991 - 1.0).abs() < 0.001, "{p:?}");
        // Values above the range count as its top.
        assert!((p.max_s - HIST_MAX_NS as f64 / 1e9).abs() / p.max_s < 0.001);
        assert_eq!(Percentiles::of(&histogram()), Percentiles::default());
    }

    #[test]
    fn latency_is_from_due_and_service_from_send() {
        let r = RequestRecord {
            index: 0,
            connection: 0,
            warmup: false,
            due_ns: 100,
            sent_ns: Some(250),
            end_ns: 400,
            outcome: Outcome::Http(200),
        };
        assert_eq!((r.latency_ns(), r.service_ns()), (300, Some(150)));
    }
}
