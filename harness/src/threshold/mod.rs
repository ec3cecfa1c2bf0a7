//! The burst/throttle threshold finder: `search` holds the strategy; `cgroup_prober`
//! runs its probes as fibtest duty workloads in one cgroup under the limit searched.

pub mod cgroup_prober;
pub mod search;
