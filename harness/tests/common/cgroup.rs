//! cgroups that a test makes itself (as a user of the machine would, not through the
//! tool), with workloads it starts in them: what `watch` is tested on. v1 (cpu and
//! cpuacct hierarchies), under the `throttlebench` parent, named `tb-<tag>-<pid>`, and
//! removed with the workloads when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::CGROUP_ROOT;

/// Whether the machine has cgroup v1's cpu hierarchy (what these cgroups are made in).
pub fn v1() -> bool {
    Path::new(CGROUP_ROOT).join("cpu/cpu.cfs_quota_us").exists()
}

/// A v1 cgroup pair (cpu and cpuacct) at `throttlebench/<rel>`.
pub struct TestCgroup {
    /// Its path under the hierarchies' roots (`throttlebench/tb-watch-1`).
    pub rel: String,
    dirs: Vec<PathBuf>,
    made_parents: Vec<PathBuf>,
    children: Vec<Child>,
}

impl TestCgroup {
    /// Make `throttlebench/<rel>` in the cpu and cpuacct hierarchies (the parent too if
    /// it is missing; a nested `rel` needs its own parent made first).
    pub fn new(rel: &str) -> TestCgroup {
        let mut t = TestCgroup {
            rel: format!("throttlebench/{rel}"),
            dirs: Vec::new(),
            made_parents: Vec::new(),
            children: Vec::new(),
        };
        for controller in ["cpu", "cpuacct"] {
            let parent = Path::new(CGROUP_ROOT)
                .join(controller)
                .join("throttlebench");
            if std::fs::create_dir(&parent).is_ok() {
                t.made_parents.push(parent.clone());
            }
            let dir = parent.join(rel);
            std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            t.dirs.push(dir);
        }
        t
    }

    /// Its folder in the cpu hierarchy.
    pub fn cpu(&self) -> &Path {
        &self.dirs[0]
    }

    pub fn cpuacct(&self) -> &Path {
        &self.dirs[1]
    }

    /// Set a CFS quota of `quota_us` per `period_us`.
    pub fn limit(&self, quota_us: u64, period_us: u64) {
        std::fs::write(self.cpu().join("cpu.cfs_period_us"), period_us.to_string()).unwrap();
        std::fs::write(self.cpu().join("cpu.cfs_quota_us"), quota_us.to_string()).unwrap();
    }

    /// Start `cmd` (output discarded) and move it into both folders; its pid.
    pub fn start(&mut self, mut cmd: Command) -> u32 {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        for d in &self.dirs {
            std::fs::write(d.join("cgroup.procs"), pid.to_string()).unwrap();
        }
        pid
    }

    /// Kill and reap the workloads started in it.
    pub fn stop(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stop the workloads and remove the folders now (the kernel frees a cgroup shortly
    /// after its last task exits: retried for up to 5 s).
    pub fn remove(&mut self) {
        self.stop();
        for d in self.dirs.drain(..).rev() {
            let start = Instant::now();
            while std::fs::remove_dir(&d).is_err()
                && d.exists()
                && start.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        self.remove();
        for p in &self.made_parents {
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// A spinning duty cycle of this suite's workload generator: `on` of work, `off` of
/// sleep, for `duration` (e.g. "500ms", "500ms", "60s").
pub fn duty(on: &str, off: &str, duration: &str) -> Command {
    let mut c = super::tb();
    c.args([
        "fibtest",
        "duty",
        "--on",
        on,
        "--off",
        off,
        "--duration",
        duration,
    ]);
    c
}

/// Whether a process of that pid is alive (not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Start a throttlebench command with its output captured (for a command that runs
/// until it is signalled).
pub fn spawn_tb(args: &[&str]) -> Child {
    super::tb()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}
