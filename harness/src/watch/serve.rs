//! `--serve` for a command whose cgroup no run samples (`find-threshold` runs its probes
//! one after another in one cgroup, without the runner's sampler): that cgroup watched on
//! a thread of its own, with the same sampler and exposition as a watch, every 100 ms,
//! until dropped.

use crate::cgroup::{Cgroup, Version};
use crate::clock::{monotonic_ns, sleep_until};
use crate::exposition::sampled::SampledGroups;
use crate::exposition::{CpuLimits, Exposition, GroupLabels};
use crate::sample::{GroupSources, Host, Sampler};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the served cgroup is read.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// A cgroup exported while this lives.
pub struct ServedCgroup {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ServedCgroup {
    /// Start sampling `cg` into `exposition`, labelled with the scenario `name`, the
    /// limiter kind and the host, with the CFS limits the limiter sets on it.
    pub fn start(
        exposition: &Exposition,
        cg: &Cgroup,
        proc_root: &Path,
        name: &str,
        (limiter, limits): (&str, &CpuLimits),
        host: &Host,
    ) -> anyhow::Result<ServedCgroup> {
        let stat = cg.cpu_stat_path();
        let usage = (cg.version == Version::V1).then(|| cg.usage_path());
        let mut sampler = Sampler::open(
            &[GroupSources {
                cpu_stat: Some(&stat),
                usage: usage.as_deref(),
            }],
            proc_root,
            INTERVAL,
        )?;
        let label = |group: &str, cgroup: String| GroupLabels {
            cgroup,
            group: group.into(),
            limiter: limiter.into(),
            scenario: format!("threshold-{name}"),
            host: host.hostname.clone(),
        };
        let mut groups = SampledGroups::new(
            exposition,
            label("host", "/".into()),
            host.clock_ticks_per_s,
            sampler.system_has(),
        );
        groups.add(
            label("main", format!("/{}/{}", crate::cgroup::PARENT, cg.name())),
            sampler.counters(0),
            limits,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("served-cgroup".into())
            .spawn(move || {
                let t0 = monotonic_ns();
                let step = INTERVAL.as_nanos() as u64;
                let mut next = t0;
                while !flag.load(Ordering::SeqCst) {
                    // A cgroup being removed at the end cannot be read: the search is over.
                    match sampler.tick(monotonic_ns() - t0) {
                        Ok(samples) => groups.update(samples),
                        Err(_) => return,
                    }
                    next += step;
                    sleep_until(next);
                }
            })?;
        Ok(ServedCgroup {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ServedCgroup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
