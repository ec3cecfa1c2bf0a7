//! The fibtest command line: `fibtest fib|requests|duty [OPTIONS]` writes JSON-lines
//! records (see `record`) on stdout and a short summary on stderr; `fibtest -f FAST -t
//! TOTAL -s SECONDS [-v]` (or no arguments) behaves like Indeed's Fibtest and prints its
//! `Iterations Completed(M): N` line.

use crate::cpulist::{allowed_cpus, CpuList};
use crate::record::{End, Header, Mode, Record, Role, ThreadReport, UnitLatency, FORMAT_VERSION};
use crate::span::Span;
use crate::stop;
use crate::work::{self, DutyParams, FibParams, RequestParams, RunOutcome, ThreadSpec};
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::io::Write;

#[derive(Debug, Parser)]
#[command(
    name = "fibtest",
    version,
    about = "Workloads for CPU throttling studies: fast and slow Fibonacci threads, fixed-cost requests, duty cycles",
    after_help = "Indeed Fibtest compatible form: fibtest [-f FAST] [-t TOTAL] [-s SECONDS] [-v]\n\
                  (thread i on CPU i mod the CPU count, fast when i mod the CPU count < FAST;\n\
                  prints `Iterations Completed(M): N`).\n\n\
                  Records: one JSON object per line on stdout (header, thread, unit, duty, end);\n\
                  see fibtest/README.md."
)]
struct Cli {
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
        /// Steps a slow thread does before sleeping.
        #[arg(long, default_value_t = 100)]
        slow_steps: u64,
        /// How long a slow thread sleeps.
        #[arg(long, default_value = "10ms")]
        slow_sleep: Span,
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
        /// CPUs to pin the worker threads to (round-robin).
        #[arg(long)]
        cpus: Option<CpuList>,
    },
    /// Run for `on`, sleep for `off`, repeat; reports work per on-period and per slice.
    Duty {
        #[arg(long)]
        on: Span,
        #[arg(long, default_value = "0ms")]
        off: Span,
        /// Total length: as many whole on/off cycles as fit (at least one).
        #[arg(long, default_value = "10s")]
        duration: Span,
        /// Length of the slices that work is counted in inside an on-period.
        #[arg(long, default_value = "100ms")]
        slice: Span,
        #[arg(long, default_value_t = 1)]
        threads: u32,
        #[arg(long)]
        cpus: Option<CpuList>,
    },
}

/// Options of the Fibtest-compatible form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyArgs {
    pub fast: u32,
    pub total: u32,
    pub seconds: u64,
    pub verbose: bool,
}

/// Parse `-f N -t N -s N -v` (getopt style: `-f2` and `-f 2` both work). `procs` is the
/// default thread count, as Fibtest's get_nprocs_conf().
pub fn parse_legacy(args: &[String], procs: u32) -> Result<LegacyArgs, String> {
    let mut a = LegacyArgs {
        fast: 1,
        total: procs,
        seconds: 5,
        verbose: false,
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let Some(flag) = arg.strip_prefix('-').and_then(|f| f.chars().next()) else {
            return Err(format!("unexpected argument `{arg}`"));
        };
        if flag == 'v' && arg.len() == 2 {
            a.verbose = true;
            i += 1;
            continue;
        }
        let value = if arg.len() > 2 {
            arg[2..].to_string()
        } else {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or(format!("-{flag} needs a number"))?
        };
        let n: u64 = value
            .parse()
            .map_err(|_| format!("-{flag}: `{value}` is not a number"))?;
        match flag {
            'f' => a.fast = n as u32,
            't' => a.total = n as u32,
            's' => a.seconds = n,
            _ => return Err(format!("unknown option -{flag}")),
        }
        // As Fibtest: never fewer threads than fast threads.
        if a.total < a.fast {
            a.total = a.fast;
        }
        i += 1;
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

/// Run fibtest with `args` (without the program name); returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let strings: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().to_string())
        .collect();
    let legacy = strings.is_empty()
        || strings
            .first()
            .map(|a| a.starts_with('-') && !a.starts_with("--") && a != "-h" && a != "-V")
            .unwrap_or(false);
    stop::install();
    let result = if legacy {
        run_legacy(&strings)
    } else {
        let mut argv = vec![OsString::from("fibtest")];
        argv.extend(args);
        match Cli::try_parse_from(argv) {
            Ok(cli) => match alignment(&cli) {
                Ok(align) => run_mode(cli.mode, align, &strings),
                Err(e) => Err(e),
            },
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() { 2 } else { 0 };
            }
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("fibtest: error: {e}");
            1
        }
    }
}

/// Configured CPUs, as Fibtest's get_nprocs_conf() (sysconf(_SC_NPROCESSORS_CONF)).
/// Find the period grid when --align asks for it.
fn alignment(cli: &Cli) -> Result<work::Alignment, String> {
    let Some(period) = cli.align else {
        return Ok(work::Alignment::default());
    };
    let period_ns = ns(period);
    if period_ns == 0 {
        return Err("--align must be longer than 0".into());
    }
    let gap = cli.sync_gap.map(ns).unwrap_or(period_ns / 4);
    // Ten periods is plenty: a thread under a quota below one CPU is throttled in the first.
    match work::find_period_boundary(gap, 10 * period_ns) {
        // The period that starts at the boundary found is partly used by the search and
        // by starting threads: time zero goes no earlier than the next one.
        Some(boundary) => Ok(work::Alignment {
            align_ns: period_ns,
            phase_ns: ns(cli.phase),
            origin_ns: boundary + period_ns,
        }),
        None => Err(format!(
            "--align {period}: no stall of {} or more within 10 periods, so no CFS period boundary was found (is there a quota below one CPU?)",
            Span(std::time::Duration::from_nanos(gap))
        )),
    }
}

fn procs_conf() -> u32 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }).max(1) as u32
}

fn run_legacy(args: &[String]) -> Result<(), String> {
    let procs = procs_conf();
    let a = parse_legacy(args, procs)?;
    let specs = legacy_threads(&a, procs);
    let allowed = allowed_cpus().map_err(|e| e.to_string())?;
    check_cpus(&specs, &allowed)?;
    let p = FibParams {
        duration_ns: a.seconds * 1_000_000_000,
        fast_check_steps: 1_000_000,
        slow_steps: 100,
        slow_sleep_ns: 10_000_000,
    };
    let out = run_fib(&specs, work::Alignment::default(), &p);
    first_error(&out)?;
    let mut stdout = std::io::stdout().lock();
    let mut total = 0u64;
    for t in &out.threads {
        if a.verbose {
            let _ = writeln!(stdout, "fib[{}] = {} ", t.report.steps, t.fib);
        }
        total += t.report.steps;
    }
    let _ = writeln!(stdout, "Iterations Completed(M): {} ", total / 1_000_000);
    Ok(())
}

fn check_cpus(specs: &[ThreadSpec], allowed: &CpuList) -> Result<(), String> {
    for s in specs {
        if let Some(cpu) = s.cpu {
            if !allowed.contains(cpu) {
                return Err(format!(
                    "CPU {cpu} (for a {} thread) is not one this process may use: allowed CPUs are {allowed}",
                    role_name(s.role)
                ));
            }
        }
    }
    Ok(())
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Fast => "fast",
        Role::Slow => "slow",
        Role::Request => "request",
        Role::Duty => "duty",
    }
}

fn first_error(out: &RunOutcome) -> Result<(), String> {
    match out.threads.iter().find_map(|t| t.error.clone()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn spread(role: Role, n: u32, cpus: Option<&CpuList>) -> Vec<ThreadSpec> {
    (0..n)
        .map(|i| ThreadSpec {
            role,
            index: i,
            cpu: cpus.and_then(|c| c.nth_wrapping(i as usize)),
        })
        .collect()
}

fn run_fib(specs: &[ThreadSpec], align: work::Alignment, p: &FibParams) -> RunOutcome {
    // Slow threads' buffers are made here, before time zero, and moved into the threads.
    let buffers: Vec<std::sync::Mutex<Option<Vec<UnitLatency>>>> = specs
        .iter()
        .map(|s| {
            std::sync::Mutex::new(
                (s.role == Role::Slow).then(|| Vec::with_capacity(work::slow_capacity(p))),
            )
        })
        .collect();
    let index_of = |spec: &ThreadSpec| {
        specs
            .iter()
            .position(|s| s.role == spec.role && s.index == spec.index)
            .expect("spec from the list")
    };
    work::run_threads(specs, align, |spec, start| {
        // Taken once, before the loop starts.
        let buf = buffers[index_of(spec)].lock().expect("not poisoned").take();
        match spec.role {
            Role::Fast => work::fast_thread(spec, start, p),
            _ => work::slow_thread(spec, start, p, buf.unwrap_or_default()),
        }
    })
}

fn ns(s: Span) -> u64 {
    s.0.as_nanos() as u64
}

fn run_mode(mode: ModeArgs, align: work::Alignment, args: &[String]) -> Result<(), String> {
    let allowed = allowed_cpus().map_err(|e| e.to_string())?;
    let (kind, out) = match mode {
        ModeArgs::Fib {
            fast,
            slow,
            fast_cpus,
            slow_cpus,
            slow_steps,
            slow_sleep,
            duration,
        } => {
            let slow_cpus = slow_cpus.unwrap_or_else(|| {
                let rest = allowed.difference(&fast_cpus);
                if rest.is_empty() {
                    fast_cpus.clone()
                } else {
                    rest
                }
            });
            let slow = slow.unwrap_or(slow_cpus.len() as u32);
            if slow_sleep.is_zero() {
                return Err("--slow-sleep must be longer than 0".into());
            }
            let mut specs = spread(Role::Fast, fast, Some(&fast_cpus));
            specs.extend(spread(Role::Slow, slow, Some(&slow_cpus)));
            check_cpus(&specs, &allowed)?;
            let p = FibParams {
                duration_ns: ns(duration),
                fast_check_steps: work::FAST_CHECK_STEPS,
                slow_steps,
                slow_sleep_ns: ns(slow_sleep),
            };
            (Mode::Fib, run_fib(&specs, align, &p))
        }
        ModeArgs::Requests {
            work: w,
            count,
            interval,
            threads,
            cpus,
        } => {
            if threads == 0 || w.is_zero() {
                return Err("--threads and --work must be more than 0".into());
            }
            let specs = spread(Role::Request, threads, cpus.as_ref());
            check_cpus(&specs, &allowed)?;
            let p = RequestParams {
                work_ns: ns(w),
                count,
                interval_ns: ns(interval),
                threads,
            };
            let buffers: Vec<std::sync::Mutex<Option<Vec<UnitLatency>>>> = (0..threads)
                .map(|t| std::sync::Mutex::new(Some(Vec::with_capacity(work::requests_for(&p, t)))))
                .collect();
            let out = work::run_threads(&specs, align, |spec, start| {
                let buf = buffers[spec.index as usize]
                    .lock()
                    .expect("not poisoned")
                    .take();
                work::request_thread(spec, start, &p, buf.unwrap_or_default())
            });
            (Mode::Requests, out)
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
                return Err("--on, --slice and --threads must be more than 0".into());
            }
            let specs = spread(Role::Duty, threads, cpus.as_ref());
            check_cpus(&specs, &allowed)?;
            let p = DutyParams {
                on_ns: ns(on),
                off_ns: ns(off),
                duration_ns: ns(duration),
                slice_ns: ns(slice),
            };
            (
                Mode::Duty,
                work::run_threads(&specs, align, |spec, start| {
                    work::duty_thread(spec, start, &p)
                }),
            )
        }
    };
    first_error(&out)?;
    write_records(kind, args, &out).map_err(|e| format!("writing records: {e}"))?;
    eprint!("{}", human_summary(&out));
    Ok(())
}

/// Write the JSON-lines report of a run.
pub fn write_records(mode: Mode, args: &[String], out: &RunOutcome) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let mut line = |r: &Record| -> std::io::Result<()> {
        serde_json::to_writer(&mut w, r)?;
        w.write_all(b"\n")
    };
    line(&Record::Header(Header {
        version: FORMAT_VERSION,
        mode,
        pid: std::process::id(),
        start_monotonic_ns: out.start_ns,
        args: args.to_vec(),
    }))?;
    for t in &out.threads {
        line(&Record::Thread(t.report.clone()))?;
    }
    for t in &out.threads {
        for u in &t.units {
            line(&Record::Unit(u.clone()))?;
        }
        for d in &t.duty {
            line(&Record::Duty(d.clone()))?;
        }
    }
    let wall_s = out
        .threads
        .iter()
        .map(|t| t.report.wall_s)
        .fold(0.0, f64::max);
    line(&Record::End(End {
        wall_s,
        cpu_s: crate::clock::process_cpu_ns() as f64 / 1e9,
        fast_steps: out
            .threads
            .iter()
            .filter(|t| t.report.role == Role::Fast)
            .map(|t| t.report.steps)
            .sum(),
    }))?;
    w.flush()
}

fn human_summary(out: &RunOutcome) -> String {
    let mut s = String::new();
    for role in [Role::Fast, Role::Slow, Role::Request, Role::Duty] {
        let ts: Vec<&ThreadReport> = out
            .threads
            .iter()
            .map(|t| &t.report)
            .filter(|r| r.role == role)
            .collect();
        if ts.is_empty() {
            continue;
        }
        let steps: u64 = ts.iter().map(|t| t.steps).sum();
        let wall = ts.iter().map(|t| t.wall_s).fold(0.0, f64::max).max(1e-9);
        let cpu: f64 = ts.iter().map(|t| t.cpu_s).sum();
        s.push_str(&format!(
            "fibtest: {} {} thread(s): {:.1} M steps ({:.0} M steps/s), {:.3} s CPU",
            ts.len(),
            role_name(role),
            steps as f64 / 1e6,
            steps as f64 / 1e6 / wall,
            cpu
        ));
        let mut lat: Vec<f64> = out
            .threads
            .iter()
            .filter(|t| t.report.role == role)
            .flat_map(|t| t.units.iter().map(|u| u.latency_s))
            .collect();
        if !lat.is_empty() {
            lat.sort_by(f64::total_cmp);
            let p = |q: f64| lat[((q * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1];
            s.push_str(&format!(
                ", {} units, latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
                lat.len(),
                p(0.5) * 1e3,
                p(0.99) * 1e3,
                lat[lat.len() - 1] * 1e3
            ));
        }
        let dropped: u64 = ts.iter().map(|t| t.units_dropped).sum();
        if dropped > 0 {
            s.push_str(&format!(", {dropped} units not stored (buffer full)"));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
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
                verbose: false
            }
        );
    }

    #[test]
    fn legacy_options_getopt_style() {
        let a = parse_legacy(&args("-f 2 -t8 -s 10 -v"), 4).unwrap();
        assert_eq!((a.fast, a.total, a.seconds, a.verbose), (2, 8, 10, true));
        // Fewer threads than fast threads is raised, as Fibtest does.
        assert_eq!(parse_legacy(&args("-t 1 -f 3"), 4).unwrap().total, 3);
        assert!(parse_legacy(&args("-x 1"), 4).is_err());
        assert!(parse_legacy(&args("-f"), 4).is_err());
        assert!(parse_legacy(&args("-f two"), 4).is_err());
    }

    #[test]
    fn legacy_thread_layout_matches_fibtest() {
        // 2 CPUs, 1 fast, 5 threads: CPUs 0 1 0 1 0; fast where i mod 2 < 1.
        let a = LegacyArgs {
            fast: 1,
            total: 5,
            seconds: 1,
            verbose: false,
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
    }

    #[test]
    fn cpus_outside_the_allowed_set_are_named() {
        let specs = spread(Role::Slow, 2, Some(&"1-3".parse().unwrap()));
        let e = check_cpus(&specs, &"0-1".parse().unwrap()).unwrap_err();
        assert!(e.contains("CPU 2") && e.contains("0-1"), "{e}");
    }
}
