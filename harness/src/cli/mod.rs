//! Command-line definitions (clap) and the wiring of each command. Kernel details live
//! in the library modules; this folder only connects them, one file per command.

pub mod bench;
pub mod check;
pub mod cleanup;
pub mod compare;
pub mod cut;
pub mod exit;
pub mod plot;
pub mod probe;
mod run;
pub mod threshold;
pub mod vm;

pub use run::{allowed_cpus, load_plan, run_scenario};

use crate::cgroup;
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "throttlebench",
    version,
    about = "Run workloads under CPU limiters, sample the kernel's throttling counters, and write results",
    after_help = "Exit codes: 0 ok, 1 error, 2 bad flags, 3 bad scenario, 4 missing privileges, 5 missing controller, 6 workload failed, 7 cannot write results (read-only or full disk, folder of a live run), 128+N interrupted by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP). check and compare (for git bisect run and CI): 0 good, 1 bad, 125 cannot test here (skip), 128 the tool's own error, 129 workload failed, 130 interrupted."
)]
pub struct Cli {
    /// Root of the cgroup file systems (default /sys/fs/cgroup; a delegated subtree, or
    /// a fake one in tests), for the default run. Commands that use cgroups take it too.
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// Root of the proc file system (a fixture folder in tests).
    #[arg(
        long,
        global = true,
        default_value = "/proc",
        value_name = "DIR",
        hide = true
    )]
    pub proc_root: PathBuf,
    /// Without a command, `run` with the built-in default scenario.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (a built-in default when none is given) and write its results.
    Run(RunArgs),
    /// Find the sustainable duty share, burst budget and throttled rate under a limiter.
    FindThreshold(threshold::ThresholdArgs),
    /// Measure the tool's own costs (the sampler; the FIPS tests against rngtest; the load generator against wrk) and print a table.
    Bench(bench::BenchArgs),
    /// Probes of the machine: CPU steal (accounted vs observed stalls) and entropy
    /// (readiness, supply, FIPS 140-2 tests).
    Probe(probe::ProbeArgs),
    /// Draw the plots of a stored result folder (SVG and PNG into DIR/plots).
    Plot(plot::PlotArgs),
    /// Run a scenario (or read --from DIR) and test expectations; exit 0 good, 1 bad,
    /// 125 cannot test here (skip), 128+ the tool's own error: for git bisect run and CI.
    Check(check::CheckArgs),
    /// Compare two result folders metric by metric, with intervals and tests; exit 1 when
    /// a metric regressed past --fail-on.
    Compare(compare::CompareArgs),
    /// Print some columns of a result CSV by name (`-c wall_s,cpu_share`), as CSV or,
    /// with --table, aligned for reading.
    Cut(cut::CutArgs),
    /// Remove what runs that died (SIGKILL, crash) left: their cgroups and processes. `run`
    /// does this before it starts too.
    Cleanup(cleanup::CleanupArgs),
    /// Run a throttlebench command in a guest kernel booted with virtme-ng (cgroup v2,
    /// the kernel under test); its exit code passes through, 125 when the guest could
    /// not answer.
    Vm(vm::VmArgs),
    /// The workload generator (same as the `fibtest` binary): fast/slow threads, requests, duty cycles.
    #[command(disable_help_flag = true)]
    Fibtest {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

/// `--cgroup-root`, on the commands that use cgroups (run, check, find-threshold, probe,
/// bench, cleanup); the others do not take it.
#[derive(Debug, Default, Clone, Args)]
pub struct CgroupRoot {
    /// Root of the cgroup file systems (default /sys/fs/cgroup; a delegated subtree, or
    /// a fake one in tests).
    #[arg(long = "cgroup-root", value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
}

impl CgroupRoot {
    /// The root given here, else the one given before the command, else the default.
    pub fn or(&self, before: &Option<PathBuf>) -> PathBuf {
        self.cgroup_root
            .clone()
            .or_else(|| before.clone())
            .unwrap_or_else(|| PathBuf::from(cgroup::DEFAULT_ROOT))
    }
}

#[derive(Debug, Default, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub root: CgroupRoot,
    /// Scenario file (TOML). Without one, a short form of Indeed's conceptual model [Unthrottled] runs.
    pub scenario: Option<PathBuf>,
    /// Result folder (default: a new results/<scenario>/<UTC time>/, with -2, -3, ...
    /// added when taken). A folder that another run is writing is refused (exit 7).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Resolve and print the plan, run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not draw plots at the end (`throttlebench plot DIR` draws them later).
    #[arg(long)]
    pub no_plot: bool,
}

/// Dispatch a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let command = cli.command.unwrap_or(Command::Run(RunArgs::default()));
    let before = &cli.cgroup_root;
    let no_cgroups = |name: &str| -> Result<()> {
        match before {
            Some(_) => Err(exit::exit_with(
                exit::EXIT_USAGE,
                anyhow::anyhow!("--cgroup-root does not apply to `{name}`, which uses no cgroup"),
            )),
            None => Ok(()),
        }
    };
    match command {
        Command::Run(args) => {
            run_scenario(&args.root.or(before), &cli.proc_root, &args)?;
            Ok(0)
        }
        Command::FindThreshold(args) => {
            threshold::run(&args.root.or(before), &cli.proc_root, &args)?;
            Ok(0)
        }
        Command::Bench(args) => {
            bench::run(&args.root.or(before), &cli.proc_root, &args)?;
            Ok(0)
        }
        Command::Probe(args) => probe::run(&args.root.or(before), &cli.proc_root, &args),
        Command::Plot(args) => {
            no_cgroups("plot")?;
            plot::run(&args)?;
            Ok(0)
        }
        Command::Check(args) => check::run(&args.root.or(before), &cli.proc_root, &args),
        Command::Compare(args) => {
            no_cgroups("compare")?;
            compare::run(&args)
        }
        Command::Cut(args) => {
            no_cgroups("cut")?;
            cut::run(&args)
        }
        Command::Vm(args) => {
            no_cgroups("vm")?;
            vm::run(&args)
        }
        Command::Cleanup(args) => cleanup::run(&args.root.or(before), &cli.proc_root, &args),
        Command::Fibtest { args } => Ok(fibtest::cli::run_as("throttlebench fibtest", args)),
    }
}
