//! Exit codes: each kind of failure gets its own, so scripts can tell them apart.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | an error not listed below |
//! | 2 | bad command-line flags (clap) |
//! | 3 | bad scenario file or field |
//! | 4 | missing privileges (cannot make cgroups or write limits) |
//! | 5 | missing controller or kernel feature (or a tree of limits that only cgroup v2 allows) |
//! | 6 | the workload failed (non-zero exit, crash, time-out), or an external limiter command failed as it started |
//! | 7 | cannot write results (read-only or full disk, folder in use by another run); results written before are kept |
//! | 128+N | interrupted by signal N: 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP; partial results were written |
//!
//! `check` and `compare` answer `git bisect run` and CI instead (`bisect_code`): 0 good,
//! 1 bad (an expectation failed, a metric regressed), 125 this build could not be tested
//! (skip), 128 the tool's own error, 129 the workload failed, 130 interrupted. Codes of
//! 128 and above make `git bisect run` stop rather than mark a commit (docs/bisect.md).

use crate::cgroup::CgroupError;
use crate::report::ResultsError;
use crate::scenario::resolve::PlaceError;
use crate::scenario::ScenarioError;
use nix::sys::signal::Signal;

pub const EXIT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_SCENARIO: i32 = 3;
pub const EXIT_PERMISSION: i32 = 4;
pub const EXIT_MISSING: i32 = 5;
pub const EXIT_WORKLOAD: i32 = 6;
pub const EXIT_RESULTS: i32 = 7;
/// Interrupted by Ctrl-C (128 + SIGINT); other signals give 128 + their number, as a
/// shell reports a process they killed.
pub const EXIT_INTERRUPTED: i32 = 130;

/// `check`: an expectation failed; `compare`: a metric regressed beyond `--fail-on`.
pub const EXIT_BAD: i32 = 1;
/// `check`: the run could not test this build (no controller, no privileges, a cgroup
/// file the kernel lacks): `git bisect run` skips the commit.
pub const EXIT_SKIP: i32 = 125;
/// `check`, `compare`: the tool's own error (bad scenario, expectation or result folder).
pub const EXIT_TOOL: i32 = 128;
/// `check`: the workload failed or timed out, so nothing was measured to test.
pub const EXIT_CHECK_WORKLOAD: i32 = 129;

/// An error that ends the process with a given exit code (`check`, `compare`).
#[derive(Debug)]
pub struct ExitWith {
    pub code: i32,
    pub error: anyhow::Error,
}

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The whole chain here: this error has no `source`, so it is printed once.
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for ExitWith {}

/// The `git bisect run` exit code for an error of `check` (see the module doc).
pub fn bisect_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(CgroupError::Io { source, .. }) = cause.downcast_ref::<CgroupError>() {
            // A cgroup interface file this kernel does not have (cpu.cfs_burst_us, ...).
            if source.kind() == std::io::ErrorKind::NotFound {
                return EXIT_SKIP;
            }
        }
    }
    match exit_code(err) {
        EXIT_PERMISSION | EXIT_MISSING => EXIT_SKIP,
        EXIT_WORKLOAD => EXIT_CHECK_WORKLOAD,
        EXIT_INTERRUPTED => EXIT_INTERRUPTED,
        _ if interrupted(err) => EXIT_INTERRUPTED,
        _ => EXIT_TOOL,
    }
}

/// Wrap an error so that it ends the process with `code`.
pub fn exit_with(code: i32, error: anyhow::Error) -> anyhow::Error {
    ExitWith { code, error }.into()
}

/// A run that ended badly; the results written so far are in `dir`.
#[derive(Debug, thiserror::Error)]
pub enum RunStop {
    #[error("the workload of run {run} {what}; results so far are in {dir}")]
    WorkloadFailed {
        run: usize,
        what: String,
        dir: String,
    },
    /// An external limiter command failed as it started: the run limited nothing.
    #[error("run {run}: {what}; results so far are in {dir}")]
    LimiterFailed {
        run: usize,
        what: String,
        dir: String,
    },
    #[error("interrupted by {}; partial results are in {dir}", signal_name(*.signal))]
    Interrupted { signal: i32, dir: String },
    /// Writing the results failed after `kept` of `planned` runs were written whole.
    #[error("{error}; stopped after {kept} of {planned} run(s), whose results are in {dir}")]
    Results {
        error: ResultsError,
        kept: usize,
        planned: usize,
        dir: String,
    },
}

/// SIGINT, SIGTERM, SIGHUP by name; others by number.
pub fn signal_name(signal: i32) -> String {
    match signal {
        s if s == Signal::SIGINT as i32 => "SIGINT".into(),
        s if s == Signal::SIGTERM as i32 => "SIGTERM".into(),
        s if s == Signal::SIGHUP as i32 => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}

/// Whether the error is an interrupted run.
fn interrupted(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        matches!(
            c.downcast_ref::<RunStop>(),
            Some(RunStop::Interrupted { .. })
        )
    })
}

fn cgroup_code(c: &CgroupError) -> i32 {
    match c {
        CgroupError::Permission { .. } => EXIT_PERMISSION,
        CgroupError::MissingController { .. } => EXIT_MISSING,
        _ => EXIT_ERROR,
    }
}

/// The exit code for an error, from the first error in its chain that has one.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(x) = cause.downcast_ref::<ExitWith>() {
            return x.code;
        }
        if cause.downcast_ref::<ScenarioError>().is_some() {
            return EXIT_SCENARIO;
        }
        if let Some(c) = cause.downcast_ref::<CgroupError>() {
            return cgroup_code(c);
        }
        // A transparent wrapper: its CgroupError is not in the chain of its own.
        if let Some(PlaceError::Cgroup(c)) = cause.downcast_ref::<PlaceError>() {
            return cgroup_code(c);
        }
        // A tree of limits only cgroup v2 allows: a kernel feature this machine lacks.
        if let Some(PlaceError::V1Tree(_)) = cause.downcast_ref::<PlaceError>() {
            return EXIT_MISSING;
        }
        if let Some(s) = cause.downcast_ref::<RunStop>() {
            return match s {
                RunStop::WorkloadFailed { .. } | RunStop::LimiterFailed { .. } => EXIT_WORKLOAD,
                RunStop::Interrupted { signal, .. } if (1..32).contains(signal) => 128 + signal,
                RunStop::Interrupted { .. } => EXIT_INTERRUPTED,
                RunStop::Results { .. } => EXIT_RESULTS,
            };
        }
        if cause.downcast_ref::<ResultsError>().is_some() {
            return EXIT_RESULTS;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::PermissionDenied {
                return EXIT_PERMISSION;
            }
        }
    }
    EXIT_ERROR
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped_by(signal: i32) -> anyhow::Error {
        anyhow::Error::from(RunStop::Interrupted {
            signal,
            dir: "out".into(),
        })
        .context("running the scenario")
    }

    #[test]
    fn an_interrupted_run_exits_with_128_plus_the_signal() {
        assert_eq!(exit_code(&stopped_by(Signal::SIGINT as i32)), 130);
        assert_eq!(exit_code(&stopped_by(Signal::SIGTERM as i32)), 143);
        assert_eq!(exit_code(&stopped_by(Signal::SIGHUP as i32)), 129);
        // No signal recorded: Ctrl-C's code.
        assert_eq!(exit_code(&stopped_by(0)), EXIT_INTERRUPTED);
        assert!(
            format!("{:#}", stopped_by(Signal::SIGTERM as i32)).contains("interrupted by SIGTERM")
        );
    }

    #[test]
    fn check_answers_130_to_any_interruption_so_a_bisect_stops() {
        // 129 would read as "the workload failed" to check's callers.
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP].map(|s| s as i32) {
            assert_eq!(bisect_code(&stopped_by(sig)), EXIT_INTERRUPTED);
        }
        assert_eq!(
            bisect_code(&exit_with(EXIT_INTERRUPTED, anyhow::anyhow!("x"))),
            EXIT_INTERRUPTED
        );
    }
}
