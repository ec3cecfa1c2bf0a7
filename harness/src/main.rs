//! The `throttlebench` binary: parse flags, run, turn errors into one message and an exit code.

use clap::Parser;
use nix::sys::signal::{signal, SigHandler, Signal};
use throttlebench::cli::exit::{exit_code, EXIT_USAGE};
use throttlebench::cli::{self, Cli};

fn main() {
    // Like other Unix tools, end quietly when a reader such as `head` closes the pipe.
    // SAFETY: the default disposition runs no code of ours; set before any thread starts.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
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
    std::process::exit(code);
}
