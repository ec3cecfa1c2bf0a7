//! throttlebench: run workloads under CPU limiters, sample the kernel's counters, and
//! write results that people and scripts can read.

pub mod probe;
pub mod sample;
