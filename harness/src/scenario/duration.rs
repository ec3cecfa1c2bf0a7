//! CFS quota as text in scenarios: a duration per period, or "max". Durations themselves
//! are `fibtest::span::Span`, shared with the workload generator's flags.

pub use fibtest::span::{Span, SpanError};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A CFS quota: a duration per period, or "max" (no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Max,
    Limit(Span),
}

impl FromStr for Quota {
    type Err = SpanError;
    fn from_str(text: &str) -> Result<Quota, SpanError> {
        if text.trim() == "max" {
            Ok(Quota::Max)
        } else {
            text.parse().map(Quota::Limit).map_err(|_| SpanError {
                text: format!("{text}` (or \"max\"); `{text}"),
            })
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quota::Max => write!(f, "max"),
            Quota::Limit(s) => s.fmt(f),
        }
    }
}

impl Serialize for Quota {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quota {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Quota, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Quota;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a duration as text, like \"40ms\", or \"max\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quota, E> {
                if v.trim() == "max" {
                    return Ok(Quota::Max);
                }
                v.parse::<Span>().map(Quota::Limit).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_max_or_duration() {
        assert_eq!("max".parse::<Quota>().unwrap(), Quota::Max);
        assert_eq!(
            "40ms".parse::<Quota>().unwrap(),
            Quota::Limit(Span::from_millis(40))
        );
        assert!("unlimited".parse::<Quota>().is_err());
    }
}
