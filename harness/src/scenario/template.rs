//! An external limiter's command template (`limiter.command`): the placeholders it may
//! use, checked when the scenario is resolved, and filled when the limiter starts.

const PLACEHOLDERS: [&str; 4] = ["{pid}", "{pgid}", "{percent}", "{share}"];

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

/// Fill the placeholders. `share` is in CPUs; `{percent}` is 100 × share, rounded.
pub fn substitute(t: &str, pid: i32, pgid: i32, share: Option<f64>) -> String {
    let share = share.unwrap_or(1.0);
    t.replace("{pid}", &pid.to_string())
        .replace("{pgid}", &pgid.to_string())
        .replace("{percent}", &format!("{}", (share * 100.0).round() as i64))
        .replace("{share}", &format!("{share}"))
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
                Some(0.4)
            ),
            "cpulimit -l 40 -p 42 # 41 0.4"
        );
        assert_eq!(substitute("x {pid}{pid}", 1, 1, None), "x 11");
    }

    #[test]
    fn unknown_placeholders_are_named() {
        assert!(check_template("cpulimit -l {percent} -p {pid}").is_ok());
        let e = check_template("limit {cpu} now").unwrap_err();
        assert!(e.contains("{cpu}"), "{e}");
        assert!(check_template("no braces").is_ok());
    }
}
