//! Units that users write for CPU limits, and how each system turns them into the
//! kernel's settings. Pure functions: no files, no processes, nothing from the rest of
//! the crate, so the scenario layer can call them while it resolves a plan.

pub mod cpu_limits;
