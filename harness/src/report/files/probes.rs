//! The probes' tables (steal.csv, gaps.csv, steal_timeseries.csv, entropy.csv,
//! fips.csv): a probe workload's rows, each tagged with its run and group.

use serde::Serialize;

/// Rows of a probe table, tagged with their run and group.
pub trait Tagged: Serialize + Clone {
    fn tag(&mut self, run: usize, group: &str);
}

macro_rules! tagged {
    ($($t:ty),*) => {$(
        impl Tagged for $t {
            fn tag(&mut self, run: usize, group: &str) {
                self.run = Some(run);
                self.group = Some(group.to_string());
            }
        }
    )*};
}

tagged!(
    crate::probe::steal::CpuRow,
    crate::probe::steal::GapBucket,
    crate::probe::steal::SeriesRow,
    crate::probe::entropy::SupplyRow,
    crate::probe::entropy::FipsRow
);
