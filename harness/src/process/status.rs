//! How a process ended, in words for reports and `run.json`.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// "exited with code N", "was killed by signal N", or "no exit status" when the process
/// was never waited for.
pub fn describe_status(st: Option<ExitStatus>) -> String {
    match st {
        None => "no exit status".into(),
        Some(st) => match (st.code(), st.signal()) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(s)) => format!("was killed by signal {s}"),
            _ => format!("ended with status {st}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_signals_in_words() {
        assert_eq!(describe_status(None), "no exit status");
        assert_eq!(
            describe_status(Some(ExitStatus::from_raw(3 << 8))),
            "exited with code 3"
        );
        assert_eq!(
            describe_status(Some(ExitStatus::from_raw(11))),
            "was killed by signal 11"
        );
    }
}
