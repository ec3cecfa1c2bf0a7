//! An external limiter's command template (`limiter.command`): the placeholders it may
//! use, checked when the scenario is resolved, and filled when the limiter starts (or,
//! for a command that wraps the workload with `{workload}`, when the scenario is
//! resolved: `ulimit -t {cpu}; exec sh -c {workload}`).

use super::duration::Span;

const PLACEHOLDERS: [&str; 6] = [
    "{pid}",
    "{pgid}",
    "{percent}",
    "{share}",
    "{cpu}",
    "{workload}",
];

/// Check a template: braces only in the known placeholders.
pub fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i..];
        match PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
            Some(p) => rest = &tail[p.len()..],
            None => {
                let word: String = tail
                    .chars()
                    .take_while(|c| *c != '}')
                    .chain(['}'])
                    .collect();
                return Err(format!(
                    "unknown placeholder `{word}`: the command may use {}",
                    PLACEHOLDERS.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// Fill the placeholders. `share` is in CPUs; `{percent}` is 100 × share, rounded;
/// `{cpu}` is in s ("2", "0.5").
pub fn substitute(t: &str, pid: i32, pgid: i32, share: Option<f64>, cpu: Option<Span>) -> String {
    let share = share.unwrap_or(1.0);
    t.replace("{pid}", &pid.to_string())
        .replace("{pgid}", &pgid.to_string())
        .replace("{percent}", &format!("{}", (share * 100.0).round() as i64))
        .replace("{share}", &format!("{share}"))
        .replace(
            "{cpu}",
            &format!("{}", cpu.map(|c| c.as_secs_f64()).unwrap_or(0.0)),
        )
}

/// A command that wraps the workload's command line: `{workload}` becomes that line as
/// one shell word (single-quoted), the other placeholders as `substitute` fills them.
pub fn wrap(t: &str, workload: &str, share: Option<f64>, cpu: Option<Span>) -> String {
    // The template's own placeholders first, so none inside the workload's line is filled.
    let quoted = format!("'{}'", workload.replace('\'', r"'\''"));
    substitute(t, 0, 0, share, cpu).replace("{workload}", &quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(
            substitute(
                "cpulimit -l {percent} -p {pid} # {pgid} {share}",
                42,
                41,
                Some(0.4),
                None
            ),
            "cpulimit -l 40 -p 42 # 41 0.4"
        );
        assert_eq!(substitute("x {pid}{pid}", 1, 1, None, None), "x 11");
        assert_eq!(
            substitute(
                "prlimit --cpu={cpu}",
                1,
                1,
                None,
                Some(Span::from_millis(2500))
            ),
            "prlimit --cpu=2.5"
        );
    }

    #[test]
    fn a_wrapped_workload_is_one_shell_word() {
        let w = wrap(
            "ulimit -t {cpu}; exec sh -c {workload}",
            "echo 'a b' | sed s/a/c/",
            None,
            Some(Span::from_millis(2000)),
        );
        assert_eq!(
            w,
            r"ulimit -t 2; exec sh -c 'echo '\''a b'\'' | sed s/a/c/'"
        );
        // The shell gives the inner command back unchanged.
        let out = std::process::Command::new("sh")
            .args(["-c", &w.replace("exec sh -c", "printf %s")])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "echo 'a b' | sed s/a/c/"
        );
    }

    #[test]
    fn unknown_placeholders_are_named() {
        assert!(check_template("cpulimit -l {percent} -p {pid}").is_ok());
        let e = check_template("limit {cpus} now").unwrap_err();
        assert!(e.contains("{cpus}"), "{e}");
        assert!(check_template("no braces").is_ok());
    }
}
