//! Parsing an expectation's text (the grammar is in the module doc of `expect`).

use super::{err, Aggregate, Condition, ExpectError, Expectation, Op};

/// A tiny cursor over the expression text.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
    }
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }
    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.text[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }
    /// A column name: letters, digits, `_`, `.`, `-`.
    fn name(&mut self) -> &'a str {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        &self.text[start..self.pos]
    }
}

fn parse_conditions(
    cur: &mut Cursor,
    whole: &str,
    end: Option<char>,
) -> Result<Vec<Condition>, ExpectError> {
    let mut conds = Vec::new();
    loop {
        let column = cur.name().to_string();
        if column.is_empty() {
            return Err(err(
                whole,
                "expected a column name in the selection, like [param_limiter.quota=40ms]",
            ));
        }
        let equal = if cur.eat("!=") {
            false
        } else if cur.eat("==") || cur.eat("=") {
            true
        } else {
            return Err(err(
                whole,
                format!("expected `=` or `!=` after `{column}` in the selection"),
            ));
        };
        cur.skip_ws();
        let value = if cur.eat("\"") {
            let rest = cur.rest();
            let Some(close) = rest.find('"') else {
                return Err(err(whole, "unclosed quote in the selection"));
            };
            cur.pos += close + 1;
            rest[..close].to_string()
        } else {
            let rest = cur.rest();
            let stop = rest
                .find(|c: char| c == ',' || Some(c) == end)
                .unwrap_or(rest.len());
            cur.pos += stop;
            rest[..stop].trim().to_string()
        };
        conds.push(Condition {
            column,
            equal,
            value,
        });
        if !cur.eat(",") {
            return Ok(conds);
        }
    }
}

/// Parse a selection for `--where`: `param_limiter.quota=40ms,group=site1` (brackets optional).
pub fn parse_selection(text: &str) -> Result<Vec<Condition>, ExpectError> {
    let mut cur = Cursor { text, pos: 0 };
    let bracket = cur.eat("[");
    let conds = parse_conditions(&mut cur, text, bracket.then_some(']'))?;
    if bracket && !cur.eat("]") {
        return Err(err(text, "expected `]` after the selection"));
    }
    cur.skip_ws();
    if !cur.rest().is_empty() {
        return Err(err(
            text,
            format!("unexpected `{}` after the selection", cur.rest()),
        ));
    }
    Ok(conds)
}

fn parse_aggregate(word: &str) -> Option<Aggregate> {
    let level = |digits: &str| -> Option<f64> {
        let v: f64 = digits.parse().ok()?;
        (v > 0.0 && v < 100.0).then_some(v / 100.0)
    };
    Some(match word {
        "every" | "all" => Aggregate::Every,
        "median" => Aggregate::Median,
        "mean" => Aggregate::Mean,
        "min" => Aggregate::Min,
        "max" => Aggregate::Max,
        _ => {
            if let Some(d) = word.strip_prefix("upper") {
                Aggregate::Upper(level(d)?)
            } else if let Some(d) = word.strip_prefix("lower") {
                Aggregate::Lower(level(d)?)
            } else if let Some(d) = word.strip_prefix('p') {
                let p: f64 = d.parse().ok()?;
                if !(p > 0.0 && p <= 100.0) {
                    return None;
                }
                Aggregate::Percentile(p)
            } else {
                return None;
            }
        }
    })
}

/// Parse one expectation (see the module doc for the syntax).
pub fn parse(text: &str) -> Result<Expectation, ExpectError> {
    let mut cur = Cursor { text, pos: 0 };
    let select = if cur.eat("[") {
        let c = parse_conditions(&mut cur, text, Some(']'))?;
        if !cur.eat("]") {
            return Err(err(text, "expected `]` after the selection"));
        }
        c
    } else {
        Vec::new()
    };
    let first = cur.name().to_string();
    if first.is_empty() {
        return Err(err(
            text,
            "expected a column name, like `throttled_pct < 20`",
        ));
    }
    let (aggregate, column) = if cur.eat("(") {
        let Some(a) = parse_aggregate(&first) else {
            return Err(err(
                text,
                format!("unknown aggregate `{first}`: use every, median, mean, min, max, pNN (p90), upperNN or lowerNN (upper95)"),
            ));
        };
        let column = cur.name().to_string();
        if column.is_empty() || !cur.eat(")") {
            return Err(err(text, format!("expected `{first}(column)`")));
        }
        (a, column)
    } else {
        (Aggregate::Every, first)
    };
    let op = if cur.eat("<=") {
        Op::Le
    } else if cur.eat(">=") {
        Op::Ge
    } else if cur.eat("==") {
        Op::Eq
    } else if cur.eat("!=") {
        Op::Ne
    } else if cur.eat("<") {
        Op::Lt
    } else if cur.eat(">") {
        Op::Gt
    } else if cur.eat("=") {
        return Err(err(text, "use `==` to compare for equality"));
    } else {
        return Err(err(
            text,
            format!("expected <, <=, >, >=, == or != after `{column}`"),
        ));
    };
    cur.skip_ws();
    let number_text = cur.rest().trim();
    if number_text.is_empty() {
        return Err(err(text, "expected a number after the comparison"));
    }
    let limit = parse_limit(number_text, &column).map_err(|m| err(text, m))?;
    let unit_given = number_text
        .trim_end()
        .ends_with(|c: char| c.is_alphabetic() || c == '%');
    Ok(Expectation {
        name: None,
        text: text.trim().to_string(),
        select,
        aggregate,
        column,
        op,
        limit,
        unit_given,
    })
}

/// A limit with an optional unit, in the column's unit.
fn parse_limit(s: &str, column: &str) -> Result<f64, String> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(s.len());
    // `1e3ms` reads as 1e3 ms; but a lone trailing `e` belongs to no number.
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a number (with an optional unit: 50ms, 20%)"))?;
    let unit = unit.trim();
    let scale = match unit {
        "" => 1.0,
        "%" if column.ends_with("_pct") => 1.0,
        "%" => {
            return Err(format!(
                "`%` only goes with a column ending in _pct, not `{column}`"
            ))
        }
        "s" | "ms" | "us" | "µs" | "ns"
            if !column.ends_with("_s") || column.ends_with("_per_s") =>
        {
            return Err(format!(
                "a time unit only goes with a column in seconds (ending in _s), not `{column}`{}",
                if column.ends_with("_per_s") {
                    String::new()
                } else {
                    format!(" (did you mean `{column}_s`?)")
                }
            ))
        }
        "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        other => return Err(format!("unknown unit `{other}` (s, ms, us, ns, %)")),
    };
    Ok(v * scale)
}

/// Parse the expectations of a scenario's `[expect]` table (name → expression).
pub fn parse_named(table: &[(String, String)]) -> Result<Vec<Expectation>, (String, ExpectError)> {
    table
        .iter()
        .map(|(name, text)| {
            parse(text)
                .map(|mut e| {
                    e.name = Some(name.clone());
                    e
                })
                .map_err(|e| (name.clone(), e))
        })
        .collect()
}
