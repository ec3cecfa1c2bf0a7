//! throttlebench: run workloads under CPU limiters, sample the kernel's counters, and
//! write results that people and scripts can read.
//!
//! Data flows one way: `scenario` (parse, resolve into a `Plan`) → `runner` (cgroup,
//! limiter, workload, `sample`) → `result::RunResult` → `report` (files, statistics).

pub mod cgroup;
pub mod cli;
pub mod clock;
pub mod limiter;
pub mod plot;
pub mod probe;
pub mod process;
pub mod report;
pub mod result;
pub mod runner;
pub mod sample;
pub mod scenario;
pub mod signals;
pub mod threshold;
pub mod units;
pub mod vm;
