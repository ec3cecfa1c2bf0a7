//! The `fibtest` binary: see `fibtest::cli`.

fn main() {
    std::process::exit(fibtest::cli::run(std::env::args_os().skip(1).collect()));
}
