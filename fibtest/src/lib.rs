//! fibtest: workloads for CPU throttling studies (fast and slow Fibonacci threads,
//! fixed-cost requests, duty cycles), pinned to CPUs, with latencies recorded from each
//! unit's due time. The `fibtest` binary is a thin wrapper over `cli::run`; the harness
//! runs it as a child process and reads its `record::Record` lines, and reuses `cpulist`
//! and `span` for its scenario files.

pub mod cli;
pub mod clock;
pub mod cpulist;
pub mod export;
pub mod fib;
pub mod record;
pub mod serve;
pub mod span;
pub mod stats;
pub mod stop;
pub mod work;
