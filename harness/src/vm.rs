//! `throttlebench vm`: run any throttlebench command inside a kernel under test, booted
//! with virtme-ng (`vng`), the tool kernel developers use for this. The guest sees the
//! host's files (this very binary runs there) and uses its own cgroup hierarchy, v2 on any
//! current kernel. `kernel` says which kernels it takes (an unpacked package, a build
//! tree, a bare image) and which it refuses before booting.
//!
//! vng's own exit status says nothing about the guest (255 whatever happened on the
//! machines this was built on), so the guest writes the command's exit code, stdout and
//! stderr into a folder shared with `--rwdir`. Its stdout and stderr are copied to ours
//! while it runs, in the order they grow, so the command's run lines come before its
//! verdict as they would on the host. No code there means the guest did not boot or hung,
//! and that is 125 (`git bisect run`'s "cannot test this commit"), with the tail of
//! virtme-ng's console log (`--verbose`) to say why. A signal stops the guest and ends
//! with 128 + the signal (130 for Ctrl-C), which makes `git bisect run` stop; so does a
//! missing vng or QEMU (128: a setup error, not a property of the commit). The command's
//! `--out` folder (or `results/` when it has none) is shared writable too, so its result
//! folder comes back as if it had run here; one this made and the guest left empty is
//! removed, like the shared folder and the console log.
//!
//! Under software emulation the vCPUs take turns in one QEMU thread (multi-threaded TCG
//! crashed unchanged kernels now and then at code they patch at run time), and a guest
//! that dies before its command starts is booted again (`boot_attempts`).

pub mod kernel;

use crate::scenario::Span;
use std::ffi::OsString;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// The exit code for "this kernel could not be tested".
pub const EXIT_CANNOT_TEST: i32 = 125;
/// The exit code for a machine that cannot boot guests at all (no vng, no QEMU): 128, so
/// `git bisect run` stops instead of skipping every commit.
pub const EXIT_SETUP: i32 = 128;
/// Lines of the console log shown when a boot fails.
pub const LOG_TAIL_LINES: usize = 40;

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
    /// Boots tried when the guest dies before its command starts (at least 1).
    pub boot_attempts: u32,
    /// Under emulation, run the vCPUs in parallel host threads (QEMU's multi-threaded
    /// TCG) instead of one thread taking turns.
    pub mttcg: bool,
    /// Extra QEMU options (vng's --qemu-opts).
    pub qemu_opts: Option<String>,
}

/// How a launch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchEnd {
    /// The program exited by itself.
    Exited(ExitStatus),
    /// It ran past the timeout and was stopped.
    TimedOut,
    /// This process got the signal, and the program was stopped.
    Interrupted(i32),
}

/// Starts vng (the real one, or a fake in tests), calling `tick` about every 100 ms while
/// it runs and once after it ended.
pub trait Launcher {
    fn launch(
        &mut self,
        argv: &[OsString],
        log: &Path,
        timeout: Duration,
        tick: &mut dyn FnMut(),
    ) -> io::Result<LaunchEnd>;
}

/// Runs the program for real, in its own process group, with its output in the log.
/// Stopped (at the timeout or a signal to this process) with SIGTERM to the whole group,
/// which lets virtme-ng remove its temporary files and stop QEMU and virtiofsd, then
/// SIGKILL for whatever is left 10 s later. A group member still alive after the program
/// exited by itself is stopped the same way: nothing of a boot outlives it.
pub struct RealLauncher;

impl Launcher for RealLauncher {
    fn launch(
        &mut self,
        argv: &[OsString],
        log: &Path,
        timeout: Duration,
        tick: &mut dyn FnMut(),
    ) -> io::Result<LaunchEnd> {
        use std::os::unix::process::CommandExt;
        // vng and QEMU write into a pipe, copied to the log by a thread: QEMU reopens its
        // console as /proc/self/fd/2, and on a plain file that open truncates what vng
        // wrote before.
        let mut file = std::fs::File::create(log)?;
        let (rd, wr) = nix::unistd::pipe()?;
        let spawned = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(wr.try_clone()?)
            .stderr(wr)
            .process_group(0)
            .spawn();
        let mut child = spawned?;
        let copier = std::thread::spawn(move || {
            let _ = io::copy(&mut std::fs::File::from(rd), &mut file);
        });
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        let end = Instant::now() + timeout;
        let how = loop {
            if let Some(st) = child.try_wait()? {
                break LaunchEnd::Exited(st);
            }
            if let Some(sig) = crate::signals::received() {
                break LaunchEnd::Interrupted(sig);
            }
            if Instant::now() >= end {
                break LaunchEnd::TimedOut;
            }
            tick();
            std::thread::sleep(Duration::from_millis(100));
        };
        stop_group(group, &mut child);
        // Every writer of the pipe is gone with the group: the copy ends.
        let _ = copier.join();
        tick();
        Ok(how)
    }
}

/// SIGTERM to the process group, SIGKILL 10 s later if any of it is left; the child is
/// reaped.
fn stop_group(group: nix::unistd::Pid, child: &mut std::process::Child) {
    use nix::sys::signal::{killpg, Signal};
    let alive = || killpg(group, None).is_ok();
    if alive() {
        let _ = killpg(group, Signal::SIGTERM);
        let end = Instant::now() + Duration::from_secs(10);
        while alive() && Instant::now() < end {
            let _ = child.try_wait();
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive() {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
    let _ = child.wait();
}

/// Quote `s` for sh: single quotes, with `'` written as `'\''`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The kernel's config: `config-<v>` beside `vmlinuz-<v>` (a distribution package
/// unpacked), or the tree's `.config` for a tree or its `arch/x86/boot/bzImage`.
pub fn kernel_config_for(kernel: &Path) -> Option<PathBuf> {
    kernel::resolve(kernel).ok().and_then(|k| k.config)
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

/// What a boot produced. The guest's stdout and stderr went to the sinks given to `run`.
#[derive(Debug)]
pub struct VmOutcome {
    /// The exit code to end with: the guest command's, or 125, 128 or 128 + a signal.
    pub code: i32,
    /// Why there is no guest code (did not boot, timed out, interrupted, setup).
    pub problem: Option<String>,
    /// The end of virtme-ng's console log, for a boot that produced no answer.
    pub log_tail: Vec<String>,
    /// From the launch to the guest's first step (its command starting), when it got there.
    pub boot: Option<Duration>,
    /// From there to the command's exit code, when it wrote one.
    pub command: Option<Duration>,
    /// From the first launch to vng's end (the guest shut down, or was stopped).
    pub total: Duration,
    /// The last lines of the console of each boot that died before the command started
    /// and was tried again.
    pub failed_boots: Vec<Vec<String>>,
}

impl VmOutcome {
    fn without_boot(code: i32, why: String) -> VmOutcome {
        VmOutcome {
            code,
            problem: Some(why),
            log_tail: Vec::new(),
            boot: None,
            command: None,
            total: Duration::ZERO,
            failed_boots: Vec::new(),
        }
    }
}

/// Why this machine cannot boot guests at all, if it cannot: no vng, or no QEMU for its
/// architecture (`path_var` is the PATH to look in).
pub fn setup_problem(vng: &std::ffi::OsStr, path_var: Option<&std::ffi::OsStr>) -> Option<String> {
    if kernel::find_program(vng, path_var).is_none() {
        return Some(format!(
            "{}: not found: virtme-ng is not installed or not on the PATH (pip install \
             virtme-ng; .ci/setup-vm installs it with QEMU)",
            vng.to_string_lossy()
        ));
    }
    let qemu = kernel::qemu_program();
    if kernel::find_program(qemu.as_ref(), path_var).is_none() {
        return Some(format!(
            "{qemu}: not found: virtme-ng needs QEMU (Debian: apt-get install \
             qemu-system-x86; .ci/setup-vm installs it)"
        ));
    }
    None
}

/// The vng command line for running `exe args` in the guest, sharing `shared` and `rw`.
/// `config` is the kernel's config, passed on for the result's host record; `force_9p`
/// (for a kernel whose config has 9p) skips virtme-ng's tries of virtio-fs, which cost
/// several seconds a boot where no virtiofsd it can use is installed.
#[allow(clippy::too_many_arguments)]
pub fn vng_argv(
    cfg: &VmConfig,
    config: Option<&Path>,
    force_9p: bool,
    exe: &Path,
    args: &[OsString],
    cwd: &Path,
    shared: &Path,
    rw: &[PathBuf],
) -> Vec<OsString> {
    // `started` marks the end of the boot: the first thing the guest does.
    let mut cmd = format!(
        ": >{}; cd {} && ",
        sh_quote(&shared.join("started").to_string_lossy()),
        sh_quote(&cwd.to_string_lossy())
    );
    let vm = if cfg.kvm {
        "virtme-ng, KVM"
    } else {
        "virtme-ng, emulated (TCG)"
    };
    cmd += &format!("THROTTLEBENCH_VM={} ", sh_quote(vm));
    if let Some(c) = config {
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
    // --verbose: the kernel's console goes to vng's output, the log kept for a failed boot.
    let mut v: Vec<OsString> = vec![
        cfg.vng.clone(),
        "--verbose".into(),
        "--run".into(),
        cfg.kernel.clone().into(),
    ];
    if !cfg.kvm {
        v.push("--disable-kvm".into());
    }
    if force_9p {
        v.push("--force-9p".into());
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
    // vng wants its --qemu-opts last.
    // Emulated vCPUs take turns in one host thread unless asked otherwise: with QEMU's
    // multi-threaded TCG, unchanged 6.12 kernels here died now and then where the kernel
    // patches its own code at run time (static keys), at boot and when a quota was set.
    let mut qemu: Vec<String> = Vec::new();
    if !cfg.kvm && !cfg.mttcg {
        qemu.push("-accel tcg,thread=single".into());
    }
    qemu.extend(cfg.qemu_opts.clone());
    // One word, as its value starts with a dash.
    if !qemu.is_empty() {
        v.push(format!("--qemu-opts={}", qemu.join(" ")).into());
    }
    v
}

/// Where the guest's stdout and stderr go on this side.
pub struct Sinks<'a> {
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
}

/// Copies what a file gained since the last look.
struct Follow {
    path: PathBuf,
    at: u64,
}

impl Follow {
    fn new(path: PathBuf) -> Follow {
        Follow { path, at: 0 }
    }

    /// Copy the new bytes, up to the last newline unless `all`; whether there were any.
    fn pump(&mut self, to: &mut dyn Write, all: bool) -> bool {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return false;
        };
        if f.seek(io::SeekFrom::Start(self.at)).is_err() {
            return false;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() || buf.is_empty() {
            return false;
        }
        let n = if all {
            buf.len()
        } else {
            match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => return false,
            }
        };
        let _ = to.write_all(&buf[..n]);
        let _ = to.flush();
        self.at += n as u64;
        true
    }
}

/// A temporary folder, removed when dropped (whatever way `run` returns).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The folders of `dir` and its parents that do not exist yet, topmost last.
fn missing_folders(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect()
}

/// Boot `cfg.kernel` and run `exe args` in it; the guest's output goes to `sinks` while it
/// runs; `keep_log` receives a copy of virtme-ng's console log.
pub fn run(
    cfg: &VmConfig,
    exe: &Path,
    args: &[OsString],
    launcher: &mut dyn Launcher,
    sinks: Sinks<'_>,
    keep_log: Option<&Path>,
) -> io::Result<VmOutcome> {
    let k = match kernel::resolve(&cfg.kernel) {
        Ok(k) => k,
        Err(why) => return Ok(VmOutcome::without_boot(EXIT_CANNOT_TEST, why)),
    };
    let mut has_9p = false;
    if let Some(c) = &k.config {
        let text = std::fs::read_to_string(c).unwrap_or_default();
        has_9p = kernel::has_9p(&text);
        let path_var = std::env::var_os("PATH");
        if let Some(p) = kernel::sharing_problem(&text, None) {
            // Only virtio-fs: look for a virtiofsd virtme-ng can use before refusing.
            let vfsd = kernel::find_virtiofsd(path_var.as_deref());
            if kernel::sharing_problem(&text, vfsd.as_deref()).is_some() {
                return Ok(VmOutcome::without_boot(
                    EXIT_CANNOT_TEST,
                    format!(
                        "{} (config {}) cannot be booted here: {p}",
                        cfg.kernel.display(),
                        c.display()
                    ),
                ));
            }
        }
    }
    let cwd = std::env::current_dir()?;
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let shared = TempDir(std::env::temp_dir().join(format!(
        "tb-vm-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )));
    let _ = std::fs::remove_dir_all(&shared.0);
    std::fs::create_dir_all(&shared.0)?;
    // The command's result folder (or results/) must be writable in the guest.
    let out = out_dir_of(args)
        .map(|p| if p.is_absolute() { p } else { cwd.join(p) })
        .unwrap_or_else(|| cwd.join("results"));
    let made = missing_folders(&out);
    std::fs::create_dir_all(&out)?;
    let cfg = VmConfig {
        kernel: k.boot.canonicalize()?,
        ..cfg.clone()
    };
    let config = k
        .config
        .as_deref()
        .map(|c| c.canonicalize().unwrap_or(c.to_path_buf()));
    let argv = vng_argv(
        &cfg,
        config.as_deref(),
        has_9p,
        exe,
        args,
        &cwd,
        &shared.0,
        &[out],
    );
    let log = shared.0.join("console.log");
    let (started_file, rc_file) = (shared.0.join("started"), shared.0.join("rc"));
    let Sinks { stdout, stderr } = sinks;
    let first = Instant::now();
    let mut failed_boots: Vec<Vec<String>> = Vec::new();
    let mut logs = String::new();
    let (end, started, answered) = loop {
        for f in ["started", "rc", "stdout", "stderr"] {
            let _ = std::fs::remove_file(shared.0.join(f));
        }
        let (mut o, mut e) = (
            Follow::new(shared.0.join("stdout")),
            Follow::new(shared.0.join("stderr")),
        );
        let t0 = Instant::now();
        let (mut started, mut answered) = (None, None);
        // The command's progress lines are on stderr and its verdict on stdout: stderr first.
        let mut tick = || {
            if started.is_none() && started_file.exists() {
                started = Some(t0.elapsed());
            }
            e.pump(stderr, false);
            o.pump(stdout, false);
            if answered.is_none() && rc_file.exists() {
                answered = Some(t0.elapsed());
            }
        };
        let end = launcher.launch(&argv, &log, cfg.timeout, &mut tick);
        e.pump(stderr, true);
        o.pump(stdout, true);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if keep_log.is_some() {
            logs += &format!("--- boot {} ---\n{text}", failed_boots.len() + 1);
        }
        // A guest that died before its command started is booted again: under emulation
        // an unchanged kernel panicked at boot now and then (docs/kernels.md).
        let died_booting = matches!(end, Ok(LaunchEnd::Exited(_))) && started.is_none();
        if died_booting && failed_boots.len() + 1 < cfg.boot_attempts.max(1) as usize {
            failed_boots.push(tail_lines(&text, 5));
            continue;
        }
        break (end, started, answered);
    };
    let total = first.elapsed();
    for d in &made {
        // Left empty by a guest that never ran (remove_dir keeps a folder with anything in it).
        if std::fs::remove_dir(d).is_err() {
            break;
        }
    }
    if let Some(keep) = keep_log {
        let _ = std::fs::write(keep, &logs);
    }
    let end = match end {
        Ok(e) => e,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Ok(VmOutcome::without_boot(
                EXIT_SETUP,
                format!(
                    "{}: not found: virtme-ng is not installed or not on the PATH (pip install virtme-ng)",
                    cfg.vng.to_string_lossy()
                ),
            ))
        }
        Err(err) => return Err(err),
    };
    let rc = std::fs::read_to_string(shared.0.join("rc"))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    let (code, problem) = match (end, rc) {
        // A signal stops the bisect even when the guest had answered.
        (LaunchEnd::Interrupted(sig), _) => (
            128 + sig,
            Some(format!(
                "interrupted by {}: the guest was stopped",
                nix::sys::signal::Signal::try_from(sig)
                    .map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string())
            )),
        ),
        (_, Some(rc)) => (rc, None),
        (LaunchEnd::TimedOut, None) => (
            EXIT_CANNOT_TEST,
            Some(format!(
                "the guest did not finish within {}",
                Span(cfg.timeout)
            )),
        ),
        (LaunchEnd::Exited(_), None) => (
            EXIT_CANNOT_TEST,
            Some(
                "the guest wrote no exit code: it did not boot, or the command could not start"
                    .into(),
            ),
        ),
    };
    let log_tail = if problem.is_some() && !matches!(end, LaunchEnd::Interrupted(_)) {
        tail_lines(
            &std::fs::read_to_string(&log).unwrap_or_default(),
            LOG_TAIL_LINES,
        )
    } else {
        Vec::new()
    };
    Ok(VmOutcome {
        code,
        problem,
        log_tail,
        boot: started,
        command: started.zip(answered).map(|(s, a)| a.saturating_sub(s)),
        total,
        failed_boots,
    })
}

/// The last `n` non-empty lines of `text`, without carriage returns.
pub fn tail_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// Writes what the guest would have written, and records the command line.
    struct Fake {
        argv: Vec<OsString>,
        rc: Option<&'static str>,
        /// Written to the guest's stdout and stderr, in this order, one tick apart.
        writes: Vec<(&'static str, &'static str)>,
        log: &'static str,
        end: Option<LaunchEnd>,
        launched: bool,
        /// Launches that die booting (write nothing) before the one that behaves as above.
        die_booting: usize,
        launches: usize,
    }

    impl Launcher for Fake {
        fn launch(
            &mut self,
            argv: &[OsString],
            log: &Path,
            _: Duration,
            tick: &mut dyn FnMut(),
        ) -> io::Result<LaunchEnd> {
            self.argv = argv.to_vec();
            self.launched = true;
            self.launches += 1;
            if self.launches <= self.die_booting {
                std::fs::write(
                    log,
                    format!("boot {}\nKernel panic - not syncing\n", self.launches),
                )?;
                tick();
                return Ok(LaunchEnd::Exited(ExitStatus::from_raw(255 << 8)));
            }
            std::fs::write(log, self.log)?;
            let shared = argv
                .windows(2)
                .find(|w| w[0] == "--rwdir")
                .map(|w| PathBuf::from(&w[1]))
                .unwrap();
            // What a guest that boots does first.
            if self.rc.is_some() || !self.writes.is_empty() {
                std::fs::write(shared.join("started"), "")?;
                tick();
            }
            for (file, text) in &self.writes {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(shared.join(file))?;
                f.write_all(text.as_bytes())?;
                tick();
            }
            if let Some(rc) = self.rc {
                std::fs::write(shared.join("rc"), rc)?;
            }
            tick();
            Ok(self
                .end
                .unwrap_or(LaunchEnd::Exited(ExitStatus::from_raw(255 << 8))))
        }
    }

    fn fake(rc: Option<&'static str>) -> Fake {
        Fake {
            argv: Vec::new(),
            rc,
            writes: Vec::new(),
            log: "",
            end: None,
            launched: false,
            die_booting: 0,
            launches: 0,
        }
    }

    const GENERIC: &str = "CONFIG_HZ=250\nCONFIG_CFS_BANDWIDTH=y\nCONFIG_NET_9P=m\n\
        CONFIG_NET_9P_VIRTIO=m\nCONFIG_9P_FS=m\n";

    fn setup(tag: &str) -> (PathBuf, VmConfig) {
        let d = std::env::temp_dir().join(format!("tb-vm-test-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(d.join("boot")).unwrap();
        std::fs::write(d.join("boot/vmlinuz-6.1.0-test"), b"not a kernel").unwrap();
        std::fs::write(d.join("boot/config-6.1.0-test"), GENERIC).unwrap();
        let cfg = VmConfig {
            kernel: d.join("boot/vmlinuz-6.1.0-test"),
            cpus: 2,
            memory: "1G".into(),
            kvm: false,
            vng: "vng".into(),
            timeout: Duration::from_secs(60),
            boot_attempts: 1,
            mttcg: false,
            qemu_opts: None,
        };
        (d, cfg)
    }

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    /// Runs with the guest's output collected: (outcome, stdout, stderr).
    fn go(cfg: &VmConfig, a: &[OsString], f: &mut Fake) -> (VmOutcome, String, String) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let r = run(
            cfg,
            Path::new("/x/throttlebench"),
            a,
            f,
            Sinks {
                stdout: &mut o,
                stderr: &mut e,
            },
            None,
        )
        .unwrap();
        (
            r,
            String::from_utf8(o).unwrap(),
            String::from_utf8(e).unwrap(),
        )
    }

    /// The tests that boot take turns, so that one can see what another left behind.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// No tb-vm-<this pid>-* folder is left in the temp folder.
    fn no_shared_folders_left() {
        let mine = format!("tb-vm-{}-", std::process::id());
        let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&mine))
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[test]
    fn the_guest_command_line_carries_everything() {
        let _s = serial();
        let (d, cfg) = setup("argv");
        let out = d.join("my results");
        let mut f = fake(Some("0\n"));
        let (r, _, _) = go(
            &cfg,
            &args(&["check", "s.toml", "--out", out.to_str().unwrap()]),
            &mut f,
        );
        assert_eq!(r.code, 0);
        let a: Vec<String> = f.argv.iter().map(|s| s.to_string_lossy().into()).collect();
        assert_eq!(a[0], "vng");
        // The console goes to the log, shown when a boot fails.
        assert_eq!(a[1], "--verbose");
        let at = |k: &str| a.iter().position(|x| x == k).unwrap();
        assert!(a[at("--run") + 1].ends_with("boot/vmlinuz-6.1.0-test"));
        assert!(a.contains(&"--disable-kvm".to_string()));
        // The config has 9p: no time lost trying virtio-fs.
        assert!(a.contains(&"--force-9p".to_string()));
        // Emulated vCPUs take turns in one thread; vng wants --qemu-opts last.
        assert_eq!(a.last().unwrap(), "--qemu-opts=-accel tcg,thread=single");
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
        let exec = &a[at("--exec") + 1];
        assert!(
            exec.contains("'/x/throttlebench' 'check' 's.toml' '--out'"),
            "{exec}"
        );
        assert!(exec.contains("my results'"), "{exec}");
        assert!(exec.contains("THROTTLEBENCH_VM='virtme-ng, emulated (TCG)'"));
        assert!(exec.contains("config-6.1.0-test"), "{exec}");
        assert!(exec.ends_with("/rc'"), "{exec}");
        // Multi-threaded TCG on request, and QEMU options of one's own after ours.
        let mt = VmConfig {
            mttcg: true,
            qemu_opts: Some("-smp sockets=2".into()),
            ..cfg.clone()
        };
        let mut f = fake(Some("0"));
        go(&mt, &args(&["run", "--out", out.to_str().unwrap()]), &mut f);
        assert_eq!(f.argv.last().unwrap(), "--qemu-opts=-smp sockets=2");
        let kvm = VmConfig {
            kvm: true,
            ..cfg.clone()
        };
        let mut f = fake(Some("0"));
        go(
            &kvm,
            &args(&["run", "--out", out.to_str().unwrap()]),
            &mut f,
        );
        assert!(!f
            .argv
            .iter()
            .any(|a| a.to_string_lossy().starts_with("--qemu-opts")));
        assert!(
            exec.starts_with(": >'") && exec.contains("/started'; cd "),
            "{exec}"
        );
        no_shared_folders_left();
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_build_tree_and_a_bare_image_boot_too() {
        let _s = serial();
        let (d, cfg) = setup("tree");
        let tree = d.join("linux");
        let img = tree.join(kernel::tree_image());
        std::fs::create_dir_all(img.parent().unwrap()).unwrap();
        std::fs::write(&img, "k").unwrap();
        std::fs::write(tree.join(".config"), GENERIC).unwrap();
        let out = d.join("o");
        let a = args(&["run", "--out", out.to_str().unwrap()]);
        let exec_of = |f: &Fake| {
            let a: Vec<String> = f.argv.iter().map(|s| s.to_string_lossy().into()).collect();
            let at = |k: &str| a.iter().position(|x| x == k).unwrap();
            (a[at("--run") + 1].clone(), a[at("--exec") + 1].clone())
        };
        // The tree's folder goes to vng as it is; its .config is the run's config.
        let mut f = fake(Some("0"));
        let t = VmConfig {
            kernel: tree.clone(),
            ..cfg.clone()
        };
        assert_eq!(go(&t, &a, &mut f).0.code, 0);
        let (run, exec) = exec_of(&f);
        assert_eq!(PathBuf::from(run), tree.canonicalize().unwrap());
        assert!(exec.contains("THROTTLEBENCH_KERNEL_CONFIG=") && exec.contains("linux/.config"));
        // A bzImage copied out of its tree: booted alone, no config to pass on.
        let bare = d.join("bzImage-copy");
        std::fs::copy(&img, &bare).unwrap();
        let mut f = fake(Some("1"));
        let b = VmConfig {
            kernel: bare.clone(),
            ..cfg.clone()
        };
        assert_eq!(go(&b, &a, &mut f).0.code, 1);
        let (run, exec) = exec_of(&f);
        assert_eq!(PathBuf::from(run), bare.canonicalize().unwrap());
        assert!(!exec.contains("THROTTLEBENCH_KERNEL_CONFIG"), "{exec}");
        assert!(
            !f.argv.contains(&"--force-9p".into()),
            "no config: vng chooses"
        );
        // A tree whose build failed: 125 without a boot.
        std::fs::remove_file(&img).unwrap();
        let mut f = fake(Some("0"));
        let (r, _, _) = go(&t, &a, &mut f);
        assert_eq!(r.code, 125);
        assert!(!f.launched);
        assert!(r.problem.unwrap().contains("not a built kernel tree"));
        no_shared_folders_left();
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_kernel_without_9p_or_virtio_fs_is_refused_before_booting() {
        let _s = serial();
        let (d, cfg) = setup("cloud");
        std::fs::write(
            d.join("boot/config-6.1.0-test"),
            "CONFIG_HZ=250\n# CONFIG_NET_9P is not set\n",
        )
        .unwrap();
        let out = d.join("o");
        let mut f = fake(Some("0"));
        let (r, _, _) = go(
            &cfg,
            &args(&["run", "--out", out.to_str().unwrap()]),
            &mut f,
        );
        assert_eq!(r.code, 125);
        assert!(!f.launched, "no boot was tried");
        let p = r.problem.unwrap();
        assert!(
            p.contains("no 9p") && p.contains("config-6.1.0-test"),
            "{p}"
        );
        assert!(!out.exists(), "nothing made for a kernel refused");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn exit_codes_pass_through_and_no_answer_is_125() {
        let _s = serial();
        let (d, cfg) = setup("codes");
        let out = d.join("out");
        let a = args(&["check", "s.toml", "--out", out.to_str().unwrap()]);
        for (rc, want) in [("0", 0), ("1", 1), ("125", 125), ("129\n", 129)] {
            let (r, _, _) = go(&cfg, &a, &mut fake(Some(rc)));
            assert_eq!(r.code, want, "guest wrote {rc}");
            assert!(r.problem.is_none());
            assert!(r.log_tail.is_empty());
            // Boot and command times are both known for a guest that answered.
            assert!(r.boot.is_some() && r.command.is_some(), "{r:?}");
            assert!(r.boot.unwrap() + r.command.unwrap() <= r.total);
        }
        // No code: the guest did not boot; the console log's tail says why.
        let mut f = fake(None);
        f.log = "Linux version 6.1\n\nKernel panic - not syncing: VFS: Unable to mount root fs\n";
        let (r, _, _) = go(&cfg, &a, &mut f);
        assert_eq!(r.code, 125);
        assert_eq!((r.boot, r.command), (None, None));
        assert!(r.problem.unwrap().contains("did not boot"));
        assert_eq!(r.log_tail.len(), 2);
        assert!(r.log_tail[1].contains("Unable to mount root fs"));
        // Stopped at the timeout.
        let mut hang = fake(None);
        hang.end = Some(LaunchEnd::TimedOut);
        let (r, _, _) = go(&cfg, &a, &mut hang);
        assert_eq!(r.code, 125);
        assert!(r.problem.unwrap().contains("did not finish"));
        // A kernel image that is not there (its build failed).
        let missing = VmConfig {
            kernel: d.join("arch/x86/boot/bzImage"),
            ..cfg.clone()
        };
        let mut f = fake(Some("0"));
        let (r, _, _) = go(&missing, &a, &mut f);
        assert_eq!(r.code, 125);
        assert!(!f.launched);
        assert!(r.problem.unwrap().contains("bzImage"));
        no_shared_folders_left();
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_guest_that_dies_booting_is_booted_again() {
        let _s = serial();
        let (d, cfg) = setup("retry");
        let out = d.join("out");
        let a = args(&["check", "s.toml", "--out", out.to_str().unwrap()]);
        // One panic at boot, then a good boot: the answer is the guest's.
        let two = VmConfig {
            boot_attempts: 2,
            ..cfg.clone()
        };
        let mut f = fake(Some("1"));
        f.die_booting = 1;
        let (r, _, _) = go(&two, &a, &mut f);
        assert_eq!((r.code, f.launches), (1, 2));
        assert_eq!(r.failed_boots.len(), 1);
        assert!(r.failed_boots[0].iter().any(|l| l.contains("Kernel panic")));
        // Dying every time: 125 after the attempts allowed, not more.
        let mut f = fake(Some("0"));
        f.die_booting = 5;
        let (r, _, _) = go(&two, &a, &mut f);
        assert_eq!((r.code, f.launches), (125, 2));
        assert!(r.log_tail.iter().any(|l| l.contains("boot 2")));
        // One attempt: no second boot.
        let mut f = fake(Some("0"));
        f.die_booting = 1;
        let (r, _, _) = go(&cfg, &a, &mut f);
        assert_eq!((r.code, f.launches), (125, 1));
        // A guest that started its command and then died is not booted again.
        let mut f = fake(None);
        f.writes = vec![("stderr", "run 1/1\n")];
        let (r, _, _) = go(&two, &a, &mut f);
        assert_eq!(f.launches, 1);
        assert_eq!(r.code, 125);
        no_shared_folders_left();
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_signal_stops_the_bisect_not_skips_the_commit() {
        let _s = serial();
        let (d, cfg) = setup("signal");
        let out = d.join("out");
        let a = args(&["check", "s.toml", "--out", out.to_str().unwrap()]);
        for (sig, want) in [(nix::libc::SIGINT, 130), (nix::libc::SIGTERM, 143)] {
            let mut f = fake(None);
            f.end = Some(LaunchEnd::Interrupted(sig));
            let (r, _, _) = go(&cfg, &a, &mut f);
            assert_eq!(r.code, want);
            assert!(r.problem.unwrap().contains("interrupted"));
            // Even when the guest had already answered.
            let mut f = fake(Some("0"));
            f.end = Some(LaunchEnd::Interrupted(sig));
            assert_eq!(go(&cfg, &a, &mut f).0.code, want);
        }
        // The result folder this made for the guest, left empty, is gone again.
        assert!(!out.exists());
        no_shared_folders_left();
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn a_missing_vng_is_a_setup_error() {
        let _s = serial();
        let (d, cfg) = setup("novng");
        struct Missing;
        impl Launcher for Missing {
            fn launch(
                &mut self,
                _: &[OsString],
                _: &Path,
                _: Duration,
                _: &mut dyn FnMut(),
            ) -> io::Result<LaunchEnd> {
                Err(io::Error::from(io::ErrorKind::NotFound))
            }
        }
        let out = d.join("o");
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let r = run(
            &cfg,
            Path::new("/x/tb"),
            &args(&["run", "--out", out.to_str().unwrap()]),
            &mut Missing,
            Sinks {
                stdout: &mut o,
                stderr: &mut e,
            },
            None,
        )
        .unwrap();
        assert_eq!(r.code, EXIT_SETUP);
        assert!(r.problem.unwrap().contains("virtme-ng is not installed"));
        assert!(!out.exists());
        no_shared_folders_left();
        // Checked before anything starts: vng, then QEMU, in the PATH given.
        let bin = d.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let path = OsString::from(bin.as_os_str());
        let p = setup_problem("vng".as_ref(), Some(&path)).unwrap();
        assert!(p.contains("vng: not found"), "{p}");
        use std::os::unix::fs::PermissionsExt;
        let exe = |n: &str| {
            std::fs::write(bin.join(n), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(bin.join(n), std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        exe("vng");
        let p = setup_problem("vng".as_ref(), Some(&path)).unwrap();
        assert!(
            p.contains(&kernel::qemu_program()) && p.contains("needs QEMU"),
            "{p}"
        );
        exe(&kernel::qemu_program());
        assert_eq!(setup_problem("vng".as_ref(), Some(&path)), None);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn the_guest_output_comes_back_in_order() {
        let _s = serial();
        let (d, cfg) = setup("out");
        let mut f = fake(Some("1"));
        // As `check` writes: run lines on stderr, then the verdict on stdout, then a last
        // line without a newline.
        f.writes = vec![
            ("stderr", "throttlebench: scenario x\n"),
            ("stderr", "run 1/1: cpu 0.100 CPUs\n"),
            ("stdout", "check /o (x, 1 summary rows):\nFAIL  share"),
            ("stdout", ": cpu_share > 0.09\n1 of 1 expectation(s) failed"),
        ];
        let out = d.join("o");
        // One record of both streams, each write tagged with where it went.
        let seen = std::cell::RefCell::new(Vec::<u8>::new());
        struct Both<'a>(&'a std::cell::RefCell<Vec<u8>>, &'static str);
        impl Write for Both<'_> {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                let mut v = self.0.borrow_mut();
                v.extend_from_slice(self.1.as_bytes());
                v.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (mut o, mut e) = (Both(&seen, "[o]"), Both(&seen, "[e]"));
        let r = run(
            &cfg,
            Path::new("/x/tb"),
            &args(&["check", "--out", out.to_str().unwrap()]),
            &mut f,
            Sinks {
                stdout: &mut o,
                stderr: &mut e,
            },
            None,
        )
        .unwrap();
        assert_eq!(r.code, 1);
        let seen = String::from_utf8(seen.into_inner()).unwrap();
        assert_eq!(
            seen,
            "[e]throttlebench: scenario x\n[e]run 1/1: cpu 0.100 CPUs\n\
             [o]check /o (x, 1 summary rows):\n\
             [o]FAIL  share: cpu_share > 0.09\n[o]1 of 1 expectation(s) failed"
        );
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
        assert_eq!(tail_lines("a\r\n\nb\nc\n", 2), vec!["b", "c"]);
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
        assert_eq!(kernel_config_for(&d), Some(d.join(".config")));
        let _ = std::fs::remove_dir_all(d);
    }
}
