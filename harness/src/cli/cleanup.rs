//! `throttlebench cleanup`: what `run` does before it starts, on demand. Every
//! `throttlebench/run-<pid>-<starttime>-<seq>` cgroup whose owner is dead (SIGKILL, a
//! crash, a power cut) has its processes killed (thawed and continued first, so frozen or
//! stopped ones die too) and is removed; empty `throttlebench` parents go as well.
//! Cgroups of live runs and anything not named by this tool are not touched.

use crate::cgroup::{self, Hierarchy};
use anyhow::Result;
use clap::Args;
use std::path::Path;

#[derive(Debug, Args)]
pub struct CleanupArgs {}

pub fn run(cgroup_root: &Path, _args: &CleanupArgs) -> Result<i32> {
    let hierarchy = Hierarchy::detect(cgroup_root)?;
    let found = cgroup::remove_stale(&hierarchy)?;
    hierarchy.remove_parents_if_empty();
    let mut failed = 0;
    for s in &found {
        match &s.error {
            None => println!(
                "removed {} left by dead run {} ({} process(es) killed)",
                s.path.display(),
                s.owner_pid,
                s.killed
            ),
            Some(e) => {
                failed += 1;
                eprintln!("could not remove {}: {e}", s.path.display());
            }
        }
    }
    if found.is_empty() {
        println!("nothing to clean: no cgroup of a dead run under throttlebench/");
    }
    Ok(if failed > 0 { 1 } else { 0 })
}
