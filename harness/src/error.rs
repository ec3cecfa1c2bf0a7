//! Exit codes: each kind of failure gets its own, so scripts can tell them apart.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | an error not listed below |
//! | 2 | bad command-line flags (clap) |
//! | 3 | bad scenario file or field |
//! | 4 | missing privileges (cannot make cgroups or write limits) |
//! | 5 | missing controller or kernel feature |
//! | 6 | the workload failed (non-zero exit, crash, time-out) |
//! | 130 | interrupted (Ctrl-C, SIGTERM); partial results were written |

use crate::cgroup::CgroupError;
use crate::scenario::ScenarioError;

pub const EXIT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_SCENARIO: i32 = 3;
pub const EXIT_PERMISSION: i32 = 4;
pub const EXIT_MISSING: i32 = 5;
pub const EXIT_WORKLOAD: i32 = 6;
pub const EXIT_INTERRUPTED: i32 = 130;

/// A run that ended badly; the results written so far are in `dir`.
#[derive(Debug, thiserror::Error)]
pub enum RunStop {
    #[error("the workload of run {run} {what}; results so far are in {dir}")]
    WorkloadFailed {
        run: usize,
        what: String,
        dir: String,
    },
    #[error("interrupted by signal {signal}; partial results are in {dir}")]
    Interrupted { signal: i32, dir: String },
}

/// The exit code for an error, from the first error in its chain that has one.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.downcast_ref::<ScenarioError>().is_some() {
            return EXIT_SCENARIO;
        }
        if let Some(c) = cause.downcast_ref::<CgroupError>() {
            return match c {
                CgroupError::Permission { .. } => EXIT_PERMISSION,
                CgroupError::MissingController { .. } => EXIT_MISSING,
                _ => EXIT_ERROR,
            };
        }
        if let Some(s) = cause.downcast_ref::<RunStop>() {
            return match s {
                RunStop::WorkloadFailed { .. } => EXIT_WORKLOAD,
                RunStop::Interrupted { .. } => EXIT_INTERRUPTED,
            };
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::PermissionDenied {
                return EXIT_PERMISSION;
            }
        }
    }
    EXIT_ERROR
}
