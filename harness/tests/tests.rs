//! Integration tests of the throttlebench harness: one binary, a module per area.
//! Tests that need root and real cgroups say so and skip outside CI (see common).

mod bad_input;
mod common;
mod concurrent;
mod disk;
mod fips;
mod fuzz;
mod kernel;
mod limiters;
mod probe;
mod report;
mod run;
mod threshold;
mod unprivileged;
mod vm;
