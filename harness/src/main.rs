//! The `throttlebench` binary: parse flags, run, turn errors into one message and an exit code.

use clap::Parser;
use throttlebench::cli::{self, Cli};
use throttlebench::error::{exit_code, EXIT_USAGE};

fn main() {
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
