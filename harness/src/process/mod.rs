//! Processes, read from /proc and acted on with signals: the one `/proc/<pid>/stat`
//! parser (`stat`), the process table and trees (`procs`), how a process ended in words
//! (`status`), pinning the calling thread (`affinity`), processes a run left behind
//! (`leaks`), and ending a workload's processes in a safe order (`teardown`).
//!
//! The ground layer: it imports nothing from the rest of the crate.

pub mod affinity;
pub mod leaks;
pub mod procs;
pub mod stat;
pub mod status;
pub mod teardown;

pub use procs::ProcInfo;
pub use stat::PidStat;
pub use status::describe_status;
