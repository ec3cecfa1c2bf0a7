//! Advisory locks between throttlebench processes: flock(2) on files in a lock folder
//! (/run/throttlebench, or a per-user folder under the temp folder when that cannot be
//! made). A lock goes with its open file, so it is released when its holder ends in any
//! way, SIGKILL included; the files themselves stay (removing a lock file races with a
//! process about to lock it).
//!
//! Two locks exist: `cgroup.lock`, held for the few system calls that make or remove the
//! shared `throttlebench` parent cgroups, and `knob-<name>.lock`, for a run that changes a
//! global kernel setting (`knob`; no run changes one today).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The shared lock folder, made if missing.
pub const LOCK_DIR: &str = "/run/throttlebench";

/// The folder for lock files: /run/throttlebench, or (without the right to make it) a
/// folder of this user's under the temp folder.
pub fn lock_dir() -> io::Result<PathBuf> {
    let shared = PathBuf::from(LOCK_DIR);
    if std::fs::create_dir_all(&shared).is_ok() && access_rw(&shared) {
        return Ok(shared);
    }
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let own = std::env::temp_dir().join(format!("throttlebench-{uid}"));
    std::fs::create_dir_all(&own)?;
    Ok(own)
}

fn access_rw(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) on a NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK | libc::X_OK) == 0 }
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Take the lock on `path` (made if missing) if no one holds it: None if another
    /// holder (another process, or another open file of this one) has it.
    pub fn try_lock(path: &Path) -> io::Result<Option<FileLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)?;
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(e)
            };
        }
        let mut lock = FileLock {
            file,
            path: path.to_path_buf(),
        };
        // The holder's pid, for the message of whoever finds the lock taken.
        let _ = lock.file.set_len(0);
        let _ = lock.file.rewind();
        let _ = writeln!(lock.file, "{}", std::process::id());
        Ok(Some(lock))
    }

    /// Take the lock on `path`, waiting up to `limit` for its holder to release it: None
    /// if it is still held then.
    pub fn lock_within(path: &Path, limit: Duration) -> io::Result<Option<FileLock>> {
        let start = Instant::now();
        loop {
            if let Some(l) = FileLock::try_lock(path)? {
                return Ok(Some(l));
            }
            if start.elapsed() >= limit {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The pid written into the lock file `path` by its last holder.
pub fn holder(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Another run holds the lock on a global setting.
#[derive(Debug, thiserror::Error)]
#[error("another throttlebench run{} is changing the global setting {knob} (it holds {}); wait for it to end and try again", holder.map(|p| format!(" (pid {p})")).unwrap_or_default(), path.display())]
pub struct KnobBusy {
    pub knob: String,
    pub path: PathBuf,
    pub holder: Option<u32>,
}

/// Take the lock for changing the global kernel setting `knob` (a sysctl such as
/// `kernel.sched_cfs_bandwidth_slice_us`), in `dir` (see `lock_dir`). A run must hold it
/// from before it changes the setting until it has put the old value back; while it does,
/// another run asking for it gets `KnobBusy`, whose message names the holder.
pub fn knob(dir: &Path, knob: &str) -> anyhow::Result<FileLock> {
    let file: String = knob
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path = dir.join(format!("knob-{file}.lock"));
    match FileLock::try_lock(&path) {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(KnobBusy {
            knob: knob.to_string(),
            holder: holder(&path),
            path,
        }
        .into()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("locking {}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("tb-lock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn a_held_lock_is_refused_until_released() {
        let d = temp("held");
        let p = d.join("x.lock");
        let a = FileLock::try_lock(&p).unwrap().expect("free");
        // Another open file of the same process conflicts like another process would.
        assert!(FileLock::try_lock(&p).unwrap().is_none());
        assert_eq!(holder(&p), Some(std::process::id()));
        let t = Instant::now();
        assert!(FileLock::lock_within(&p, Duration::from_millis(30))
            .unwrap()
            .is_none());
        assert!(t.elapsed() >= Duration::from_millis(30));
        drop(a);
        assert!(FileLock::try_lock(&p).unwrap().is_some());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_busy_knob_names_the_knob_the_holder_and_the_lock_file() {
        let d = temp("knob");
        let held = knob(&d, "kernel.sched_cfs_bandwidth_slice_us").unwrap();
        let err = knob(&d, "kernel.sched_cfs_bandwidth_slice_us").unwrap_err();
        let msg = err.to_string();
        assert!(err.downcast_ref::<KnobBusy>().is_some());
        assert!(
            msg.contains("kernel.sched_cfs_bandwidth_slice_us")
                && msg.contains(&format!("pid {}", std::process::id()))
                && msg.contains(&held.path().display().to_string()),
            "{msg}"
        );
        // Another knob is another lock.
        assert!(knob(&d, "kernel.sched_min_granularity_ns").is_ok());
        drop(held);
        assert!(knob(&d, "kernel.sched_cfs_bandwidth_slice_us").is_ok());
        let _ = std::fs::remove_dir_all(&d);
    }
}
