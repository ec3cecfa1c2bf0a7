//! Probe integration tests (steal and entropy).
