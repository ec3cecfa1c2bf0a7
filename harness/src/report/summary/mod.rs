//! The summary of a run: its columns (`row`), the counters over each group's window read
//! back from timeseries.csv (`window`), and how the columns are computed (`compute`);
//! a run with changes, phase by phase (`phases`).

mod compute;
pub mod phases;
mod row;
pub mod window;

pub use compute::{group_specs, summarize};
pub use row::{Cell, SummaryRow, COLUMNS};

#[cfg(test)]
mod tests;
