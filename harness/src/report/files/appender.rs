//! Appending rows to a file as they come, in bounded memory: rows gather in a buffer of
//! fixed size, which goes to the file when full or when flushed (at least once a second,
//! by the caller), so a run killed even by SIGKILL keeps all but its last second. The
//! file can be cut back to where the current run began (`rollback`), so a run that
//! fails to write (a full disk) leaves the runs before it whole.

use crate::report::folder::ResultsError;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Buffered bytes that make a write: large enough to write rarely, small enough that a
/// tick's rows never allocate.
const BUFFER: usize = 256 * 1024;

pub struct Appender {
    pub(crate) path: PathBuf,
    file: File,
    /// Length up to the end of the last run fully written.
    pub(crate) committed: u64,
    /// Bytes written after `committed`.
    written: u64,
    buf: Vec<u8>,
}

impl Appender {
    /// Create (truncate) `path`.
    pub fn create(path: &Path) -> Result<Appender, ResultsError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(ResultsError::io(path))?;
        Ok(Appender {
            path: path.to_path_buf(),
            file,
            committed: 0,
            written: 0,
            buf: Vec::with_capacity(BUFFER),
        })
    }

    /// Where the current run's rows begin in the file.
    pub fn run_start(&self) -> u64 {
        self.committed
    }

    /// Append one row: `write` puts its bytes (with the newline) into the buffer. If the
    /// buffer could not take a large row it is written out first; nothing allocates
    /// unless one row is larger than the whole buffer.
    pub fn row(&mut self, write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<()> {
        if self.buf.len() > BUFFER - 4096 {
            self.flush()?;
        }
        write(&mut self.buf)
    }

    /// Write the buffer to the file (no sync).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&self.buf, self.committed + self.written)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Flush and sync: the run's rows are on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        self.file.sync_data()
    }

    /// The current run is whole: later rollbacks keep it.
    pub fn commit(&mut self) {
        self.committed += self.written;
        self.written = 0;
    }

    /// Forget the current run: the file goes back to the end of the last committed run.
    pub fn rollback(&mut self) {
        self.buf.clear();
        if self.written > 0 {
            let _ = self.file.set_len(self.committed);
            self.written = 0;
        }
    }

    /// A reader of the file from `offset`, for reading the current run back.
    pub fn reader_from(&self, offset: u64) -> io::Result<File> {
        use std::io::{Seek, SeekFrom};
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(f)
    }

    /// The error of a failed write, naming the file.
    pub fn error(&self, e: io::Error) -> ResultsError {
        ResultsError::io(&self.path)(e)
    }
}

/// Write `s` as a CSV field (quoted when it holds a comma, a quote or a line break).
pub fn field(buf: &mut Vec<u8>, s: &str) -> io::Result<()> {
    if s.contains([',', '"', '\n', '\r']) {
        buf.push(b'"');
        for c in s.bytes() {
            if c == b'"' {
                buf.push(b'"');
            }
            buf.push(c);
        }
        buf.push(b'"');
        Ok(())
    } else {
        buf.write_all(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_reach_the_file_on_flush_and_a_rollback_cuts_the_run_back() {
        let d = std::env::temp_dir().join(format!("tb-appender-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("t.csv");
        let mut a = Appender::create(&p).unwrap();
        a.row(|b| b.write_all(b"h\n")).unwrap();
        a.flush().unwrap();
        a.commit();
        a.row(|b| b.write_all(b"run 1\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "h\n", "buffered");
        a.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "h\nrun 1\n");
        a.rollback();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "h\n");
        let mut q = Vec::new();
        field(&mut q, "a,\"b\"").unwrap();
        assert_eq!(q, b"\"a,\"\"b\"\"\"");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
