//! Result files (CSV/JSON), statistics and summaries. Works from data structs only; it
//! knows nothing of how the data was measured.

pub mod compare;
pub mod expect;
pub mod plot;
pub mod read;
pub mod selftest;
pub mod stats;
pub mod summary;
pub mod writer;

pub use summary::{summarize, SummaryRow};
pub use writer::{utc_now, Host, ResultFolder, ResultWriter, ResultsError};
