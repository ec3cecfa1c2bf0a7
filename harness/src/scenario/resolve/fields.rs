//! Checks that several tables share: fields that do not apply to a kind, CPU lists
//! against the allowed CPUs, durations that must be longer than 0.

use crate::scenario::duration::Span;
use crate::scenario::ScenarioError;
use fibtest::cpulist::CpuList;

/// Reject the fields written in a table that do not apply to its `kind`.
pub(super) fn reject_unused(
    source: &str,
    section: &str,
    kind: &str,
    present: &[(&str, bool)],
    applies: &[&str],
) -> Result<(), ScenarioError> {
    match present
        .iter()
        .find(|(name, there)| *there && !applies.contains(name))
    {
        Some((name, _)) => Err(ScenarioError::field(
            source,
            &format!("{section}.{name}"),
            format!("does not apply to {section}.kind = \"{kind}\""),
        )),
        None => Ok(()),
    }
}

pub(super) fn cpus_field(
    source: &str,
    field: &str,
    text: &str,
    allowed: &CpuList,
) -> Result<CpuList, ScenarioError> {
    let list: CpuList = text
        .parse()
        .map_err(|e| ScenarioError::field(source, field, format!("{e}")))?;
    if let Some(cpu) = list.iter().find(|c| !allowed.contains(*c)) {
        return Err(ScenarioError::field(
            source,
            field,
            format!("CPU {cpu} is not one this process may use (allowed: {allowed})"),
        ));
    }
    Ok(list)
}

pub(super) fn positive(source: &str, field: &str, v: Span) -> Result<Span, ScenarioError> {
    if v.is_zero() {
        Err(ScenarioError::field(source, field, "must be longer than 0"))
    } else {
        Ok(v)
    }
}
