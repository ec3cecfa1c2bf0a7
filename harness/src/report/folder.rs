//! A result folder that one run alone writes: made new (never reused) or, for `--out`,
//! taken over, and locked (flock on the folder) while written. Errors name the path and
//! say a full disk plainly.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// The results could not be written: the file (or folder) and why.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot write results to {}: {}", path.display(), describe(error))]
    Io { path: PathBuf, error: io::Error },
    #[error("the result folder {} is being written by another throttlebench run; give another --out", path.display())]
    InUse { path: PathBuf },
}

impl ResultsError {
    pub(crate) fn io(path: &Path) -> impl Fn(io::Error) -> ResultsError + '_ {
        move |error| ResultsError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// An I/O error in words, with the cases of a full disk said plainly.
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) if n == Errno::ENOSPC as i32 => format!("the disk is full ({e})"),
        Some(n) if n == Errno::EDQUOT as i32 => format!("the disk quota is used up ({e})"),
        _ => e.to_string(),
    }
}

/// A lock on a result folder (flock on the folder itself), held while a run writes it.
#[derive(Debug)]
pub struct FolderLock(#[allow(dead_code)] Flock<File>);

impl FolderLock {
    /// Lock `dir`; `InUse` if another process holds it.
    fn take(dir: &Path) -> Result<FolderLock, ResultsError> {
        let f = File::open(dir).map_err(ResultsError::io(dir))?;
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(FolderLock(lock)),
            Err((_, Errno::EWOULDBLOCK)) => Err(ResultsError::InUse {
                path: dir.to_path_buf(),
            }),
            Err((_, e)) => Err(ResultsError::Io {
                path: dir.to_path_buf(),
                error: e.into(),
            }),
        }
    }
}

/// A result folder that this run alone writes.
#[derive(Debug)]
pub struct ResultFolder {
    pub path: PathBuf,
    pub(crate) lock: FolderLock,
    /// Whether this run made the folder (then it removes it if it cannot start).
    pub(crate) made: bool,
}

impl ResultFolder {
    /// A new folder at `base` or, if that exists (another run started in the same
    /// second, or an earlier run), at `base-2`, `base-3`, ...: made with mkdir, which fails
    /// on an existing folder, so two runs never get the same one. Its parents are made.
    pub fn fresh(base: &Path) -> Result<ResultFolder, ResultsError> {
        if let Some(parent) = base.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(ResultsError::io(parent))?;
        }
        let name = base.file_name().unwrap_or_default().to_string_lossy();
        for n in 1..=1000 {
            let path = if n == 1 {
                base.to_path_buf()
            } else {
                base.with_file_name(format!("{name}-{n}"))
            };
            match fs::create_dir(&path) {
                Ok(()) => {
                    let lock = FolderLock::take(&path).inspect_err(|_| {
                        let _ = fs::remove_dir(&path);
                    })?;
                    return Ok(ResultFolder {
                        path,
                        lock,
                        made: true,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ResultsError::io(&path)(e)),
            }
        }
        Err(ResultsError::Io {
            path: base.to_path_buf(),
            error: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "it and 999 numbered variants exist",
            ),
        })
    }

    /// The folder the user named (`--out`), made if missing; an existing one is reused
    /// (its files rewritten) unless another run is writing it, which is refused.
    pub fn named(dir: &Path) -> Result<ResultFolder, ResultsError> {
        let made = match fs::create_dir(dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(ResultsError::io(dir))?;
                true
            }
            Err(e) => return Err(ResultsError::io(dir)(e)),
        };
        match FolderLock::take(dir) {
            Ok(lock) => Ok(ResultFolder {
                path: dir.to_path_buf(),
                lock,
                made,
            }),
            Err(e) => {
                if made {
                    let _ = fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_folder_is_never_shared() {
        let d = std::env::temp_dir().join(format!("tb-folder-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let base = d.join("results/s/20261122T120654Z");
        let a = ResultFolder::fresh(&base).unwrap();
        let b = ResultFolder::fresh(&base).unwrap();
        assert_eq!(a.path, base);
        assert_eq!(b.path, d.join("results/s/20261122T120654Z-2"));
        // --out a folder that a live writer holds: refused, naming it.
        match ResultFolder::named(&a.path) {
            Err(e @ ResultsError::InUse { .. }) => {
                assert!(e.to_string().contains(&base.display().to_string()), "{e}")
            }
            other => panic!("{other:?}"),
        }
        drop(a);
        let again = ResultFolder::named(&base).unwrap();
        assert!(!again.made);
        let _ = fs::remove_dir_all(&d);
    }
}
