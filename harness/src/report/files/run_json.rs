//! run.json: the host, the resolved plan, whether every run is in, and each run's summary
//! rows and raw result. Rewritten whole, atomically (written beside, then renamed).

use crate::report::folder::ResultsError;
use crate::report::summary::SummaryRow;
use crate::result::RunResult;
use crate::sample::Host;
use crate::scenario::Plan;
use serde::Serialize;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Version of the result folder layout; bumped when a column or field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
pub struct RunJson<'a> {
    pub schema_version: u32,
    pub tool: &'static str,
    pub tool_version: &'static str,
    /// UTC, ISO 8601.
    pub created: &'a str,
    /// False until every planned run has been written.
    pub complete: bool,
    pub host: &'a Host,
    pub plan: &'a Plan,
    pub runs: Vec<RunJsonEntry<'a>>,
}

#[derive(Serialize)]
pub struct RunJsonEntry<'a> {
    /// One row per group.
    pub summary: &'a [SummaryRow],
    pub result: &'a RunResult,
}

/// Write `doc` as dir/run.json: to run.json.tmp, synced, then renamed into place, so a
/// failure (a full disk) leaves the previous run.json whole; the error names run.json.
pub fn write(dir: &Path, doc: &RunJson) -> Result<(), ResultsError> {
    let path = dir.join("run.json");
    let tmp = dir.join("run.json.tmp");
    let written = (|| -> io::Result<()> {
        let mut w = BufWriter::new(File::create(&tmp)?);
        serde_json::to_writer_pretty(&mut w, doc)?;
        w.write_all(b"\n")?;
        w.into_inner().map_err(|e| e.into_error())?.sync_data()?;
        fs::rename(&tmp, &path)
    })();
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        ResultsError::io(&path)(e)
    })
}
