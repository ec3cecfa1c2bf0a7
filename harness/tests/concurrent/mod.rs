//! Two runs at once on one machine: their cgroups, result folders and the shared
//! `throttlebench` parents must not collide.

use crate::common::*;
use std::path::Path;

/// Threads that each make and remove a run cgroup in a loop, and then the parents when
/// empty, as runs of several processes do: no thread may fail to make its cgroup because
/// another removed a parent under it. (The tool's lock serialises across processes and
/// threads alike: each holder has its own open file.)
#[test]
fn making_and_removing_the_shared_parents_at_once_never_fails() {
    if !real_cgroups_or_skip("parents churn") {
        return;
    }
    let _x = exclusive();
    let h = throttlebench::cgroup::Hierarchy::detect(Path::new(CGROUP_ROOT)).unwrap();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let h = h.clone();
            std::thread::spawn(move || {
                let mut errors = Vec::new();
                for _ in 0..300 {
                    match h.create_run(&[]) {
                        Ok(cg) => {
                            if let Err(e) = cg.destroy(std::time::Duration::from_secs(2)) {
                                errors.push(format!("destroy: {e}"));
                            }
                        }
                        Err(e) => errors.push(format!("create: {e}")),
                    }
                    h.remove_parents_if_empty();
                }
                errors
            })
        })
        .collect();
    let errors: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(
        errors.is_empty(),
        "{} of 900 failed, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
}
