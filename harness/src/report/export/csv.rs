//! CSV: one table, a header and full-precision numbers, empty cells for no value.

use super::{Cell, Table};

pub fn render(table: Option<&Table>) -> String {
    let Some(t) = table else {
        return String::new();
    };
    let mut w = ::csv::Writer::from_writer(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = w.write_record(&t.columns);
    for r in &t.rows {
        let _ = w.write_record(r.iter().map(Cell::exact));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}
