//! Which processes belong to a run: those in its cgroups; without a cgroup, the trees
//! below its main processes and below the orphans this process adopted (as a child
//! subreaper), which are the workload's descendants whose parents exited. `RunProcs`
//! gives `teardown` that list and the means to signal and reap.

use super::spawn::ChildGuard;
use crate::cgroup::Cgroup;
use crate::clock::monotonic_ns;
use crate::process::{procs, teardown};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

/// The run's live processes now; `mains` are the main processes not yet waited for (a
/// reaped one's pid may be reused by a process that is none of the run's).
pub(super) fn scope_pids(proc_root: &Path, top: Option<&Cgroup>, mains: &[i32]) -> Vec<i32> {
    if let Some(cg) = top {
        return cg.pids_recursive();
    }
    let all = procs::all(proc_root);
    let me = std::process::id() as i32;
    let mut roots: Vec<i32> = mains.to_vec();
    roots.extend(
        all.iter()
            .filter(|p| p.ppid == me && !mains.contains(&p.pid))
            .map(|p| p.pid),
    );
    let mut pids: Vec<i32> = roots
        .iter()
        .flat_map(|r| procs::tree(&all, *r))
        .filter(|p| all.iter().any(|i| i.pid == *p))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The run's processes, for `teardown`: those in its cgroups, and its main processes.
pub(super) struct RunProcs<'a> {
    pub(super) cgroup: Option<&'a Cgroup>,
    pub(super) proc_root: &'a Path,
    pub(super) mains: Vec<(&'a mut ChildGuard, &'a mut Option<ExitStatus>)>,
}

impl teardown::Procs for RunProcs<'_> {
    fn list(&mut self) -> Vec<i32> {
        let mains: Vec<i32> = self
            .mains
            .iter()
            .filter(|(_, st)| st.is_none())
            .map(|(g, _)| g.pid())
            .collect();
        let mut pids = scope_pids(self.proc_root, self.cgroup, &mains);
        pids.retain(|&p| procs::read(self.proc_root, p).is_some_and(|i| i.state != 'Z'));
        pids
    }
    fn stopped_or_gone(&mut self, pid: i32) -> bool {
        procs::read(self.proc_root, pid)
            .is_none_or(|i| i.is_stopped() || i.state == 'Z' || i.exiting)
    }
    fn signal(&mut self, pid: i32, sig: Signal) {
        // A process listed in the run's own cgroups (or tree); ESRCH if it just went.
        let _ = kill(Pid::from_raw(pid), sig);
    }
    fn mains_exited(&mut self) -> bool {
        let mut all = true;
        for (guard, status) in self.mains.iter_mut() {
            if status.is_none() {
                if let Some(child) = guard.child.as_mut() {
                    **status = child.try_wait().ok().flatten();
                }
            }
            all &= status.is_some();
        }
        all
    }
    fn now_ns(&mut self) -> u64 {
        monotonic_ns()
    }
    fn pause(&mut self) {
        std::thread::sleep(Duration::from_millis(5));
    }
}
