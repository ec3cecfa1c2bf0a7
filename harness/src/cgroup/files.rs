//! Reading and writing single-value cgroup files, with the path in every error, and the
//! two settings a new folder may need before use (v2 controllers, v1 cpuset).

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

/// v2: enable controllers for the children of `dir` (cgroup.subtree_control), writing
/// only those not enabled yet.
pub(super) fn enable_controllers(dir: &Path, controllers: &[&str]) -> Result<(), CgroupError> {
    let f = dir.join("cgroup.subtree_control");
    let now = read_trimmed(&f).unwrap_or_default();
    for c in controllers {
        if !now.split_whitespace().any(|x| x == *c) {
            write_file(&f, &format!("+{c}"))?;
        }
    }
    Ok(())
}

/// v1 cpuset: copy cpuset.cpus and cpuset.mems from the parent folder when empty.
pub(super) fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let parent = dir.parent().expect("a cgroup folder has a parent");
    for f in ["cpuset.cpus", "cpuset.mems"] {
        if read_trimmed(&dir.join(f)).unwrap_or_default().is_empty() {
            let v = read_trimmed(&parent.join(f))?;
            write_file(&dir.join(f), &v)?;
        }
    }
    Ok(())
}
