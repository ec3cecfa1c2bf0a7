//! Appending to a CSV file run by run, all or nothing: a run's rows are collected in
//! memory, written at once and synced; if that fails the file is cut back to the end of
//! the previous run, so a full disk never leaves half a row.

use crate::report::folder::ResultsError;
use std::fs::File;
use std::path::PathBuf;

/// One CSV file, written run by run: a run's rows are collected in memory, then written
/// at once; if that fails the file is cut back to the end of the previous run, so a
/// full disk never leaves half a row.
pub(crate) struct CsvFile {
    pub(crate) path: PathBuf,
    file: File,
    /// Length up to the end of the last run fully written.
    pub(crate) committed: u64,
    /// Bytes written after `committed`, not yet committed.
    written: u64,
    pending: Vec<u8>,
}

impl CsvFile {
    pub(crate) fn create(path: PathBuf) -> Result<CsvFile, ResultsError> {
        let file = File::create(&path).map_err(ResultsError::io(&path))?;
        Ok(CsvFile {
            path,
            file,
            committed: 0,
            written: 0,
            pending: Vec::new(),
        })
    }

    /// Add rows to the pending bytes through a CSV writer; `headers`: write the
    /// serialized type's header before the first row if the file is still empty.
    pub(crate) fn add(
        &mut self,
        headers: bool,
        rows: impl FnOnce(&mut csv::Writer<&mut Vec<u8>>) -> csv::Result<()>,
    ) -> Result<(), ResultsError> {
        let empty = self.committed == 0 && self.written == 0 && self.pending.is_empty();
        let mut w = csv::WriterBuilder::new()
            .has_headers(headers && empty)
            .from_writer(&mut self.pending);
        let r = rows(&mut w).and_then(|_| w.flush().map_err(csv::Error::from));
        drop(w);
        r.map_err(|e| ResultsError::Io {
            path: self.path.clone(),
            error: e.into(),
        })
    }

    /// Write the pending bytes to the file and to disk.
    pub(crate) fn write(&mut self) -> Result<(), ResultsError> {
        use std::os::unix::fs::FileExt;
        let at = self.committed + self.written;
        self.file
            .write_all_at(&self.pending, at)
            .and_then(|_| self.file.sync_data())
            .map_err(ResultsError::io(&self.path))?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    pub(crate) fn commit(&mut self) {
        self.committed += self.written;
        self.written = 0;
    }

    /// Forget what was written since the last commit.
    pub(crate) fn rollback(&mut self) {
        self.pending.clear();
        if self.written > 0 {
            let _ = self.file.set_len(self.committed);
            self.written = 0;
        }
    }
}
