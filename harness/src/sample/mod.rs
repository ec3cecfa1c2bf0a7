//! Sources the sampler reads while a workload runs, one file per source.

pub mod procstat;
