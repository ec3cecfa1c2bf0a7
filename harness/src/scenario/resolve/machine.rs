//! What this machine can do for a plan, checked once before anything starts: the
//! controllers each run needs, and the right to make cgroups. A run whose limiter needs
//! no cgroup goes on without one when making cgroups is refused (an unprivileged user);
//! the others fail here, naming the limiter, so a run that cannot start leaves nothing.

use crate::cgroup::{CgroupError, Hierarchy};
use crate::scenario::plan::{Placement, Plan};

/// A run of the plan cannot have the cgroups it needs.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("the `{limiter}` limiter needs a cgroup of its own")]
    NeedsCgroup {
        limiter: &'static str,
        #[source]
        error: CgroupError,
    },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The plan's tree of limits is one cgroup v1 refuses.
    #[error("{0}")]
    V1Tree(String),
}

/// Decide each run's `placement` against `hierarchy`. Returns why runs go without a
/// cgroup, if any do (to tell the user once).
pub fn place(plan: &mut Plan, hierarchy: &Hierarchy) -> Result<Option<String>, PlaceError> {
    let mut without = None;
    for r in &mut plan.runs {
        if hierarchy.version == crate::cgroup::Version::V1 {
            if let Some(why) = super::tree::v1_refuses(r) {
                return Err(PlaceError::V1Tree(why));
            }
        }
        match hierarchy.check_can_create(&r.extra_controllers()) {
            Ok(()) => r.placement = Placement::Cgroup,
            Err(e @ CgroupError::Permission { .. }) if r.can_run_without_cgroup() => {
                let reason = e.to_string();
                without.get_or_insert_with(|| reason.clone());
                r.placement = Placement::Processes { reason };
            }
            Err(error @ CgroupError::Permission { .. }) => {
                return Err(PlaceError::NeedsCgroup {
                    limiter: r.limiter.name(),
                    error,
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(without)
}
