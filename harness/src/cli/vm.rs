//! `throttlebench vm --kernel PATH -- <command>`: the command in a guest kernel
//! (`crate::vm`), its exit code passed through, 125 when the guest could not answer.

use crate::scenario::Span;
use crate::vm::{self, RealLauncher, VmConfig};
use anyhow::{Context, Result};
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct VmArgs {
    /// Kernel image to boot (arch/x86/boot/bzImage of a tree, or an unpacked
    /// distribution vmlinuz with its lib/modules next to boot/).
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
    /// The throttlebench command to run in the guest (after --), e.g. `check s.toml`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

pub fn run(args: &VmArgs) -> Result<i32> {
    crate::signals::install();
    let cfg = VmConfig {
        kernel: args.kernel.clone(),
        cpus: args.cpus,
        memory: args.memory.clone(),
        kvm: args.kvm,
        vng: args.vng.clone(),
        timeout: args.timeout.0,
    };
    let exe = std::env::current_exe().context("cannot find this program's own path")?;
    let log = std::env::temp_dir().join(format!("tb-vm-boot-{}.log", std::process::id()));
    eprintln!(
        "throttlebench vm: booting {} ({} vCPUs, {}, {}); boot log {}",
        args.kernel.display(),
        args.cpus,
        args.memory,
        if args.kvm { "KVM" } else { "emulated" },
        log.display()
    );
    let out = vm::run(
        &cfg,
        &exe,
        &args.command,
        &mut RealLauncher { log: log.clone() },
    )?;
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    if let Some(p) = &out.problem {
        let tail: Vec<String> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(15)
            .map(String::from)
            .collect();
        eprintln!("throttlebench vm: {p}; exit {}", out.code);
        for l in tail.iter().rev() {
            eprintln!("  | {l}");
        }
    } else {
        let _ = std::fs::remove_file(&log);
    }
    Ok(out.code)
}
