//! `/proc/pressure/cpu` (PSI): total time some (or all) runnable tasks waited for a CPU.

/// Totals from the `some` and `full` lines, in µs. `full` is None where the kernel
/// prints no `full` line for CPU (before 5.13): not reported, not 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub some_us: u64,
    pub full_us: Option<u64>,
}

impl Pressure {
    pub fn parse(text: &str) -> Option<Pressure> {
        let mut some = None;
        let mut full = None;
        for line in text.lines() {
            let mut it = line.split_ascii_whitespace();
            let slot = match it.next() {
                Some("some") => &mut some,
                Some("full") => &mut full,
                _ => continue,
            };
            let total = it.find_map(|f| f.strip_prefix("total="))?;
            *slot = Some(total.parse().ok()?);
        }
        Some(Pressure {
            some_us: some?,
            full_us: full,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_some_and_full() {
        let p = Pressure::parse(
            "some avg10=0.06 avg60=0.02 avg300=0.00 total=5128605\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=17\n",
        )
        .unwrap();
        assert_eq!(
            p,
            Pressure {
                some_us: 5128605,
                full_us: Some(17)
            }
        );
    }

    #[test]
    fn rejects_text_without_totals() {
        assert_eq!(Pressure::parse("nothing\n"), None);
        assert_eq!(Pressure::parse("some avg10=1\n"), None);
        // A `full` line alone has no `some`: not a CPU pressure file.
        assert_eq!(Pressure::parse("full avg10=0 total=3\n"), None);
        // Before 5.13 the cpu file has no `full` line: not reported, not 0.
        assert_eq!(
            Pressure::parse("some avg10=0 avg60=0 avg300=0 total=9\n")
                .unwrap()
                .full_us,
            None
        );
    }
}
