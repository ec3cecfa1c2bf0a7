//! throttlebench: run workloads under CPU limiters, sample the kernel's counters, and
//! write results that people and scripts can read.
//!
//! Data flows one way: a scenario is parsed and resolved into a `Plan` (`scenario`), the
//! runner runs each planned run (`runner`: cgroups, `limiter`, workload, `sample`) into
//! a `result::RunResult`, and `report` writes it; plots, `check` and `compare` read the
//! stored files back.
//!
//! The modules form layers. A module uses modules of its own layer or of layers below,
//! never above, and no two modules (nor two files) use each other, directly or through
//! others. `tests/architecture` reads the table below and the sources, and fails on an
//! import that breaks these rules.
//!
//! | layer | modules | what |
//! | --- | --- | --- |
//! | 1 | `process`, `cgroup`, `signals`, `clock`, `units` | /proc facts and signals, cgroup files, this process's signal handlers, clocks, units and formatting |
//! | 2 | `sample`, `episodes` | the sampler and the sources it reads, host facts; throttling episodes in a series of samples |
//! | 3 | `probe`, `exposition`, `load` | the steal and entropy probes; the Prometheus exposition of live counters; the open-loop load generator |
//! | 4 | `scenario` | the schema, the plan, resolving one into the other |
//! | 5 | `limiter`, `runtime` | kernel settings and control loops that hold a workload back; real OCI runtimes (runc, crun, podman) starting it in a container |
//! | 6 | `result`, `runner` | a run's raw data, and running a planned run |
//! | 7 | `report`, `as_scraped` | result files, summaries, expectations, comparisons; a recorded series as a Prometheus scrape would see it |
//! | 8 | `plot` | plots of stored result folders |
//! | 9 | `threshold`, `vm` | the threshold search, running a command in a guest kernel |
//! | 10 | `cli` | flags, wiring of each command, exit codes |
//!
//! Statistics live in `fibtest::stats`, the crate both binaries build on.

pub mod as_scraped;
pub mod cgroup;
pub mod cli;
pub mod clock;
pub mod episodes;
pub mod exposition;
pub mod limiter;
pub mod load;
pub mod plot;
pub mod probe;
pub mod process;
pub mod report;
pub mod result;
pub mod runner;
pub mod runtime;
pub mod sample;
pub mod scenario;
pub mod signals;
pub mod threshold;
pub mod units;
pub mod vm;
