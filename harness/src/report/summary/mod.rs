//! The summary of a run: its columns (`row`) and how they are computed (`compute`).

mod compute;
mod row;

pub use compute::{common_window_shares, summarize};
pub use row::{Cell, SummaryRow, COLUMNS};

#[cfg(test)]
mod tests;
