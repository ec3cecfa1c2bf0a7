//! `throttlebench vm --kernel PATH -- <command>`: the command in a guest kernel
//! (`crate::vm`), its exit code passed through; 125 when the guest could not answer, 128
//! when this machine cannot boot guests (no vng, no QEMU), 128 + N when signal N stopped it.

use crate::scenario::Span;
use crate::vm::{self, RealLauncher, Sinks, VmConfig};
use anyhow::{Context, Result};
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct VmArgs {
    /// The kernel: a build tree (the folder, or its arch/x86/boot/bzImage), an unpacked
    /// distribution vmlinuz-<v> (config-<v> beside it, lib/modules next to boot/), or a
    /// bare bzImage.
    #[arg(long, value_name = "PATH")]
    pub kernel: PathBuf,
    /// vCPUs of the guest.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Memory of the guest (vng's --memory).
    #[arg(long, default_value = "1G")]
    pub memory: String,
    /// Use KVM; the default is software emulation (--disable-kvm), which works where KVM
    /// guests hang, with timings that are not real (cgroup accounting is).
    #[arg(long)]
    pub kvm: bool,
    /// The virtme-ng program.
    #[arg(long, default_value = "vng")]
    pub vng: OsString,
    /// Give up on the guest after this long (exit 125).
    #[arg(long, default_value = "30m")]
    pub timeout: Span,
    /// Boot again when the guest dies before its command starts, up to this many boots in
    /// all (an emulated SMP guest here panicked at boot once in 33 boots).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub boot_attempts: u32,
    /// Under emulation, run the vCPUs in parallel host threads (QEMU's multi-threaded TCG).
    /// The default is one thread taking turns: with multi-threaded TCG, unchanged 6.12
    /// kernels here panicked now and then where the kernel patches its own code.
    #[arg(long)]
    pub mttcg: bool,
    /// Extra options for QEMU (vng's --qemu-opts), after throttlebench's own.
    #[arg(long, value_name = "OPTIONS", allow_hyphen_values = true)]
    pub qemu_opts: Option<String>,
    /// Keep virtme-ng's whole console log in this file (by default only a failed boot
    /// shows its last lines, and nothing is kept).
    #[arg(long, value_name = "FILE")]
    pub boot_log: Option<PathBuf>,
    /// The throttlebench command to run in the guest (after --), e.g. `check s.toml`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

pub fn run(args: &VmArgs) -> Result<i32> {
    crate::signals::install();
    if let Some(p) = vm::setup_problem(&args.vng, std::env::var_os("PATH").as_deref()) {
        eprintln!(
            "throttlebench vm: cannot boot guests on this machine: {p}; exit {}",
            vm::EXIT_SETUP
        );
        return Ok(vm::EXIT_SETUP);
    }
    let cfg = VmConfig {
        kernel: args.kernel.clone(),
        cpus: args.cpus,
        memory: args.memory.clone(),
        kvm: args.kvm,
        vng: args.vng.clone(),
        timeout: args.timeout.0,
        boot_attempts: args.boot_attempts,
        mttcg: args.mttcg,
        qemu_opts: args.qemu_opts.clone(),
    };
    let exe = std::env::current_exe().context("cannot find this program's own path")?;
    let form = vm::kernel::resolve(&args.kernel)
        .map(|k| format!(", {}", k.form.name()))
        .unwrap_or_default();
    eprintln!(
        "throttlebench vm: booting {}{form} ({} vCPUs, {}, {})",
        args.kernel.display(),
        args.cpus,
        args.memory,
        if args.kvm { "KVM" } else { "emulated" },
    );
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    let out = vm::run(
        &cfg,
        &exe,
        &args.command,
        &mut RealLauncher,
        Sinks {
            stdout: &mut stdout,
            stderr: &mut stderr,
        },
        args.boot_log.as_deref(),
    )?;
    let secs = |d: Option<std::time::Duration>| {
        d.map(|d| format!("{:.1} s", d.as_secs_f64()))
            .unwrap_or_else(|| "-".into())
    };
    for (i, tail) in out.failed_boots.iter().enumerate() {
        eprintln!(
            "throttlebench vm: boot {} died before the command started; booted again. Its last lines:",
            i + 1
        );
        for l in tail {
            eprintln!("  | {l}");
        }
    }
    if !out.total.is_zero() {
        eprintln!(
            "throttlebench vm: boot {}, command {}, total {} (vng started to vng ended)",
            secs(out.boot),
            secs(out.command),
            secs(Some(out.total))
        );
    }
    if let Some(p) = &out.problem {
        eprintln!("throttlebench vm: {p}; exit {}", out.code);
        if !out.log_tail.is_empty() {
            eprintln!(
                "throttlebench vm: the last {} lines of virtme-ng's console log{}:",
                out.log_tail.len(),
                match &args.boot_log {
                    Some(f) => format!(" (all of it in {})", f.display()),
                    None => " (--boot-log FILE keeps all of it)".into(),
                }
            );
            for l in &out.log_tail {
                eprintln!("  | {l}");
            }
        }
    }
    Ok(out.code)
}
