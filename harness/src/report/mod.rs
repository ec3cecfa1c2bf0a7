//! Result files (CSV/JSON), statistics and summaries. Works from data structs only; it
//! knows nothing of how the data was measured.

pub mod compare;
pub mod console;
pub mod expect;
pub mod export;
pub mod files;
pub mod fleet;
pub mod folder;
pub mod join;
pub mod periods;
pub mod read;
pub mod scraped;
pub mod selftest;
pub mod stream;

pub mod summary;
pub mod writer;

pub use folder::{ResultFolder, ResultsError};
pub use summary::{summarize, SummaryRow};
pub use writer::ResultWriter;
