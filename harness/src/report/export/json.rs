//! JSON: an object per table (`title`, `rows` as objects keyed by column, `notes`);
//! numbers as numbers, no value as null.

use super::{Cell, Table};
use serde_json::{json, Map, Value};

pub fn render(tables: &[Table]) -> String {
    let v: Vec<Value> = tables
        .iter()
        .map(|t| {
            let rows: Vec<Value> = t
                .rows
                .iter()
                .map(|r| {
                    let mut m = Map::new();
                    for (c, cell) in t.columns.iter().zip(r) {
                        let v = match cell {
                            Cell::Text(s) => Value::String(s.clone()),
                            Cell::Num { v, .. } => json!(v),
                            Cell::Empty => Value::Null,
                        };
                        m.insert(c.clone(), v);
                    }
                    Value::Object(m)
                })
                .collect();
            json!({ "title": t.title, "rows": rows, "notes": t.notes })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}
