//! A `[sweep]` table: the scenario once per combination of swept values.

use super::check_scenario;
use crate::scenario::schema::Scenario;
use crate::scenario::ScenarioError;

/// The scenario once per sweep combination, with each swept value set, and the values as
/// text. Sweep values are applied to the file's TOML and deserialized again, so a bad value
/// gets the same checks as a value written in place.
/// Swept fields and their values as text.
type Params = Vec<(String, String)>;

pub(super) fn expand_sweep(
    s: &Scenario,
    source: &str,
) -> Result<Vec<(Params, Scenario)>, ScenarioError> {
    let base = toml::Value::try_from(Scenario {
        sweep: Default::default(),
        ..s.clone()
    })
    .map_err(|e| ScenarioError::field(source, "sweep", e.to_string()))?;
    let mut combos: Vec<(Params, toml::Value)> = vec![(Vec::new(), base)];
    for (key, values) in &s.sweep {
        let field = format!("sweep.\"{key}\"");
        let path: Vec<&str> = key.split('.').collect();
        let settable = matches!(
            path.as_slice(),
            ["limiter" | "workload" | "load", _]
                | ["limiter" | "workload" | "sample_interval"]
                | ["group", _, _, ..]
        );
        if !settable {
            return Err(ScenarioError::field(
                source,
                &field,
                "a swept field is `limiter.<field>`, `workload.<field>`, `load.<field>`, `group.<name>.<field>`, a whole `limiter` or `workload` table, or `sample_interval`",
            ));
        }
        if let ["group", name, ..] = path.as_slice() {
            if !s.groups.iter().any(|g| g.name == *name) {
                return Err(ScenarioError::field(
                    source,
                    &field,
                    format!("no group `{name}` to sweep a field of"),
                ));
            }
        }
        if values.is_empty() {
            return Err(ScenarioError::field(
                source,
                &field,
                "needs at least one value",
            ));
        }
        let mut next = Vec::new();
        for (params, value) in &combos {
            for v in values {
                let mut value = value.clone();
                set_path(&mut value, &path, v.clone());
                let mut params = params.clone();
                params.push((key.clone(), value_text(v)));
                next.push((params, value));
            }
        }
        combos = next;
    }
    combos
        .into_iter()
        .map(|(params, value)| {
            let text = params
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sc: Scenario = value.try_into().map_err(|e: toml::de::Error| {
                ScenarioError::field(
                    source,
                    "sweep",
                    format!("with {text}: {}", e.message().trim()),
                )
            })?;
            check_scenario(&sc, source)?;
            Ok((params, sc))
        })
        .collect()
}

fn set_path(v: &mut toml::Value, path: &[&str], new: toml::Value) {
    // `group.<name>.<field>`: the `[[group]]` of that name.
    if let ["group", name, rest @ ..] = path {
        if let Some(groups) = v.get_mut("group").and_then(|g| g.as_array_mut()) {
            for g in groups.iter_mut() {
                if g.get("name").and_then(|n| n.as_str()) == Some(*name) {
                    set_path(g, rest, new);
                    return;
                }
            }
        }
        return;
    }
    let table = v.as_table_mut().expect("a scenario serializes to a table");
    match path {
        [leaf] => {
            table.insert(leaf.to_string(), new);
        }
        [head, rest @ ..] => {
            let child = table
                .entry(head.to_string())
                .or_insert_with(|| toml::Value::Table(Default::default()));
            set_path(child, rest, new);
        }
        [] => {}
    }
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        // A whole table: its fields as `k=v` joined by spaces ("kind=cfs quota=40ms").
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}
