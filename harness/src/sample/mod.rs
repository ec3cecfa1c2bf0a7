//! Sources the sampler reads while a workload runs, one file per source, and the
//! sampler that reads them all each tick.

pub mod cpustat;
pub mod file;
#[cfg(test)]
mod kernel_fixtures;
pub mod pidstat;
pub mod pressure;
pub mod procstat;
pub mod sampler;

pub use sampler::{monotonic_ns, sleep_until, Sample, Sampler, SamplerSources};
