//! `compare --format`: a comparison as a table, one row per configuration and metric,
//! with the lines `compare` says around it (machine notes, regressions) as notes.

use super::{Cell, Table};
use crate::report::compare::Comparison;

/// The comparison's rows; `title` says what was compared, `notes` go after the table.
pub fn table(c: &Comparison, title: String, notes: Vec<String>) -> Table {
    let mut t = Table::new(
        title,
        &[
            "config",
            "metric",
            "worse_when",
            "base_median",
            "new_median",
            "change",
            "change_pct",
            "ci_low",
            "ci_high",
            "p",
            "verdict",
        ],
    );
    for ch in &c.changes {
        t.push(vec![
            ch.config.clone().into(),
            ch.metric.clone().into(),
            ch.direction.name().into(),
            Cell::num(ch.base_median, 4),
            Cell::num(ch.new_median, 4),
            Cell::num(ch.change, 4),
            Cell::opt(ch.relative.map(|r| r * 100.0), 1),
            Cell::opt(ch.ci.map(|x| x.0), 4),
            Cell::opt(ch.ci.map(|x| x.1), 4),
            Cell::opt(ch.p, 3),
            ch.verdict.into(),
        ]);
    }
    t.notes = notes;
    let mut why: Vec<String> = c
        .changes
        .iter()
        .map(|ch| ch.note.clone())
        .filter(|n| !n.is_empty())
        .collect();
    why.dedup();
    t.notes.extend(why);
    t.notes.extend(c.notes.iter().cloned());
    t.notes.extend(
        c.only_base
            .iter()
            .map(|k| format!("{k}: in the base only, not compared")),
    );
    t.notes.extend(
        c.only_new
            .iter()
            .map(|k| format!("{k}: in the new result only, not compared")),
    );
    t
}
