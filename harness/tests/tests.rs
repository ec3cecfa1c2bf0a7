//! Integration tests of the throttlebench harness: one binary, a module per area.
//! Tests that need root and real cgroups say so and skip outside CI (see common).

mod architecture;
mod bad_input;
mod budget;
mod common;
mod concurrent;
mod deploy;
mod disk;
mod docs;
mod fanout;
mod fips;
mod fleet;
mod fuzz;
mod kernel;
mod langrt;
mod limiters;
mod load;
mod probe;
mod prom;
mod report;
mod run;
mod runtime;
mod shipped;
mod stream;
mod threshold;
mod trees;
mod unprivileged;
mod vm;
mod watch;
