//! One file per output format of a result folder, each turning a run's data into its
//! rows: `timeseries` (timeseries.csv), `latency` (latency.csv), `duty` (duty.csv),
//! `episodes` (a watch's episodes.csv), `probes` (the probes' tables), `run_json`
//! (run.json); summary.csv's row is `report::summary`. `csv_file` appends a run's rows
//! all or nothing.

pub mod appender;
pub(crate) mod csv_file;
pub mod duty;
pub mod episodes;
pub mod latency;
pub mod probes;
pub mod run_json;
pub mod timeseries;

/// The columns of `columns` that docs/metrics.md's section on `file` (its `## file`
/// heading up to the next) does not name: for each file's test that its columns are
/// documented.
#[cfg(test)]
pub(crate) fn undocumented(file: &str, columns: &[&'static str]) -> Vec<&'static str> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
        .expect("docs/metrics.md");
    let at = doc
        .find(&format!("## {file}"))
        .unwrap_or_else(|| panic!("no {file} section in docs/metrics.md"));
    let section = &doc[at..doc[at + 3..]
        .find("\n## ")
        .map_or(doc.len(), |e| at + 3 + e)];
    columns
        .iter()
        .copied()
        .filter(|c| !section.contains(&format!("`{c}`")) && !section.contains(*c))
        .collect()
}
