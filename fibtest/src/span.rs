//! Durations written as text in flags and scenarios: "200ms", "1s", "1.5s", "500us", "2m".
//! Shared by the fibtest CLI and the harness's scenario files.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration that reads and writes as text ("40ms"). Whole microseconds are kept.
///
/// ```
/// use fibtest::span::Span;
/// let s: Span = "1.5s".parse().unwrap();
/// assert_eq!(s.as_micros(), 1_500_000);
/// assert_eq!(s.to_string(), "1500ms");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(pub Duration);

/// Text that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a duration: write a number and a unit, like \"40ms\", \"1.5s\", \"500us\" or \"2m\"")]
pub struct SpanError {
    pub text: String,
}

impl Span {
    pub fn from_micros(us: u64) -> Span {
        Span(Duration::from_micros(us))
    }
    pub fn from_millis(ms: u64) -> Span {
        Span(Duration::from_millis(ms))
    }
    pub fn as_micros(&self) -> u64 {
        self.0.as_micros() as u64
    }
    pub fn as_secs_f64(&self) -> f64 {
        self.0.as_secs_f64()
    }
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl FromStr for Span {
    type Err = SpanError;
    fn from_str(text: &str) -> Result<Span, SpanError> {
        let err = || SpanError {
            text: text.to_string(),
        };
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(err());
        }
        let value: f64 = num.parse().map_err(|_| err())?;
        let scale_us = match unit.trim() {
            "us" | "µs" => 1.0,
            "ms" => 1e3,
            "s" => 1e6,
            "m" | "min" => 60e6,
            "h" => 3600e6,
            _ => return Err(err()),
        };
        let us = (value * scale_us).round();
        if !us.is_finite() || !(0.0..=1e15).contains(&us) {
            return Err(err());
        }
        Ok(Span::from_micros(us as u64))
    }
}

impl fmt::Display for Span {
    /// The shortest exact form: "40ms", "1s", "1500us".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.as_micros();
        if us == 0 {
            write!(f, "0ms")
        } else if us.is_multiple_of(1_000_000) {
            write!(f, "{}s", us / 1_000_000)
        } else if us.is_multiple_of(1_000) {
            write!(f, "{}ms", us / 1_000)
        } else {
            write!(f, "{us}us")
        }
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a duration as text, like \"40ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!("40ms".parse::<Span>().unwrap(), Span::from_millis(40));
        assert_eq!("1.5s".parse::<Span>().unwrap(), Span::from_millis(1500));
        assert_eq!("500us".parse::<Span>().unwrap(), Span::from_micros(500));
        assert_eq!("2m".parse::<Span>().unwrap(), Span::from_millis(120_000));
        assert_eq!(" 0ms ".parse::<Span>().unwrap(), Span::from_micros(0));
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        for bad in ["40", "ms", "", "4x", "-1s", "1.2.3s", "1e3s"] {
            assert!(bad.parse::<Span>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn displays_shortest_exact_form_and_round_trips() {
        for (us, text) in [
            (40_000, "40ms"),
            (1_000_000, "1s"),
            (1_500, "1500us"),
            (0, "0ms"),
        ] {
            let s = Span::from_micros(us);
            assert_eq!(s.to_string(), text);
            assert_eq!(text.parse::<Span>().unwrap(), s);
        }
    }
}
