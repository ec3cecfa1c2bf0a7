//! One file per output format of a result folder, each turning a run's data into its
//! rows: `timeseries` (timeseries.csv), `latency` (latency.csv), `probes` (the probes'
//! tables), `run_json` (run.json); summary.csv's row is `report::summary`. `csv_file`
//! appends a run's rows all or nothing.

pub mod appender;
pub(crate) mod csv_file;
pub mod latency;
pub mod probes;
pub mod run_json;
pub mod timeseries;
