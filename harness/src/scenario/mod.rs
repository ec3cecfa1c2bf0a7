//! Scenarios: the TOML schema (`schema`), durations as text (`duration`), the `Plan` of
//! runs (`plan`) and resolving a scenario into one (`resolve`), and external limiters'
//! command templates (`template`). Errors name the file, line and field.

pub mod duration;
pub mod plan;
pub mod requires;
pub mod resolve;
pub mod schema;
pub mod show;
pub mod template;

pub use duration::{Quota, Span};
pub use plan::{
    CfsLimit, Limiter, LoadPlan, PeriodPhase, Placement, Plan, PlannedRun, ServeProtocol, Workload,
};
pub use resolve::resolve;
pub use schema::Scenario;

use std::fmt;
use std::path::Path;

/// A scenario that cannot be run, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file, or "built-in".
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted field name (`limiter.quota`), when known.
    pub field: Option<String>,
    pub message: String,
}

impl ScenarioError {
    pub fn field(file: &str, field: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: file.to_string(),
            line: None,
            field: Some(field.to_string()),
            message: message.into(),
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// The scenario `throttlebench run` uses when given none: a short form of Indeed's
/// conceptual model (0.4 CPU, requests of 200 ms CPU), about 5 s long.
pub const BUILTIN_DEFAULT: &str = r#"
name = "default"
description = "Short form of the conceptual model of Indeed's \"Unthrottled: Fixing CPU Limits in the Cloud\" [Unthrottled]: requests of 200 ms CPU under a 40 ms / 100 ms CFS quota, each starting at a period boundary. Each should take about 440 ms and spend 4 periods (240 ms) throttled."
sample_interval = "10ms"

[limiter]
kind = "cfs"
quota = "40ms"
period = "100ms"

[workload]
kind = "requests"
work = "200ms"
count = 5
interval = "1s"
phase = "0ms"
"#;

/// Parse scenario text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    let scenario: Scenario = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let mut message = e.message().trim().to_string();
        if message.starts_with("invalid basic string") {
            message.push_str(
                ": a \"...\" string must close on its own line (use ''' for text over several lines)",
            );
        }
        // The field: the one toml names (unknown fields), else the key written on the line,
        // with the table it is in.
        let at = line.and_then(|l| field_at_line(text, l));
        let field = match (unknown_field_name(&message), &at) {
            (Some(u), Some(a)) if a.ends_with(&u) => Some(a.clone()),
            (Some(u), _) => Some(u),
            (None, a) => a.clone(),
        };
        ScenarioError {
            file: file.to_string(),
            line,
            field,
            message,
        }
    })?;
    Ok(scenario)
}

/// Read and parse a scenario file; errors found later (when resolving) get their line
/// added by `locate`.
pub fn load(path: &Path) -> Result<(Scenario, String), ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: file.clone(),
        line: None,
        field: None,
        message: format!("cannot read: {e}"),
    })?;
    Ok((parse(&text, &file)?, text))
}

/// Adds the line where `err.field` is written in `text`, when it is written there.
pub fn locate(mut err: ScenarioError, text: &str) -> ScenarioError {
    if err.line.is_some() {
        return err;
    }
    // A key of an inline table (`group.limit.millicores` in `limit = { ... }`): the
    // line of the table's own key, when the key itself is on none.
    let mut field = err.field.clone();
    while let Some(f) = field {
        err.line = find_field_line(text, &f);
        if err.line.is_some() || f.contains('"') {
            break;
        }
        field = f.rsplit_once('.').map(|(head, _)| head.to_string());
    }
    err
}

/// The line of `section.key` (or a top-level `key`) in TOML text: a small scan that
/// follows `[section]` headers, enough for the flat tables of a scenario.
fn find_field_line(text: &str, field: &str) -> Option<usize> {
    // `sweep."limiter.quota"`: the key is quoted and holds dots itself.
    let (section, key) = match field.split_once(".\"") {
        Some((s, _)) => (s, &field[s.len() + 1..]),
        None => match field.rsplit_once('.') {
            Some((s, k)) if !s.contains('"') => (s, k),
            _ => ("", field),
        },
    };
    let key = key.trim_matches('"');
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            if !section.is_empty() && current == section && key.is_empty() {
                return Some(i + 1);
            }
            continue;
        }
        if current == section {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    return Some(i + 1);
                }
            }
        }
    }
    // The section itself, when the field is missing from it.
    if !section.is_empty() {
        for (i, line) in text.lines().enumerate() {
            if line.trim() == format!("[{section}]") {
                return Some(i + 1);
            }
        }
    }
    None
}

/// The dotted name of the key written on line `line` (1-based) of a TOML text, with the
/// table header above it: `limiter.quota` for `quota = ...` under `[limiter]`.
pub fn field_at_line(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            table = t
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
        }
        if i + 1 == line {
            if t.starts_with('[') {
                return (!table.is_empty()).then_some(table);
            }
            let raw = t.split('=').next()?.trim();
            let bare = raw.trim_matches('"');
            // A quoted key with dots in it stays quoted: `sweep."limiter.quota"`.
            let key = if bare.contains('.') { raw } else { bare };
            if key.is_empty() || !t.contains('=') || t.starts_with('#') {
                return None;
            }
            return Some(if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            });
        }
    }
    None
}

fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    Some(rest.split('`').next()?.to_string())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tree_tests;
