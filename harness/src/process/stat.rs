//! The one parser of `/proc/<pid>/stat` (proc(5)). It borrows the text and allocates
//! nothing, so the sampler can read a process's CPU time on every tick with it.
//!
//! The command name (field 2) is in parentheses and may itself hold spaces and
//! parentheses, so the fields after it are counted from the LAST `)`.

/// A parsed `/proc/<pid>/stat` line. Fields are numbered as in proc(5): 1 is the pid,
/// 2 the command name, 3 the state, 4 the parent pid, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidStat<'a> {
    pub pid: i32,
    /// The command name (as `comm`, at most 15 bytes), without its parentheses.
    pub comm: &'a str,
    /// One-letter state: R, S, D, T (stopped), t (traced), Z (zombie), ...
    pub state: char,
    /// Fields 4 and after, separated by whitespace.
    rest: &'a str,
}

/// PF_EXITING in the flags (field 9): the kernel is tearing the process down.
const PF_EXITING: u64 = 0x4;

impl<'a> PidStat<'a> {
    /// Parse a line; None when it has no pid, no parenthesised name or no state.
    pub fn parse(text: &'a str) -> Option<PidStat<'a>> {
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        if close < open {
            return None;
        }
        let pid = text[..open].trim().parse().ok()?;
        let comm = &text[open + 1..close];
        let after = &text[close + 1..];
        let mut words = after.split_ascii_whitespace();
        let state = words.next()?.chars().next()?;
        // `rest` starts at field 4: skip the state word in the original text.
        let state_at = after.find(|c: char| !c.is_ascii_whitespace())?;
        let rest = after[state_at..]
            .split_once(|c: char| c.is_ascii_whitespace())
            .map(|(_, r)| r)
            .unwrap_or("");
        Some(PidStat {
            pid,
            comm,
            state,
            rest,
        })
    }

    /// Field `n` (proc(5) numbering, 4 or more) as text, if the line has it.
    pub fn field(&self, n: usize) -> Option<&'a str> {
        self.rest.split_ascii_whitespace().nth(n.checked_sub(4)?)
    }

    fn number<T: std::str::FromStr>(&self, n: usize) -> Option<T> {
        self.field(n)?.parse().ok()
    }

    /// Field 4: the parent's pid.
    pub fn ppid(&self) -> Option<i32> {
        self.number(4)
    }

    /// Field 5: the process group.
    pub fn pgrp(&self) -> Option<i32> {
        self.number(5)
    }

    /// Field 6: the session.
    pub fn session(&self) -> Option<i32> {
        self.number(6)
    }

    /// Field 9: the kernel's flags (PF_*).
    pub fn flags(&self) -> Option<u64> {
        self.number(9)
    }

    /// Whether the kernel is tearing the process down (PF_EXITING): it is dying, not
    /// escaping. False when the line has no flags field.
    pub fn exiting(&self) -> bool {
        self.flags().is_some_and(|f| f & PF_EXITING != 0)
    }

    /// utime + stime (all its threads) + cutime + cstime (its children that have exited
    /// and been waited for), fields 14 to 17, in clock ticks. None when a field is missing,
    /// not a number or negative.
    pub fn cpu_ticks(&self) -> Option<u64> {
        let mut f = self.rest.split_ascii_whitespace().skip(14 - 4);
        let mut sum: u64 = 0;
        for _ in 0..4 {
            let v: i64 = f.next()?.parse().ok()?;
            sum = sum.checked_add(u64::try_from(v).ok()?)?;
        }
        Some(sum)
    }

    /// Field 22: when the process started, in clock ticks since boot. With the pid it
    /// names a process uniquely (a reused pid has another start time).
    pub fn start_time(&self) -> Option<u64> {
        self.number(22)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_spaces_and_parentheses() {
        let p = PidStat::parse("42 (my (odd) name) T 7 42 42 0 -1 4194560 0 0").unwrap();
        assert_eq!(p.pid, 42);
        assert_eq!(p.comm, "my (odd) name");
        assert_eq!(p.state, 'T');
        assert_eq!(p.ppid(), Some(7));
        assert_eq!(p.pgrp(), Some(42));
        assert_eq!(p.session(), Some(42));
        assert_eq!(p.flags(), Some(4194560));
        assert!(!p.exiting());
        let q = PidStat::parse("43 (x) R 7 42 42 0 -1 4194564 0 0").unwrap();
        assert!(q.exiting());
    }

    #[test]
    fn cpu_time_and_start_time_of_a_real_line() {
        // A real line (this machine, a spinning fibtest), its name made awkward.
        let line = "4242 (a) (b c)) R 4200 4242 4242 0 -1 4194304 120 0 0 0 \
                    250 13 7 2 20 0 3 0 8812 11378688 388 18446744073709551615 1 1 0 0";
        let p = PidStat::parse(line).unwrap();
        assert_eq!(p.comm, "a) (b c)");
        assert_eq!(p.cpu_ticks(), Some(250 + 13 + 7 + 2));
        assert_eq!(p.start_time(), Some(8812));
        assert_eq!(p.field(23), Some("11378688"));
    }

    #[test]
    fn short_or_bad_lines() {
        assert_eq!(PidStat::parse("garbage"), None);
        assert_eq!(PidStat::parse("1 (x)"), None);
        assert_eq!(PidStat::parse("x (y) R 1"), None);
        let p = PidStat::parse("1 (x) S 0").unwrap();
        assert_eq!(p.ppid(), Some(0));
        assert_eq!(p.flags(), None);
        assert!(!p.exiting());
        assert_eq!(p.start_time(), None);
        assert_eq!(p.cpu_ticks(), None);
        assert_eq!(p.field(3), None);
        // A negative child time is not a CPU time.
        let neg = PidStat::parse("1 (x) R 0 1 1 0 -1 0 0 0 0 0 -5 1 1 1").unwrap();
        assert_eq!(neg.cpu_ticks(), None);
    }
}
