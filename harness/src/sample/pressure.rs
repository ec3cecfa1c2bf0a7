//! `/proc/pressure/cpu` (PSI): total time some (or all) runnable tasks waited for a CPU.

/// Totals from the `some` and `full` lines, in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub some_us: u64,
    pub full_us: u64,
}

impl Pressure {
    pub fn parse(text: &str) -> Option<Pressure> {
        let mut p = Pressure::default();
        let mut seen = false;
        for line in text.lines() {
            let mut it = line.split_ascii_whitespace();
            let slot = match it.next() {
                Some("some") => &mut p.some_us,
                Some("full") => &mut p.full_us,
                _ => continue,
            };
            let total = it.find_map(|f| f.strip_prefix("total="))?;
            *slot = total.parse().ok()?;
            seen = true;
        }
        seen.then_some(p)
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
                full_us: 17
            }
        );
    }

    #[test]
    fn rejects_text_without_totals() {
        assert_eq!(Pressure::parse("nothing\n"), None);
        assert_eq!(Pressure::parse("some avg10=1\n"), None);
    }
}
