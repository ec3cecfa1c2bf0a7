//! Markdown (GitHub's tables): what a CI job summary or a pull-request comment shows.
//! Each table under a `###` heading; `|` in a cell escaped.

use super::{Cell, Table};
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(tables: &[Table]) -> String {
    let mut out = String::new();
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if !t.title.is_empty() {
            let _ = writeln!(out, "### {}\n", esc(&t.title));
        }
        let head: Vec<String> = t.columns.iter().map(|c| esc(c)).collect();
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let align: Vec<&str> = (0..t.columns.len())
            .map(|c| {
                if t.rows.iter().any(|r| matches!(r[c], Cell::Num { .. })) {
                    "---:"
                } else {
                    "---"
                }
            })
            .collect();
        let _ = writeln!(out, "| {} |", align.join(" | "));
        for r in &t.rows {
            let cells: Vec<String> = r.iter().map(|c| esc(&c.shown())).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        if !t.notes.is_empty() {
            out.push('\n');
            for n in &t.notes {
                let _ = writeln!(out, "- {}", esc(n));
            }
        }
    }
    out
}
