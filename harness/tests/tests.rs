//! Integration tests of the throttlebench harness: one binary, a module per area.
//! Tests that need root and real cgroups say so and skip outside CI (see common).

mod architecture;
mod bad_input;
mod common;
mod concurrent;
mod deploy;
mod disk;
mod docs;
mod fips;
mod fuzz;
mod kernel;
mod limiters;
mod load;
mod probe;
mod prom;
mod report;
mod run;
mod runtime;
mod stream;
mod threshold;
mod trees;
mod unprivileged;
mod vm;
