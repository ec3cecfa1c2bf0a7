//! The probes' tables (steal.csv, gaps.csv, steal_timeseries.csv, entropy.csv,
//! fips.csv), and the window limiter's series (window.csv): rows each tagged with their
//! run and group.

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
    crate::probe::entropy::FipsRow,
    crate::limiter::window::WindowRow
);
