//! Sources the sampler reads while a workload runs, one file per source, and the
//! sampler that reads them all each tick; and the facts of the host.

pub mod cpustat;
pub mod delta;
pub mod file;
pub mod host;
#[cfg(test)]
mod kernel_fixtures;
pub mod pidstat;
pub mod pressure;
pub mod procstat;
pub mod sampler;

pub use delta::Delta;
pub use host::Host;
pub use sampler::{GroupSources, Sample, Sampler, SystemHas};
