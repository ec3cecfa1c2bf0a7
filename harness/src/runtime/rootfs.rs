//! A container's root file system made from local files, with no image pull: a static
//! busybox as `/bin/busybox` and `/bin/sh`, each given binary as `/bin/<its name>`, and
//! every shared library `ldd` names for them at the same absolute path as on the host
//! (so the loader, `/lib64/ld-linux-x86-64.so.2`, is where the binaries expect it).
//! Empty mount points and files that runtimes bind over (`/proc`, `/dev`, `/sys`, `/tmp`,
//! `/etc/hosts`, ...) are made too, so a read-only root works.

use super::RuntimeError;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A root file system folder and where the binaries are inside it.
#[derive(Debug, Clone)]
pub struct RootFs {
    /// The folder (on the host).
    pub dir: PathBuf,
    /// Each binary given to `assemble`: (host path, path inside the container).
    pub binaries: Vec<(PathBuf, String)>,
    /// Folders of the libraries copied in, for `LD_LIBRARY_PATH`.
    pub library_dirs: Vec<String>,
}

impl RootFs {
    /// Fill `dir` (made if missing): `busybox` (a path on the host; Debian's
    /// `busybox-static` is /bin/busybox) and `binaries`, with their libraries.
    pub fn assemble(
        dir: &Path,
        busybox: &Path,
        binaries: &[&Path],
    ) -> Result<RootFs, RuntimeError> {
        if !busybox.is_file() {
            return Err(RuntimeError::MissingFile {
                what: "busybox for the container's root file system",
                path: busybox.to_path_buf(),
                hint: "install the Debian package busybox-static",
            });
        }
        for d in ["bin", "proc", "dev", "sys", "tmp", "run", "etc"] {
            mkdir(&dir.join(d))?;
        }
        // Files that runtimes (podman) bind-mount over must exist on a read-only root.
        for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
            write(&dir.join(f), b"")?;
        }
        write(&dir.join("etc/passwd"), b"root:x:0:0:root:/:/bin/sh\n")?;
        write(&dir.join("etc/group"), b"root:x:0:\n")?;
        let mut library_dirs: Vec<String> = Vec::new();
        let mut place = |host: &Path, inside: &str| -> Result<(), RuntimeError> {
            for lib in libraries_of(host)? {
                let target = dir.join(lib.strip_prefix("/").unwrap_or(&lib));
                if let Some(parent) = target.parent() {
                    mkdir(parent)?;
                }
                copy(&lib, &target)?;
                if let Some(p) = lib.parent() {
                    let p = p.to_string_lossy().into_owned();
                    if !library_dirs.contains(&p) {
                        library_dirs.push(p);
                    }
                }
            }
            copy(host, &dir.join(inside.trim_start_matches('/')))
        };
        place(busybox, "/bin/busybox")?;
        symlink("busybox", &dir.join("bin/sh"))?;
        let mut placed = Vec::new();
        for b in binaries {
            let name = b
                .file_name()
                .ok_or_else(|| RuntimeError::MissingFile {
                    what: "binary for the container",
                    path: b.to_path_buf(),
                    hint: "give a path to a file",
                })?
                .to_string_lossy()
                .into_owned();
            if !b.is_file() {
                return Err(RuntimeError::MissingFile {
                    what: "binary for the container",
                    path: b.to_path_buf(),
                    hint: "build it first (cargo build)",
                });
            }
            let inside = format!("/bin/{name}");
            place(b, &inside)?;
            placed.push((b.to_path_buf(), inside));
        }
        Ok(RootFs {
            dir: dir.to_path_buf(),
            binaries: placed,
            library_dirs,
        })
    }

    /// The path inside the container of the binary given as `host`.
    pub fn inside(&self, host: &Path) -> Option<&str> {
        self.binaries
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, i)| i.as_str())
    }
}

/// The shared libraries `binary` needs, from `ldd` (none for a static binary).
fn libraries_of(binary: &Path) -> Result<Vec<PathBuf>, RuntimeError> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| RuntimeError::io(Path::new("ldd"), e))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    parse_ldd(&text).map_err(|lib| RuntimeError::Runtime {
        runtime: "ldd",
        what: format!(
            "{} needs {lib}, which is not on this machine",
            binary.display()
        ),
    })
}

/// The library paths in `ldd` output. A static binary gives none ("statically linked",
/// "not a dynamic executable"); the vDSO has no file and is left out. A library `ldd`
/// cannot find is the error (its name).
pub fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some((name, rest)) = line.split_once("=>") {
            let rest = rest.trim();
            if rest.starts_with("not found") {
                return Err(name.trim().to_string());
            }
            if let Some(path) = rest
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/'))
            {
                libs.push(PathBuf::from(path));
            }
        } else if let Some(path) = line
            .split_whitespace()
            .next()
            .filter(|p| p.starts_with('/'))
        {
            // The loader: "/lib64/ld-linux-x86-64.so.2 (0x...)".
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

fn mkdir(dir: &Path) -> Result<(), RuntimeError> {
    fs::create_dir_all(dir).map_err(|e| RuntimeError::io(dir, e))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    fs::write(path, bytes).map_err(|e| RuntimeError::io(path, e))
}

/// Copy the file (following symlinks), keeping its mode.
fn copy(from: &Path, to: &Path) -> Result<(), RuntimeError> {
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| RuntimeError::io(from, e))
}

fn symlink(target: &str, link: &Path) -> Result<(), RuntimeError> {
    match std::os::unix::fs::symlink(target, link) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(RuntimeError::io(link, e)),
        _ => Ok(()),
    }
}
