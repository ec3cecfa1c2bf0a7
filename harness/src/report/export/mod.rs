//! Tables for people and scripts, in four formats (`--format` of `report` and
//! `compare`): aligned text for a terminal, CSV, JSON, and Markdown for a CI job summary
//! or a pull-request comment. A command builds its tables once (`Table`, cells as text
//! with numbers kept as numbers) and each format is a file here that renders them.

pub mod comparison;
mod csv;
mod json;
mod markdown;
mod text;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Csv,
    Json,
    Markdown,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s.trim() {
            "text" => Ok(Format::Text),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "markdown" | "md" => Ok(Format::Markdown),
            other => Err(format!(
                "unknown format `{other}` (text, csv, json, markdown)"
            )),
        }
    }
}

/// One cell: text as given, or a number (written in full in CSV and JSON, with
/// `digits` decimals in text and Markdown); `Empty` where nothing applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Num { v: f64, digits: usize },
    Empty,
}

impl Cell {
    /// A number shown with `digits` decimals.
    pub fn num(v: f64, digits: usize) -> Cell {
        if v.is_finite() {
            Cell::Num { v, digits }
        } else {
            Cell::Empty
        }
    }

    /// A number, or empty.
    pub fn opt(v: Option<f64>, digits: usize) -> Cell {
        v.map_or(Cell::Empty, |v| Cell::num(v, digits))
    }

    /// How a person reads it.
    pub fn shown(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num { v, digits } => format!("{v:.digits$}"),
            Cell::Empty => "-".into(),
        }
    }

    /// How a program reads it (full precision; empty for no value).
    pub fn exact(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num { v, .. } => v.to_string(),
            Cell::Empty => String::new(),
        }
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}

/// A titled table; `notes` are lines said after it (text, Markdown) or kept beside it
/// (JSON), not in CSV.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Table {
        Table {
            title: title.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Add a row (as many cells as columns; missing ones are empty).
    pub fn push(&mut self, mut row: Vec<Cell>) {
        row.resize(self.columns.len(), Cell::Empty);
        self.rows.push(row);
    }
}

/// Render `tables` in `format`. CSV holds the first table only (one header, rows that
/// a CSV reader takes); the others are for the formats that can hold several.
pub fn render(tables: &[Table], format: Format) -> String {
    match format {
        Format::Text => text::render(tables),
        Format::Csv => csv::render(tables.first()),
        Format::Json => json::render(tables),
        Format::Markdown => markdown::render(tables),
    }
}

#[cfg(test)]
mod tests;
