//! The `throttlebench` binary: parse flags, run, turn errors into one message and an exit code.

use clap::Parser;
use nix::sys::signal::{signal, SigHandler, Signal};
use throttlebench::cli::exit::{exit_code, EXIT_USAGE};
use throttlebench::cli::{self, Cli};

fn main() {
    // Like other Unix tools, end quietly when a reader such as `head` closes the pipe.
    // SAFETY: the default disposition runs no code of ours; set before any thread starts.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    // Taken out of the environment before any thread starts, so the workloads this
    // process starts (this same binary) do not report theirs there too.
    let rss_file = std::env::var_os("THROTTLEBENCH_PEAK_RSS_FILE");
    std::env::remove_var("THROTTLEBENCH_PEAK_RSS_FILE");
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("throttlebench: error: {e:#}");
            exit_code(&e)
        }
    };
    if let Some(path) = rss_file {
        report_peak_rss(&path);
    }
    std::process::exit(code);
}

/// With THROTTLEBENCH_PEAK_RSS_FILE set (by `bench scale`), write this process's peak
/// resident set size (VmHWM, in kB) there: the harness's own, whatever its children use.
fn report_peak_rss(path: &std::ffi::OsStr) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(kb) = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    {
        let _ = std::fs::write(path, kb.to_string());
    }
}
