//! Which kernel `throttlebench vm --kernel PATH` boots, and whether virtme-ng can boot it
//! at all, decided before booting (a boot takes 20 s or more under emulation, and a kernel
//! that cannot mount the host's files fails with nothing but a console log to say why).
//!
//! `PATH` is one of three forms:
//! - a distribution package unpacked: `boot/vmlinuz-<v>` with `boot/config-<v>` beside it
//!   and its modules in `lib/modules/<v>` (vng finds them next to `boot/`);
//! - a kernel build tree: the folder itself (virtme-ng boots a tree directly and takes the
//!   modules it built), or its `arch/x86/boot/bzImage`; the tree's `.config` is the config;
//! - a bare image (a bzImage copied anywhere): booted without modules; no config to check.
//!
//! The guest reaches the host's files over 9p or virtio-fs. A kernel with neither (Debian's
//! 6.12 *cloud* flavour has no 9p), or with only virtio-fs where this machine has no
//! virtiofsd that virtme-ng can use, cannot run anything: that is said before booting.
//!
//! Std only, so it can move with the `vm` module.

use std::path::{Path, PathBuf};

/// What form the kernel was given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `vmlinuz-<v>` with `config-<v>` beside it (an unpacked distribution package).
    Package,
    /// A kernel build tree (the folder, or its bzImage).
    Tree,
    /// An image alone: no config, no modules.
    Bare,
}

impl Form {
    pub fn name(&self) -> &'static str {
        match self {
            Form::Package => "unpacked package",
            Form::Tree => "build tree",
            Form::Bare => "bare image",
        }
    }
}

/// A kernel that exists, and what vng gets to boot it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub form: Form,
    /// What `vng --run` gets: the image, or the tree's folder.
    pub boot: PathBuf,
    /// Its config, when there is one.
    pub config: Option<PathBuf>,
}

/// The image's path inside a build tree, for this machine's architecture.
pub fn tree_image() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arch/arm64/boot/Image",
        "riscv64" => "arch/riscv/boot/Image",
        _ => "arch/x86/boot/bzImage",
    }
}

/// Find out what `path` is. `Err` says why it cannot be booted (a build that failed leaves
/// a tree without an image, or no image at all).
pub fn resolve(path: &Path) -> Result<Kernel, String> {
    if path.is_dir() {
        let image = path.join(tree_image());
        if !image.is_file() {
            return Err(format!(
                "{}: a folder without {}: not a built kernel tree (run make, or the build failed)",
                path.display(),
                tree_image()
            ));
        }
        let config = path.join(".config");
        return Ok(if config.is_file() {
            Kernel {
                form: Form::Tree,
                boot: path.to_path_buf(),
                config: Some(config),
            }
        } else {
            // vng boots a folder as a tree only with its .config; the image alone it can.
            Kernel {
                form: Form::Bare,
                boot: image,
                config: None,
            }
        });
    }
    if !path.is_file() {
        return Err(format!(
            "{}: no such kernel image or build tree (a build that failed?)",
            path.display()
        ));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Some(v) = name.strip_prefix("vmlinuz-") {
        let c = dir.join(format!("config-{v}"));
        if c.is_file() {
            return Ok(Kernel {
                form: Form::Package,
                boot: path.to_path_buf(),
                config: Some(c),
            });
        }
    }
    if path.ends_with(tree_image()) {
        if let Some(top) = path.ancestors().nth(Path::new(tree_image()).iter().count()) {
            let config = top.join(".config");
            if config.is_file() {
                return Ok(Kernel {
                    form: Form::Tree,
                    boot: path.to_path_buf(),
                    config: Some(config),
                });
            }
        }
    }
    Ok(Kernel {
        form: Form::Bare,
        boot: path.to_path_buf(),
        config: None,
    })
}

/// The value of `CONFIG_<name>` in a kernel config's text: `Some("y")`, `Some("m")`,
/// `Some("250")`; `None` when unset or absent.
pub fn config_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("CONFIG_{name}=");
    text.lines()
        .find_map(|l| l.strip_prefix(key.as_str()))
        .map(|v| v.trim().trim_matches('"'))
}

fn on(text: &str, name: &str) -> bool {
    matches!(config_value(text, name), Some("y") | Some("m"))
}

/// Whether the config has 9p over virtio, which virtme-ng uses when it has no virtio-fs.
pub fn has_9p(config: &str) -> bool {
    on(config, "NET_9P") && on(config, "NET_9P_VIRTIO") && on(config, "9P_FS")
}

/// Why a kernel with this config cannot share the host's files with virtme-ng, if it
/// cannot. `virtiofsd` is a virtiofsd virtme-ng can use on this machine (`find_virtiofsd`).
pub fn sharing_problem(config: &str, virtiofsd: Option<&Path>) -> Option<String> {
    let p9 = has_9p(config);
    let vfs = on(config, "VIRTIO_FS") && on(config, "FUSE_FS");
    if p9 {
        return None;
    }
    const NO_9P: &str = "no 9p (CONFIG_9P_FS, CONFIG_NET_9P_VIRTIO)";
    if !vfs {
        return Some(format!(
            "{NO_9P} and no virtio-fs (CONFIG_VIRTIO_FS): virtme-ng cannot share this machine's \
             files with it, so nothing can run there (Debian's cloud flavour is built without \
             9p; its generic -amd64 flavour has it)"
        ));
    }
    if virtiofsd.is_none() {
        return Some(format!(
            "{NO_9P}, only virtio-fs, and virtme-ng finds no virtiofsd it can use on this \
             machine (the Rust virtiofsd, in PATH or {}; QEMU's older C virtiofsd does not \
             take virtme-ng's options): boot a kernel with 9p, or install the Rust virtiofsd",
            VIRTIOFSD_PLACES.join(", ")
        ));
    }
    None
}

/// Where virtme-ng looks for virtiofsd, besides PATH (virtme/commands/run.py, 1.42).
pub const VIRTIOFSD_PLACES: [&str; 4] = [
    "/usr/libexec/virtiofsd",
    "/usr/lib/virtiofsd/virtiofsd",
    "/usr/lib/virtiofsd",
    "/usr/lib/qemu/virtiofsd",
];

/// A virtiofsd virtme-ng can use: the Rust one, whose `--help` lists `--shared-dir`.
pub fn find_virtiofsd(path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let in_path: Vec<PathBuf> = path_var
        .map(|p| {
            std::env::split_paths(p)
                .map(|d| d.join("virtiofsd"))
                .collect()
        })
        .unwrap_or_default();
    in_path
        .into_iter()
        .chain(VIRTIOFSD_PLACES.iter().map(PathBuf::from))
        .filter(|p| p.is_file())
        .find(|p| {
            std::process::Command::new(p)
                .arg("--help")
                .stdin(std::process::Stdio::null())
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout).contains("--shared-dir")
                        || String::from_utf8_lossy(&o.stderr).contains("--shared-dir")
                })
                .unwrap_or(false)
        })
}

/// `name` in the folders of `path_var` (a PATH value), or `name` itself when it has a `/`.
pub fn find_program(name: &std::ffi::OsStr, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    let n = Path::new(name);
    if n.components().count() > 1 {
        return executable(n).then(|| n.to_path_buf());
    }
    std::env::split_paths(path_var?)
        .map(|d| d.join(n))
        .find(|p| executable(p))
}

/// The QEMU program virtme-ng starts for this machine's architecture.
pub fn qemu_program() -> String {
    format!("qemu-system-{}", std::env::consts::ARCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tb-vmk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_three_forms() {
        let d = scratch("forms");
        // A package unpacked.
        std::fs::create_dir_all(d.join("pkg/boot")).unwrap();
        std::fs::write(d.join("pkg/boot/vmlinuz-6.12.1-amd64"), "k").unwrap();
        std::fs::write(d.join("pkg/boot/config-6.12.1-amd64"), "CONFIG_HZ=250\n").unwrap();
        let k = resolve(&d.join("pkg/boot/vmlinuz-6.12.1-amd64")).unwrap();
        assert_eq!(k.form, Form::Package);
        assert_eq!(k.config, Some(d.join("pkg/boot/config-6.12.1-amd64")));
        // A tree: the folder, or its image.
        let img = d.join("tree").join(tree_image());
        std::fs::create_dir_all(img.parent().unwrap()).unwrap();
        std::fs::write(&img, "k").unwrap();
        std::fs::write(d.join("tree/.config"), "CONFIG_HZ=1000\n").unwrap();
        let k = resolve(&d.join("tree")).unwrap();
        assert_eq!((k.form, &k.boot), (Form::Tree, &d.join("tree")));
        assert_eq!(k.config, Some(d.join("tree/.config")));
        let k = resolve(&img).unwrap();
        assert_eq!((k.form, &k.boot), (Form::Tree, &img));
        assert_eq!(k.config, Some(d.join("tree/.config")));
        // A bare image: a copy of the bzImage, or a vmlinuz without its config.
        std::fs::write(d.join("bzImage-copy"), "k").unwrap();
        let k = resolve(&d.join("bzImage-copy")).unwrap();
        assert_eq!((k.form, k.config), (Form::Bare, None));
        std::fs::write(d.join("vmlinuz-7.0"), "k").unwrap();
        assert_eq!(resolve(&d.join("vmlinuz-7.0")).unwrap().form, Form::Bare);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn what_cannot_boot_says_why() {
        let d = scratch("noboot");
        let e = resolve(&d.join("arch/x86/boot/bzImage")).unwrap_err();
        assert!(e.contains("no such kernel image"), "{e}");
        // A tree whose build failed: configured, no image.
        std::fs::write(d.join(".config"), "CONFIG_HZ=250\n").unwrap();
        let e = resolve(&d).unwrap_err();
        assert!(
            e.contains(tree_image()) && e.contains("not a built kernel tree"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn sharing_needs_9p_or_a_usable_virtio_fs() {
        let generic = "CONFIG_NET_9P=m\nCONFIG_NET_9P_VIRTIO=m\nCONFIG_9P_FS=m\nCONFIG_FUSE_FS=y\nCONFIG_VIRTIO_FS=y\n";
        assert_eq!(sharing_problem(generic, None), None);
        // Debian 6.12's cloud flavour: no 9p, virtio-fs built in.
        let cloud = "# CONFIG_NET_9P is not set\nCONFIG_FUSE_FS=y\nCONFIG_VIRTIO_FS=y\n";
        let p = sharing_problem(cloud, None).unwrap();
        assert!(p.contains("no 9p") && p.contains("virtiofsd"), "{p}");
        assert_eq!(
            sharing_problem(cloud, Some(Path::new("/x/virtiofsd"))),
            None
        );
        // Neither.
        let p = sharing_problem("CONFIG_HZ=250\n", Some(Path::new("/x/virtiofsd"))).unwrap();
        assert!(
            p.contains("no virtio-fs") && p.contains("cloud flavour"),
            "{p}"
        );
        // 9p without its virtio transport is no 9p.
        let half = "CONFIG_NET_9P=y\nCONFIG_9P_FS=y\n";
        assert!(sharing_problem(half, None).is_some());
        assert_eq!(config_value(generic, "9P_FS"), Some("m"));
        assert_eq!(config_value(cloud, "NET_9P"), None);
    }

    #[test]
    fn programs_are_found_in_path() {
        use std::os::unix::fs::PermissionsExt;
        let d = scratch("path");
        let p = d.join("vng");
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.join("notexec"), "").unwrap();
        let path = std::ffi::OsString::from(format!("/nonexistent:{}", d.display()));
        assert_eq!(find_program("vng".as_ref(), Some(&path)), Some(p.clone()));
        assert_eq!(find_program("notexec".as_ref(), Some(&path)), None);
        assert_eq!(find_program("vng".as_ref(), None), None);
        assert_eq!(find_program(p.as_os_str(), None), Some(p));
        let _ = std::fs::remove_dir_all(d);
    }
}
