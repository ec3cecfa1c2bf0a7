//! Integration tests of the throttlebench harness: one binary, a module per area.
//! Tests that need root and real cgroups skip themselves (with a message) elsewhere.

mod common;
mod probe;
