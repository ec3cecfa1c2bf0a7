//! CPU lists as the kernel writes them ("0", "1-3", "0,2-3"): parsing, canonical
//! formatting, set operations, and the CPUs this process may run on.
//!
//! Shared by the fibtest CLI and the harness's scenario fields (`cpus`, `fast_cpus`, ...).

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Highest CPU number accepted (the size of the kernel's cpu_set_t).
pub const MAX_CPU: u32 = 1023;

/// A set of CPU numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuList(BTreeSet<u32>);

/// A CPU list that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuListError {
    #[error(
        "`{text}` is not a CPU list: write CPU numbers and ranges like \"0\", \"1-3\" or \"0,2-3\""
    )]
    Syntax { text: String },
    #[error("`{text}`: the range {lo}-{hi} runs backwards")]
    Backwards { text: String, lo: u32, hi: u32 },
    #[error("`{text}`: CPU {cpu} is above the highest supported CPU number {MAX_CPU}")]
    TooHigh { text: String, cpu: u32 },
    #[error("the CPU list is empty")]
    Empty,
}

impl CpuList {
    pub fn from_cpus(cpus: impl IntoIterator<Item = u32>) -> CpuList {
        CpuList(cpus.into_iter().collect())
    }
    pub fn contains(&self, cpu: u32) -> bool {
        self.0.contains(&cpu)
    }
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn union(&self, other: &CpuList) -> CpuList {
        CpuList(self.0.union(&other.0).copied().collect())
    }
    pub fn difference(&self, other: &CpuList) -> CpuList {
        CpuList(self.0.difference(&other.0).copied().collect())
    }
    /// The i-th CPU of the list, wrapping around: how threads are spread over a set.
    pub fn nth_wrapping(&self, i: usize) -> Option<u32> {
        if self.0.is_empty() {
            None
        } else {
            self.0.iter().nth(i % self.0.len()).copied()
        }
    }
}

impl FromStr for CpuList {
    type Err = CpuListError;
    fn from_str(text: &str) -> Result<CpuList, CpuListError> {
        let syntax = || CpuListError::Syntax {
            text: text.to_string(),
        };
        let t = text.trim();
        if t.is_empty() {
            return Err(CpuListError::Empty);
        }
        let mut set = BTreeSet::new();
        for part in t.split(',') {
            let part = part.trim();
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (
                    a.trim().parse::<u32>().map_err(|_| syntax())?,
                    b.trim().parse::<u32>().map_err(|_| syntax())?,
                ),
                None => {
                    let c = part.parse::<u32>().map_err(|_| syntax())?;
                    (c, c)
                }
            };
            if lo > hi {
                return Err(CpuListError::Backwards {
                    text: text.to_string(),
                    lo,
                    hi,
                });
            }
            if hi > MAX_CPU {
                return Err(CpuListError::TooHigh {
                    text: text.to_string(),
                    cpu: hi,
                });
            }
            set.extend(lo..=hi);
        }
        Ok(CpuList(set))
    }
}

impl fmt::Display for CpuList {
    /// Canonical form: ascending, ranges merged ("0,2-3").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut it = self.0.iter().copied().peekable();
        while let Some(lo) = it.next() {
            let mut hi = lo;
            while it.peek() == Some(&(hi + 1)) {
                hi = it.next().expect("peeked");
            }
            if !first {
                write!(f, ",")?;
            }
            first = false;
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for CpuList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CpuList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CpuList, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The CPUs this process may run on (sched_getaffinity).
pub fn allowed_cpus() -> std::io::Result<CpuList> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok(CpuList(
        (0..=MAX_CPU)
            .filter(|c| set.is_set(*c as usize).unwrap_or(false))
            .collect(),
    ))
}

/// Pin the calling thread to one CPU.
pub fn pin_current_thread(cpu: u32) -> std::io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu as usize)?;
    // Pid 0 is the calling thread.
    sched_setaffinity(Pid::from_raw(0), &set)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_canonically() {
        for (text, canon) in [
            ("0", "0"),
            ("1-3", "1-3"),
            ("0,2-3", "0,2-3"),
            ("3,2,0", "0,2-3"),
            (" 0 , 1 ", "0-1"),
            ("0-1,1-2", "0-2"),
        ] {
            let l: CpuList = text.parse().unwrap();
            assert_eq!(l.to_string(), canon, "{text}");
        }
    }

    #[test]
    fn rejects_bad_lists_with_reasons() {
        assert!(matches!("".parse::<CpuList>(), Err(CpuListError::Empty)));
        assert!(matches!(
            "a".parse::<CpuList>(),
            Err(CpuListError::Syntax { .. })
        ));
        assert!(matches!(
            "1-".parse::<CpuList>(),
            Err(CpuListError::Syntax { .. })
        ));
        assert!(matches!(
            "3-1".parse::<CpuList>(),
            Err(CpuListError::Backwards { lo: 3, hi: 1, .. })
        ));
        assert!(matches!(
            "0-5000".parse::<CpuList>(),
            Err(CpuListError::TooHigh { cpu: 5000, .. })
        ));
    }

    #[test]
    fn error_messages_quote_the_text_and_say_what_is_wrong() {
        let msg = |t: &str| t.parse::<CpuList>().unwrap_err().to_string();
        assert_eq!(
            msg("0,,2"),
            "`0,,2` is not a CPU list: write CPU numbers and ranges like \"0\", \"1-3\" or \"0,2-3\""
        );
        assert!(msg("x-2").starts_with("`x-2` is not a CPU list"));
        assert_eq!(msg("0,3-1"), "`0,3-1`: the range 3-1 runs backwards");
        assert_eq!(
            msg("2048"),
            "`2048`: CPU 2048 is above the highest supported CPU number 1023"
        );
        assert_eq!(msg(" "), "the CPU list is empty");
    }

    #[test]
    fn iterates_in_ascending_order_and_round_trips() {
        let l: CpuList = "5,0-2".parse().unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![0, 1, 2, 5]);
        assert_eq!(l.len(), 4);
        assert_eq!(l.to_string().parse::<CpuList>().unwrap(), l);
        assert_eq!(CpuList::from_cpus([3, 1, 2]).to_string(), "1-3");
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, "\"0-2,5\"");
        assert_eq!(serde_json::from_str::<CpuList>(&json).unwrap(), l);
    }

    #[test]
    fn set_operations() {
        let a: CpuList = "0-3".parse().unwrap();
        let b: CpuList = "2-5".parse().unwrap();
        assert_eq!(a.union(&b).to_string(), "0-5");
        assert_eq!(a.difference(&b).to_string(), "0-1");
        assert!(a.contains(3) && !a.contains(4));
        assert_eq!(a.nth_wrapping(5), Some(1));
        assert_eq!(CpuList::default().nth_wrapping(0), None);
    }

    #[test]
    fn allowed_cpus_is_not_empty() {
        assert!(!allowed_cpus().unwrap().is_empty());
    }
}
