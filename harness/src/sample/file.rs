//! A kernel file read again and again through one open handle and one buffer (pread at
//! offset 0), so a sampler tick costs a syscall and a parse but no open or allocation.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub struct RereadFile {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
}

impl RereadFile {
    /// Open `path`; `capacity` bounds what one read returns (the file's whole content
    /// must fit, so give room: cgroup stat files are a few hundred bytes).
    pub fn open(path: &Path, capacity: usize) -> io::Result<RereadFile> {
        Ok(RereadFile {
            path: path.to_path_buf(),
            file: File::open(path)?,
            buf: vec![0; capacity],
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's current content.
    pub fn read(&mut self) -> io::Result<&str> {
        let mut n = 0;
        loop {
            let got = self.file.read_at(&mut self.buf[n..], n as u64)?;
            if got == 0 {
                break;
            }
            n += got;
            if n == self.buf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is larger than its {} byte buffer",
                        self.path.display(),
                        n
                    ),
                ));
            }
        }
        std::str::from_utf8(&self.buf[..n])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// Parse a decimal u64 from text with surrounding whitespace.
pub fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}
