//! Reading and writing single-value cgroup files, with the path in every error.

use super::CgroupError;
use std::fs;
use std::io::Write;
use std::path::Path;

/// Read a file and trim surrounding whitespace.
pub fn read_trimmed(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| CgroupError::io(path, e))
}

/// Write `value` to a cgroup file in one write(2), as the kernel expects. The file is
/// created if missing, which only happens in a fake cgroup root (tests).
pub fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| CgroupError::io(path, e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| CgroupError::io(path, e))
}
