//! `throttlebench vm`: run any throttlebench command inside a kernel under test, booted
//! with virtme-ng (`vng`), the tool kernel developers use for this. The guest sees the
//! host's files (this very binary runs there) and uses its own cgroup hierarchy, v2 on any
//! current kernel.
//!
//! vng's own exit status says nothing about the guest (255 whatever happened on the
//! machines this was built on), so the guest writes the command's exit code, stdout and
//! stderr into a folder shared with `--rwdir`; no code there means the guest did not boot
//! or hung, and that is 125 (`git bisect run`'s "cannot test this commit"). The command's
//! `--out` folder (or `results/` when it has none) is shared writable too, so its result
//! folder comes back as if it had run here.

use crate::scenario::Span;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

/// The exit code for "this kernel could not be tested".
pub const EXIT_CANNOT_TEST: i32 = 125;

/// How to boot.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub kernel: PathBuf,
    pub cpus: u32,
    /// vng's `--memory` (e.g. "1G").
    pub memory: String,
    /// Use KVM (default: software emulation, `--disable-kvm`).
    pub kvm: bool,
    /// The vng program.
    pub vng: OsString,
    pub timeout: Duration,
}

/// Starts vng (the real one, or a fake in tests); `None` when it ran past the timeout and
/// was killed.
pub trait Launcher {
    fn launch(&mut self, argv: &[OsString], timeout: Duration) -> io::Result<Option<ExitStatus>>;
}

/// Runs the program for real, in its own process group, killed at the timeout.
pub struct RealLauncher {
    /// Where vng's own output (the boot log) goes.
    pub log: PathBuf,
}

impl Launcher for RealLauncher {
    fn launch(&mut self, argv: &[OsString], timeout: Duration) -> io::Result<Option<ExitStatus>> {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(&self.log)?;
        let mut child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        let end = std::time::Instant::now() + timeout;
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok(Some(st));
            }
            if std::time::Instant::now() >= end || crate::signals::received().is_some() {
                // SAFETY: kill takes plain integers; the group is the child's own.
                unsafe { nix::libc::kill(-(child.id() as i32), nix::libc::SIGKILL) };
                let _ = child.wait();
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Quote `s` for sh: single quotes, with `'` written as `'\''`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The kernel's config next to its image: `config-<v>` beside `vmlinuz-<v>` (a
/// distribution package unpacked), or the tree's `.config` for `arch/x86/boot/bzImage`.
pub fn kernel_config_for(kernel: &Path) -> Option<PathBuf> {
    let name = kernel.file_name()?.to_str()?;
    let dir = kernel.parent()?;
    if let Some(v) = name.strip_prefix("vmlinuz-") {
        let c = dir.join(format!("config-{v}"));
        if c.exists() {
            return Some(c);
        }
    }
    kernel
        .ancestors()
        .skip(1)
        .take(4)
        .map(|d| d.join(".config"))
        .find(|c| c.exists())
}

/// The folder a throttlebench command writes its results into, if it names one.
pub fn out_dir_of(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--out" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = s.strip_prefix("--out=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}

/// What a boot produced.
#[derive(Debug)]
pub struct VmOutcome {
    /// The exit code to end with: the guest command's, or 125 when there is none.
    pub code: i32,
    /// Why there is no guest code (did not boot, timed out, ...).
    pub problem: Option<String>,
    pub stdout: String,
    pub stderr: String,
}

/// The vng command line for running `exe args` in the guest, sharing `shared` and `rw`.
pub fn vng_argv(
    cfg: &VmConfig,
    exe: &Path,
    args: &[OsString],
    cwd: &Path,
    shared: &Path,
    rw: &[PathBuf],
) -> Vec<OsString> {
    let mut cmd = format!("cd {} && ", sh_quote(&cwd.to_string_lossy()));
    let vm = if cfg.kvm {
        "virtme-ng, KVM"
    } else {
        "virtme-ng, emulated (TCG)"
    };
    cmd += &format!("THROTTLEBENCH_VM={} ", sh_quote(vm));
    if let Some(c) = kernel_config_for(&cfg.kernel) {
        cmd += &format!(
            "THROTTLEBENCH_KERNEL_CONFIG={} ",
            sh_quote(&c.to_string_lossy())
        );
    }
    cmd += &sh_quote(&exe.to_string_lossy());
    for a in args {
        cmd.push(' ');
        cmd += &sh_quote(&a.to_string_lossy());
    }
    let s = |p: &str| sh_quote(&shared.join(p).to_string_lossy());
    cmd += &format!(" >{} 2>{}; echo $? >{}", s("stdout"), s("stderr"), s("rc"));
    let mut v: Vec<OsString> = vec![cfg.vng.clone(), "--run".into(), cfg.kernel.clone().into()];
    if !cfg.kvm {
        v.push("--disable-kvm".into());
    }
    v.extend([
        "--cpus".into(),
        cfg.cpus.to_string().into(),
        "--memory".into(),
        cfg.memory.clone().into(),
        "--rwdir".into(),
        shared.into(),
    ]);
    for d in rw {
        v.push("--rwdir".into());
        v.push(d.into());
    }
    v.push("--exec".into());
    v.push(cmd.into());
    v
}

/// Boot `cfg.kernel` and run `exe args` in it.
pub fn run(
    cfg: &VmConfig,
    exe: &Path,
    args: &[OsString],
    launcher: &mut dyn Launcher,
) -> io::Result<VmOutcome> {
    let cannot = |why: String| VmOutcome {
        code: EXIT_CANNOT_TEST,
        problem: Some(why),
        stdout: String::new(),
        stderr: String::new(),
    };
    if !cfg.kernel.is_file() {
        return Ok(cannot(format!(
            "{}: no such kernel image (a build that failed?)",
            cfg.kernel.display()
        )));
    }
    let cwd = std::env::current_dir()?;
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let shared = std::env::temp_dir().join(format!(
        "tb-vm-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&shared);
    std::fs::create_dir_all(&shared)?;
    // The command's result folder (or results/) must be writable in the guest.
    let out = out_dir_of(args)
        .map(|p| if p.is_absolute() { p } else { cwd.join(p) })
        .unwrap_or_else(|| cwd.join("results"));
    std::fs::create_dir_all(&out)?;
    let kernel = cfg.kernel.canonicalize()?;
    let cfg = VmConfig {
        kernel,
        ..cfg.clone()
    };
    let argv = vng_argv(&cfg, exe, args, &cwd, &shared, &[out]);
    let status = match launcher.launch(&argv, cfg.timeout) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(cannot(format!(
                "{}: not found (virtme-ng: pip install virtme-ng)",
                cfg.vng.to_string_lossy()
            )))
        }
        Err(e) => return Err(e),
    };
    let read = |n: &str| std::fs::read_to_string(shared.join(n)).unwrap_or_default();
    let rc = read("rc").trim().parse::<i32>().ok();
    let outcome = VmOutcome {
        code: rc.unwrap_or(EXIT_CANNOT_TEST),
        problem: match (status, rc) {
            (_, Some(_)) => None,
            (None, None) => Some(format!(
                "the guest did not finish within {}",
                Span(cfg.timeout)
            )),
            (Some(_), None) => Some(
                "the guest wrote no exit code: it did not boot, or the command could not start"
                    .into(),
            ),
        },
        stdout: read("stdout"),
        stderr: read("stderr"),
    };
    let _ = std::fs::remove_dir_all(&shared);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// Writes what the guest would have written, and records the command line.
    struct Fake {
        argv: Vec<OsString>,
        rc: Option<&'static str>,
        stdout: &'static str,
        hang: bool,
    }

    impl Launcher for Fake {
        fn launch(&mut self, argv: &[OsString], _: Duration) -> io::Result<Option<ExitStatus>> {
            self.argv = argv.to_vec();
            let shared = argv
                .windows(2)
                .find(|w| w[0] == "--rwdir")
                .map(|w| PathBuf::from(&w[1]))
                .unwrap();
            if let Some(rc) = self.rc {
                std::fs::write(shared.join("rc"), rc)?;
                std::fs::write(shared.join("stdout"), self.stdout)?;
            }
            Ok((!self.hang).then(|| ExitStatus::from_raw(255 << 8)))
        }
    }

    fn fake(rc: Option<&'static str>) -> Fake {
        Fake {
            argv: Vec::new(),
            rc,
            stdout: "",
            hang: false,
        }
    }

    fn setup(tag: &str) -> (PathBuf, VmConfig) {
        let d = std::env::temp_dir().join(format!("tb-vm-test-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(d.join("boot")).unwrap();
        std::fs::write(d.join("boot/vmlinuz-6.1.0-test"), b"not a kernel").unwrap();
        std::fs::write(
            d.join("boot/config-6.1.0-test"),
            "CONFIG_HZ=250\nCONFIG_CFS_BANDWIDTH=y\n",
        )
        .unwrap();
        let cfg = VmConfig {
            kernel: d.join("boot/vmlinuz-6.1.0-test"),
            cpus: 2,
            memory: "1G".into(),
            kvm: false,
            vng: "vng".into(),
            timeout: Duration::from_secs(60),
        };
        (d, cfg)
    }

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_guest_command_line_carries_everything() {
        let (d, cfg) = setup("argv");
        let out = d.join("my results");
        let mut f = fake(Some("0\n"));
        let r = run(
            &cfg,
            Path::new("/x/throttlebench"),
            &args(&["check", "s.toml", "--out", out.to_str().unwrap()]),
            &mut f,
        )
        .unwrap();
        assert_eq!(r.code, 0);
        let a: Vec<String> = f.argv.iter().map(|s| s.to_string_lossy().into()).collect();
        assert_eq!(a[0], "vng");
        assert_eq!(a[1], "--run");
        assert!(a[2].ends_with("boot/vmlinuz-6.1.0-test"));
        assert!(a.contains(&"--disable-kvm".to_string()));
        let at = |k: &str| a.iter().position(|x| x == k).unwrap();
        assert_eq!(a[at("--cpus") + 1], "2");
        assert_eq!(a[at("--memory") + 1], "1G");
        // The shared folder and the result folder are writable in the guest.
        let rw: Vec<&String> = a
            .windows(2)
            .filter(|w| w[0] == "--rwdir")
            .map(|w| &w[1])
            .collect();
        assert_eq!(rw.len(), 2);
        assert_eq!(rw[1], out.to_str().unwrap());
        assert!(out.is_dir());
        let exec = &a[at("--exec") + 1];
        assert!(
            exec.contains("'/x/throttlebench' 'check' 's.toml' '--out'"),
            "{exec}"
        );
        assert!(
            exec.contains("'my results'") || exec.contains("my results'"),
            "{exec}"
        );
        assert!(exec.contains("THROTTLEBENCH_VM='virtme-ng, emulated (TCG)'"));
        assert!(exec.contains("config-6.1.0-test"), "{exec}");
        assert!(exec.ends_with("/rc'"), "{exec}");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn exit_codes_pass_through_and_no_answer_is_125() {
        let (d, cfg) = setup("codes");
        let out = d.join("out");
        let a = args(&["check", "s.toml", "--out", out.to_str().unwrap()]);
        let exe = Path::new("/x/throttlebench");
        for (rc, want) in [("0", 0), ("1", 1), ("125", 125), ("129\n", 129)] {
            let r = run(&cfg, exe, &a, &mut fake(Some(rc))).unwrap();
            assert_eq!(r.code, want, "guest wrote {rc}");
            assert!(r.problem.is_none());
        }
        // No code: the guest did not boot.
        let r = run(&cfg, exe, &a, &mut fake(None)).unwrap();
        assert_eq!(r.code, 125);
        assert!(r.problem.unwrap().contains("did not boot"));
        // Killed at the timeout.
        let mut hang = fake(None);
        hang.hang = true;
        let r = run(&cfg, exe, &a, &mut hang).unwrap();
        assert_eq!(r.code, 125);
        assert!(r.problem.unwrap().contains("did not finish"));
        // A kernel image that is not there (its build failed).
        let missing = VmConfig {
            kernel: d.join("arch/x86/boot/bzImage"),
            ..cfg.clone()
        };
        let r = run(&missing, exe, &a, &mut fake(Some("0"))).unwrap();
        assert_eq!(r.code, 125);
        assert!(r.problem.unwrap().contains("bzImage"));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn the_guest_output_comes_back() {
        let (d, cfg) = setup("out");
        let mut f = fake(Some("1"));
        f.stdout = "check: 1 expectation failed\n";
        let out = d.join("o");
        let r = run(
            &cfg,
            Path::new("/x/tb"),
            &args(&["check", "--out", out.to_str().unwrap()]),
            &mut f,
        )
        .unwrap();
        assert_eq!(r.code, 1);
        assert_eq!(r.stdout, "check: 1 expectation failed\n");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn quoting_and_finding_the_out_folder() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(
            out_dir_of(&args(&["run", "x.toml", "--out", "/r"])),
            Some(PathBuf::from("/r"))
        );
        assert_eq!(
            out_dir_of(&args(&["run", "--out=/q"])),
            Some(PathBuf::from("/q"))
        );
        assert_eq!(out_dir_of(&args(&["run"])), None);
    }

    #[test]
    fn kernel_config_of_a_tree_build() {
        let d = std::env::temp_dir().join(format!("tb-vm-tree-{}", std::process::id()));
        std::fs::create_dir_all(d.join("arch/x86/boot")).unwrap();
        std::fs::write(d.join(".config"), "CONFIG_HZ=1000\n").unwrap();
        std::fs::write(d.join("arch/x86/boot/bzImage"), b"x").unwrap();
        assert_eq!(
            kernel_config_for(&d.join("arch/x86/boot/bzImage")),
            Some(d.join(".config"))
        );
        let _ = std::fs::remove_dir_all(d);
    }
}
