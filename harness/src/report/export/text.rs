//! Aligned columns for a terminal: the title, a header, numbers right-aligned.

use super::{Cell, Table};
use std::fmt::Write;

pub fn render(tables: &[Table]) -> String {
    let mut out = String::new();
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if !t.title.is_empty() {
            let _ = writeln!(out, "{}", t.title);
        }
        let cells: Vec<Vec<String>> = t
            .rows
            .iter()
            .map(|r| r.iter().map(Cell::shown).collect())
            .collect();
        let width: Vec<usize> = (0..t.columns.len())
            .map(|c| {
                cells
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([t.columns[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let right = |c: usize| t.rows.iter().any(|r| matches!(r[c], Cell::Num { .. }));
        let line = |vals: &[String]| {
            let parts: Vec<String> = vals
                .iter()
                .enumerate()
                .map(|(c, v)| {
                    if right(c) {
                        format!("{v:>w$}", w = width[c])
                    } else {
                        format!("{v:<w$}", w = width[c])
                    }
                })
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&t.columns));
        for r in &cells {
            let _ = writeln!(out, "{}", line(r));
        }
        for n in &t.notes {
            let _ = writeln!(out, "note: {n}");
        }
    }
    out
}
