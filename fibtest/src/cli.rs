//! The fibtest command line. `fibtest fib|requests|duty [OPTIONS]` writes records (see
//! `record`) on stdout, as JSON lines or CSV, and a short summary on stderr. `fibtest -f
//! FAST -t TOTAL -s SECONDS [-v]` (or no arguments) behaves like Indeed's Fibtest and
//! prints its `Iterations Completed(M): N` line.
//!
//! Flags are parsed (clap, or getopt rules for the Fibtest form), then resolved into a
//! `Plan` (threads with their CPUs, checked against the process's affinity, and the
//! workload's parameters) before any thread starts.

use crate::clock::System;
use crate::cpulist::{allowed_cpus, CpuList};
use crate::export;
use crate::record::{Mode, Record, Role};
use crate::span::Span;
use crate::stop;
use crate::work::{
    self, DutyParams, DutyTrace, FibParams, LatencyBuffer, RequestParams, RunOutcome, SlowSchedule,
    ThreadSpec,
};
use anyhow::{bail, Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::io::Write;

#[derive(Debug, Parser)]
#[command(
    name = "fibtest",
    version,
    about = "Workloads for CPU throttling studies: fast and slow Fibonacci threads, fixed-cost requests, duty cycles",
    after_help = "Indeed Fibtest compatible form: fibtest [-f FAST] [-t TOTAL] [-s SECONDS] [-v] [--format F]\n\
                  (thread i on CPU i mod the CPU count, fast when i mod the CPU count < FAST;\n\
                  prints `Iterations Completed(M): N`).\n\n\
                  Records: one JSON object per line on stdout (header, thread, unit, duty, end);\n\
                  see fibtest/README.md."
)]
struct Cli {
    /// Format of the records on stdout.
    #[arg(long, global = true, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// Start the work on the CFS period grid of this process's cgroup: give the period.
    /// Before starting, fibtest spins until it is throttled to find a period boundary
    /// (see --sync-gap), so time zero (and every request arriving a whole number of
    /// periods later) falls `--phase` after a boundary.
    #[arg(long, global = true, value_name = "PERIOD")]
    align: Option<Span>,
    /// With --align: how far after a period boundary time zero falls.
    #[arg(long, global = true, default_value = "0ms")]
    phase: Span,
    /// With --align: the shortest stall taken as throttling (default: a quarter of the
    /// period; give about half of period - quota).
    #[arg(long, global = true)]
    sync_gap: Option<Span>,
    #[command(subcommand)]
    mode: ModeArgs,
}

/// How records are written on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// One CSV row per record, fixed columns (see fibtest/README.md).
    Csv,
}

#[derive(Debug, Subcommand)]
enum ModeArgs {
    /// Fast threads spin through Fibonacci steps; slow threads do a few steps, then sleep.
    Fib {
        /// Number of fast threads.
        #[arg(long, default_value_t = 1)]
        fast: u32,
        /// Number of slow threads (default: one per slow CPU).
        #[arg(long)]
        slow: Option<u32>,
        /// CPUs of the fast threads (spread round-robin).
        #[arg(long, default_value = "0")]
        fast_cpus: CpuList,
        /// CPUs of the slow threads (default: the allowed CPUs not used by fast threads).
        #[arg(long)]
        slow_cpus: Option<CpuList>,
        /// Steps a slow thread does per unit.
        #[arg(long, default_value_t = 100)]
        slow_steps: u64,
        /// Time between slow units.
        #[arg(long, default_value = "10ms")]
        slow_sleep: Span,
        /// When slow units are due: `absolute` (unit k at k * slow-sleep; late units run
        /// back to back, each recording its wait) or `relative` (slow-sleep after the
        /// previous unit ended, as Fibtest's usleep).
        #[arg(long, default_value = "absolute")]
        slow_schedule: SlowSchedule,
        /// How long to run.
        #[arg(long, default_value = "5s")]
        duration: Span,
    },
    /// Requests that each need a fixed CPU time, arriving on an open-loop schedule.
    Requests {
        /// CPU time each request needs (thread CPU clock).
        #[arg(long)]
        work: Span,
        /// Number of requests.
        #[arg(long, default_value_t = 10)]
        count: u64,
        /// Time between arrivals (0 = all due at once, served back to back).
        #[arg(long, default_value = "1s")]
        interval: Span,
        /// Worker threads; request k goes to thread k mod threads.
        #[arg(long, default_value_t = 1)]
        threads: u32,
        /// CPUs to pin the worker threads to (round-robin; default: not pinned).
        #[arg(long)]
        cpus: Option<CpuList>,
    },
    /// Run for `on`, sleep for `off`, repeat; reports work per on-period and per slice.
    Duty {
        /// Length of an on-period.
        #[arg(long)]
        on: Span,
        /// Length of an off-period.
        #[arg(long, default_value = "0ms")]
        off: Span,
        /// Total length: as many whole on/off cycles as fit (at least one).
        #[arg(long, default_value = "10s")]
        duration: Span,
        /// Length of the slices that work is counted in inside an on-period.
        #[arg(long, default_value = "100ms")]
        slice: Span,
        /// Number of duty threads.
        #[arg(long, default_value_t = 1)]
        threads: u32,
        /// CPUs to pin the threads to (round-robin; default: not pinned).
        #[arg(long)]
        cpus: Option<CpuList>,
    },
    /// A server (HTTP/1.1 or lines) whose every request costs a fixed CPU time, until
    /// SIGINT/SIGTERM; see fibtest/src/serve.rs.
    Serve(crate::serve::ServeArgs),
}

/// A workload resolved from the flags: valid, with every thread's CPU allowed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub specs: Vec<ThreadSpec>,
    pub work: Work,
}

/// The parameters of one mode.
#[derive(Debug, Clone, Copy)]
pub enum Work {
    Fib(FibParams),
    Requests(RequestParams),
    Duty(DutyParams),
}

impl Plan {
    pub fn mode(&self) -> Mode {
        match self.work {
            Work::Fib(_) => Mode::Fib,
            Work::Requests(_) => Mode::Requests,
            Work::Duty(_) => Mode::Duty,
        }
    }

    /// Start the threads, wait for them, and return what they measured.
    pub fn execute(&self, align: work::Alignment) -> RunOutcome {
        let h = &System;
        match &self.work {
            Work::Fib(p) => work::run_threads(
                &self.specs,
                align,
                |spec| {
                    (spec.role == Role::Slow)
                        .then(|| LatencyBuffer::with_capacity(work::slow_capacity(p)))
                },
                |spec, start, buf| match spec.role {
                    Role::Fast => work::fast_thread(h, spec, start, p),
                    _ => work::slow_thread(h, spec, start, p, buf.unwrap_or_default()),
                },
            ),
            Work::Requests(p) => work::run_threads(
                &self.specs,
                align,
                |spec| LatencyBuffer::with_capacity(p.requests_for(spec.index)),
                |spec, start, buf| work::request_thread(h, spec, start, p, buf),
            ),
            Work::Duty(p) => work::run_threads(
                &self.specs,
                align,
                |_| DutyTrace::for_params(p),
                |spec, start, trace| work::duty_thread(h, spec, start, p, trace),
            ),
        }
    }
}

fn ns(s: Span) -> u64 {
    s.0.as_nanos() as u64
}

/// `n` threads of `role` spread round-robin over `cpus` (unpinned without a list).
fn spread(role: Role, n: u32, cpus: Option<&CpuList>) -> Vec<ThreadSpec> {
    (0..n)
        .map(|i| ThreadSpec {
            role,
            index: i,
            cpu: cpus.and_then(|c| c.nth_wrapping(i as usize)),
        })
        .collect()
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Fast => "fast",
        Role::Slow => "slow",
        Role::Request => "request",
        Role::Duty => "duty",
    }
}

/// Every thread's CPU must be one the process may run on.
fn check_cpus(specs: &[ThreadSpec], allowed: &CpuList) -> Result<()> {
    for s in specs {
        if let Some(cpu) = s.cpu.filter(|c| !allowed.contains(*c)) {
            bail!(
                "CPU {cpu} (for a {} thread) is not one this process may use: allowed CPUs are {allowed}",
                role_name(s.role)
            );
        }
    }
    Ok(())
}

/// Resolve a mode's flags into a plan; `allowed` is the process's CPU affinity.
fn plan(mode: ModeArgs, allowed: &CpuList) -> Result<Plan> {
    let plan = match mode {
        ModeArgs::Fib {
            fast,
            slow,
            fast_cpus,
            slow_cpus,
            slow_steps,
            slow_sleep,
            slow_schedule,
            duration,
        } => {
            if slow_sleep.is_zero() {
                bail!("--slow-sleep must be longer than 0");
            }
            let slow_cpus = slow_cpus.unwrap_or_else(|| {
                let rest = allowed.difference(&fast_cpus);
                if rest.is_empty() {
                    fast_cpus.clone()
                } else {
                    rest
                }
            });
            let slow = slow.unwrap_or(slow_cpus.len() as u32);
            let mut specs = spread(Role::Fast, fast, Some(&fast_cpus));
            specs.extend(spread(Role::Slow, slow, Some(&slow_cpus)));
            Plan {
                specs,
                work: Work::Fib(FibParams {
                    duration_ns: ns(duration),
                    fast_check_steps: work::FAST_CHECK_STEPS,
                    slow_steps,
                    slow_sleep_ns: ns(slow_sleep),
                    schedule: slow_schedule,
                }),
            }
        }
        ModeArgs::Requests {
            work: w,
            count,
            interval,
            threads,
            cpus,
        } => {
            if threads == 0 || w.is_zero() {
                bail!("--threads and --work must be more than 0");
            }
            Plan {
                specs: spread(Role::Request, threads, cpus.as_ref()),
                work: Work::Requests(RequestParams {
                    work_ns: ns(w),
                    count,
                    interval_ns: ns(interval),
                    threads,
                    check_steps: work::REQUEST_CHECK_STEPS,
                }),
            }
        }
        ModeArgs::Duty {
            on,
            off,
            duration,
            slice,
            threads,
            cpus,
        } => {
            if on.is_zero() || slice.is_zero() || threads == 0 {
                bail!("--on, --slice and --threads must be more than 0");
            }
            Plan {
                specs: spread(Role::Duty, threads, cpus.as_ref()),
                work: Work::Duty(DutyParams {
                    on_ns: ns(on),
                    off_ns: ns(off),
                    duration_ns: ns(duration),
                    slice_ns: ns(slice),
                    check_steps: work::DUTY_CHECK_STEPS,
                }),
            }
        }
        // A server has no timed plan: run_cli hands it to serve::run before planning.
        ModeArgs::Serve(_) => bail!("serve runs until stopped and has no timed plan"),
    };
    check_cpus(&plan.specs, allowed)?;
    Ok(plan)
}

/// Options of the Fibtest-compatible form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyArgs {
    /// `-f`: fast threads (Fibtest's default 1).
    pub fast: u32,
    /// `-t`: all threads (default: the configured CPU count), never fewer than `fast`.
    pub total: u32,
    /// `-s`: duration in whole seconds (default 5).
    pub seconds: u64,
    /// `-v`: print each thread's steps and last Fibonacci number.
    pub verbose: bool,
    /// `--format`: also write records on stdout (Fibtest's lines then go to stderr).
    pub format: Option<Format>,
}

/// A number as C's `strtol(text, NULL, 0)` reads it, as Fibtest does: leading blanks, a
/// sign, `0x` for hex or `0` for octal, digits up to the first that does not fit; no
/// digits reads as 0. Negative values become 0 (no threads, no time).
fn strtol(text: &str) -> u64 {
    let t = text.trim_start();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or(t.strip_prefix("0X")) {
        (16, h)
    } else if t.starts_with('0') {
        (8, t)
    } else {
        (10, t)
    };
    let value = digits
        .chars()
        .map_while(|c| c.to_digit(radix))
        .fold(0u64, |v, d| {
            v.saturating_mul(radix as u64).saturating_add(d as u64)
        });
    if negative {
        0
    } else {
        value
    }
}

/// Parse Fibtest's options with getopt's rules for "vf:t:s:": `-f2` and `-f 2` both work,
/// flags group (`-vf 2`), `--` ends the options, other words are ignored. `procs` is the
/// default thread count, as Fibtest's get_nprocs_conf(). Also takes `--format F`, which
/// Fibtest does not have.
pub fn parse_legacy(args: &[String], procs: u32) -> Result<LegacyArgs, String> {
    let mut a = LegacyArgs {
        fast: 1,
        total: procs,
        seconds: 5,
        verbose: false,
        format: None,
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if arg == "--" {
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            if name != "format" {
                return Err(format!("unknown option --{name}"));
            }
            let value = match value {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i - 1).cloned().ok_or("--format needs a value")?
                }
            };
            a.format = Some(Format::from_str(&value, false).map_err(|_| {
                format!("--format: `{value}` is not a format: write \"jsonl\" or \"csv\"")
            })?);
            continue;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            continue; // an operand: Fibtest ignores them
        };
        for (at, flag) in flags.char_indices() {
            match flag {
                'v' => a.verbose = true,
                'f' | 't' | 's' => {
                    let rest = &flags[at + 1..];
                    let value = if rest.is_empty() {
                        i += 1;
                        args.get(i - 1)
                            .cloned()
                            .ok_or(format!("option -{flag} needs a number"))?
                    } else {
                        rest.to_string()
                    };
                    let n = strtol(&value);
                    let n32 = n.min(i32::MAX as u64) as u32;
                    match flag {
                        'f' => a.fast = n32,
                        't' => a.total = n32,
                        _ => a.seconds = n.min(i32::MAX as u64),
                    }
                }
                _ => return Err(format!("invalid option -{flag}")),
            }
            // As Fibtest, after every option: never fewer threads than fast threads.
            a.total = a.total.max(a.fast);
            if matches!(flag, 'f' | 't' | 's') {
                break; // the rest of the word was the value
            }
        }
    }
    Ok(a)
}

/// Fibtest's thread layout: thread i on CPU i mod procs, fast when i mod procs < fast.
pub fn legacy_threads(a: &LegacyArgs, procs: u32) -> Vec<ThreadSpec> {
    let (mut nf, mut ns) = (0, 0);
    (0..a.total)
        .map(|i| {
            let cpu = i % procs.max(1);
            let fast = cpu < a.fast;
            let index = if fast { &mut nf } else { &mut ns };
            *index += 1;
            ThreadSpec {
                role: if fast { Role::Fast } else { Role::Slow },
                index: *index - 1,
                cpu: Some(cpu),
            }
        })
        .collect()
}

/// Fibtest's parameters: deadline checked every 1,000,000 fast steps; slow threads do 100
/// steps, then sleep 10 ms after each (a relative schedule, like its usleep).
pub fn legacy_params(a: &LegacyArgs) -> FibParams {
    FibParams {
        duration_ns: a.seconds * 1_000_000_000,
        fast_check_steps: 1_000_000,
        slow_steps: 100,
        slow_sleep_ns: 10_000_000,
        schedule: SlowSchedule::Relative,
    }
}

const LEGACY_USAGE: &str =
    "usage: fibtest [-v] [-f FAST] [-t TOTAL] [-s SECONDS] [--format jsonl|csv]\n\
    (or: fibtest fib|requests|duty --help)\n";

/// Run fibtest with `args` (without the program name); returns the exit code: 0 done, 1
/// failed, 2 bad flags.
pub fn run(args: Vec<OsString>) -> i32 {
    run_as("fibtest", args)
}

/// `run`, with `bin` as the program's name in help and errors (`throttlebench fibtest`
/// when the harness runs it as its subcommand).
pub fn run_as(bin: &str, args: Vec<OsString>) -> i32 {
    let strings: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().to_string())
        .collect();
    let legacy = strings
        .first()
        .is_none_or(|a| a.starts_with('-') && !a.starts_with("--") && a != "-h" && a != "-V");
    stop::install();
    let result = if legacy {
        match parse_legacy(&strings, procs_conf()) {
            Ok(a) => run_legacy(&a, &strings),
            Err(e) => {
                eprint!("fibtest: {e}\n{LEGACY_USAGE}");
                return 2;
            }
        }
    } else {
        let mut argv = vec![OsString::from(bin)];
        argv.extend(args);
        let parsed = Cli::command()
            .bin_name(bin)
            .try_get_matches_from(argv)
            .and_then(|m| Cli::from_arg_matches(&m));
        match parsed {
            Ok(cli) => run_cli(cli, &strings),
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() { 2 } else { 0 };
            }
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("fibtest: error: {e:#}");
            1
        }
    }
}

/// Configured CPUs, as Fibtest's get_nprocs_conf() (sysconf(_SC_NPROCESSORS_CONF)).
fn procs_conf() -> u32 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_CONF) {
        Ok(Some(n)) if n > 0 => n as u32,
        _ => 1,
    }
}

fn first_error(out: &RunOutcome) -> Result<()> {
    match out.threads.iter().find_map(|t| t.error.clone()) {
        Some(e) => bail!(e),
        None => Ok(()),
    }
}

/// Write the records on stdout in `format`.
fn write_records(format: Format, records: &[Record]) -> Result<()> {
    let bytes = match format {
        Format::Jsonl => export::to_jsonl(records),
        Format::Csv => export::to_csv(records),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&bytes)
        .and_then(|()| stdout.flush())
        .context("writing the records on stdout")
}

fn run_legacy(a: &LegacyArgs, args: &[String]) -> Result<()> {
    let procs = procs_conf();
    let allowed = allowed_cpus().context("reading this process's CPU affinity")?;
    let plan = Plan {
        specs: legacy_threads(a, procs),
        work: Work::Fib(legacy_params(a)),
    };
    check_cpus(&plan.specs, &allowed)?;
    let out = plan.execute(work::Alignment::default());
    first_error(&out)?;
    let mut text = String::new();
    let mut total = 0u64;
    for t in &out.threads {
        if a.verbose {
            text.push_str(&format!("fib[{}] = {} \n", t.report.steps, t.fib));
        }
        total += t.report.steps;
    }
    text.push_str(&format!(
        "Iterations Completed(M): {} \n",
        total / 1_000_000
    ));
    match a.format {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .context("writing on stdout")?;
        }
        Some(format) => {
            let records = export::records(Mode::Fib, args, std::process::id(), &out);
            write_records(format, &records)?;
            eprint!("{text}");
        }
    }
    Ok(())
}

fn run_cli(cli: Cli, args: &[String]) -> Result<()> {
    if let ModeArgs::Serve(a) = &cli.mode {
        if cli.align.is_some() {
            bail!("--align does not apply to serve");
        }
        let mut header_written = false;
        return crate::serve::run(a, args, &mut |records| {
            // CSV: the column row once, before the first record.
            let mut bytes = match cli.format {
                Format::Jsonl => export::to_jsonl(records),
                Format::Csv => export::to_csv(records),
            };
            if cli.format == Format::Csv && header_written {
                let first = bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
                bytes.drain(..first);
            }
            header_written = true;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .context("writing the records on stdout")
        });
    }
    let allowed = allowed_cpus().context("reading this process's CPU affinity")?;
    let plan = plan(cli.mode, &allowed)?;
    let align = alignment(cli.align, cli.phase, cli.sync_gap)?;
    let out = plan.execute(align);
    first_error(&out)?;
    let records = export::records(plan.mode(), args, std::process::id(), &out);
    write_records(cli.format, &records)?;
    eprint!("{}", export::summary(&records));
    if stop::requested() {
        eprintln!("fibtest: stopped early by a signal; the records cover the time until then");
    }
    Ok(())
}

/// Find the period grid when --align asks for it.
fn alignment(align: Option<Span>, phase: Span, sync_gap: Option<Span>) -> Result<work::Alignment> {
    let Some(period) = align else {
        return Ok(work::Alignment::default());
    };
    let period_ns = ns(period);
    if period_ns == 0 {
        bail!("--align must be longer than 0");
    }
    let gap = sync_gap.map(ns).unwrap_or(period_ns / 4);
    // Ten periods is plenty: a thread under a quota below one CPU is throttled in the first.
    match work::find_period_boundary(&System, gap, 10 * period_ns) {
        // The period that starts at the boundary found is partly used by the search and
        // by starting threads: time zero goes no earlier than the next one.
        Some(boundary) => Ok(work::Alignment {
            align_ns: period_ns,
            phase_ns: ns(phase),
            origin_ns: boundary + period_ns,
        }),
        None => bail!(
            "--align {period}: no stall of {} or more within 10 periods, so no CFS period boundary was found (is there a quota below one CPU?)",
            Span(std::time::Duration::from_nanos(gap))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn cli_plan(line: &str, allowed: &str) -> Result<Plan> {
        let cli = Cli::try_parse_from(std::iter::once("fibtest").chain(line.split_whitespace()))
            .expect("flags parse");
        plan(cli.mode, &allowed.parse().unwrap())
    }

    fn layout(p: &Plan) -> Vec<(Role, Option<u32>)> {
        p.specs.iter().map(|s| (s.role, s.cpu)).collect()
    }

    #[test]
    fn legacy_defaults_are_fibtests() {
        let a = parse_legacy(&[], 4).unwrap();
        assert_eq!(
            a,
            LegacyArgs {
                fast: 1,
                total: 4,
                seconds: 5,
                verbose: false,
                format: None,
            }
        );
    }

    #[test]
    fn legacy_options_follow_getopt() {
        let a = parse_legacy(&args("-f 2 -t8 -s 10 -v"), 4).unwrap();
        assert_eq!((a.fast, a.total, a.seconds, a.verbose), (2, 8, 10, true));
        let a = parse_legacy(&args("-vf3 -s 1"), 4).unwrap();
        assert_eq!((a.fast, a.total, a.seconds, a.verbose), (3, 4, 1, true));
        // Fewer threads than fast threads is raised, as Fibtest does.
        assert_eq!(parse_legacy(&args("-t 1 -f 3"), 4).unwrap().total, 3);
        // Operands are ignored; `--` ends the options.
        assert_eq!(parse_legacy(&args("x -s 2 -- -s 9"), 4).unwrap().seconds, 2);
        assert!(parse_legacy(&args("-x 1"), 4).is_err());
        assert!(parse_legacy(&args("-f"), 4).is_err());
        let a = parse_legacy(&args("-s 1 --format csv"), 4).unwrap();
        assert_eq!(a.format, Some(Format::Csv));
        assert!(parse_legacy(&args("--format=xml"), 4).is_err());
    }

    #[test]
    fn legacy_numbers_read_as_strtol_does() {
        for (text, n) in [
            ("10", 10),
            (" 7", 7),
            ("0x10", 16),
            ("010", 8),
            ("5s", 5),
            ("two", 0),
            ("-3", 0),
            ("+4", 4),
        ] {
            assert_eq!(strtol(text), n, "{text}");
        }
    }

    #[test]
    fn legacy_thread_layout_matches_fibtest() {
        // 2 CPUs, 1 fast, 5 threads: CPUs 0 1 0 1 0; fast where i mod 2 < 1.
        let a = LegacyArgs {
            fast: 1,
            total: 5,
            seconds: 1,
            verbose: false,
            format: None,
        };
        let t = legacy_threads(&a, 2);
        let roles: Vec<(Role, Option<u32>)> = t.iter().map(|s| (s.role, s.cpu)).collect();
        assert_eq!(
            roles,
            vec![
                (Role::Fast, Some(0)),
                (Role::Slow, Some(1)),
                (Role::Fast, Some(0)),
                (Role::Slow, Some(1)),
                (Role::Fast, Some(0)),
            ]
        );
        assert_eq!(t[4].index, 2);
        // 4 CPUs, 2 fast, 6 threads: CPUs 0 1 2 3 0 1, fast on CPUs 0 and 1.
        let a = LegacyArgs {
            fast: 2,
            total: 6,
            ..a
        };
        let fast: Vec<u32> = legacy_threads(&a, 4)
            .iter()
            .filter(|s| s.role == Role::Fast)
            .map(|s| s.cpu.unwrap())
            .collect();
        assert_eq!(fast, vec![0, 1, 0, 1]);
        let p = legacy_params(&a);
        assert_eq!((p.fast_check_steps, p.slow_steps), (1_000_000, 100));
        assert_eq!(
            (p.slow_sleep_ns, p.schedule),
            (10_000_000, SlowSchedule::Relative)
        );
    }

    #[test]
    fn fib_threads_spread_round_robin_over_their_cpus() {
        let p = cli_plan(
            "fib --fast 3 --fast-cpus 0,2 --slow 3 --slow-cpus 1-3",
            "0-3",
        )
        .unwrap();
        assert_eq!(
            layout(&p),
            vec![
                (Role::Fast, Some(0)),
                (Role::Fast, Some(2)),
                (Role::Fast, Some(0)),
                (Role::Slow, Some(1)),
                (Role::Slow, Some(2)),
                (Role::Slow, Some(3)),
            ]
        );
        // Slow threads default to one per allowed CPU that fast threads do not use.
        let p = cli_plan("fib --fast-cpus 1", "0-3").unwrap();
        assert_eq!(
            layout(&p)[1..],
            [
                (Role::Slow, Some(0)),
                (Role::Slow, Some(2)),
                (Role::Slow, Some(3))
            ]
        );
        match p.work {
            Work::Fib(f) => assert_eq!(f.schedule, SlowSchedule::Absolute),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cpus_outside_the_allowed_set_are_named() {
        let e = cli_plan("fib --slow-cpus 1-3", "0-1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CPU 2") && e.contains("allowed CPUs are 0-1"),
            "{e}"
        );
        let e = cli_plan("duty --on 1s --threads 2 --cpus 0,5", "0-3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("CPU 5") && e.contains("duty"), "{e}");
    }

    #[test]
    fn zero_lengths_are_refused() {
        assert!(cli_plan("fib --slow-sleep 0ms", "0-1").is_err());
        assert!(cli_plan("requests --work 0ms", "0-1").is_err());
        assert!(cli_plan("duty --on 0ms", "0-1").is_err());
        assert!(cli_plan("duty --on 1s --slice 0ms", "0-1").is_err());
    }
}
