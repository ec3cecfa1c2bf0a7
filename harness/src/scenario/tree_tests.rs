//! Trees of groups, their own limits in other systems' units, and changes mid-run, as
//! resolved from scenario text.

use super::plan::{PlannedGroup, Weight};
use super::resolve::v1_refuses;
use super::*;
use fibtest::cpulist::CpuList;

fn plan(text: &str) -> Result<Plan, ScenarioError> {
    let cpus: CpuList = "0-1".parse().unwrap();
    let s = parse(text, "t.toml")?;
    resolve(&s, "t.toml", &cpus).map_err(|e| locate(e, text))
}

const SPIN: &str = "{ kind = \"duty\", on = \"2s\", off = \"0ms\", duration = \"2s\" }";

fn tree(pod: &str, child: &str, changes: &str) -> String {
    format!(
        "name = \"t\"\n[limiter]\nkind = \"none\"\n\
         [[group]]\nname = \"c\"\nparent = \"pod\"\nlimit = {child}\nworkload = {SPIN}\n\
         [[group]]\nname = \"pod\"\nlimit = {pod}\n{changes}"
    )
}

fn quota(g: &PlannedGroup) -> Option<(Option<u64>, u64)> {
    g.limit
        .as_ref()
        .and_then(|l| l.cfs)
        .map(|c| (c.quota_us, c.period_us))
}

#[test]
fn a_parent_comes_before_its_children_whatever_the_order_written() {
    let p = plan(&tree("{ millicores = 1000 }", "{ cpus = 0.5 }", "")).unwrap();
    let r = &p.runs[0];
    assert_eq!(r.groups[0].name, "pod");
    assert_eq!(r.groups[1].name, "c");
    assert_eq!(r.groups[1].parent, Some(0));
    assert_eq!(r.groups[0].workload, Workload::None);
    assert_eq!(quota(&r.groups[0]), Some((Some(100_000), 100_000)));
    assert_eq!(quota(&r.groups[1]), Some((Some(50_000), 100_000)));
    assert!(p.notes.is_empty(), "{:?}", p.notes);
    assert_eq!(v1_refuses(r), None);
}

#[test]
fn a_child_above_its_parent_is_noted_and_refused_for_cgroup_v1() {
    let p = plan(&tree(
        "{ cpu_quota_pct = 25 }",
        "{ millicores = \"500m\" }",
        "",
    ))
    .unwrap();
    assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
    assert!(
        p.notes[0].contains("group `c` is limited to 0.500 CPUs, more than its parent pod (0.250)"),
        "{}",
        p.notes[0]
    );
    let why = v1_refuses(&p.runs[0]).expect("v1 refuses it");
    assert!(why.contains("group `c`") && why.contains("pod"), "{why}");
}

#[test]
fn a_change_that_puts_a_parent_below_a_child_is_refused_for_cgroup_v1_only_then() {
    let change = "[[change]]\nat = \"1s\"\ngroup = \"pod\"\nlimit = { cpus = 0.25 }\n";
    let p = plan(&tree("{ cpus = 1 }", "{ cpus = 0.5 }", change)).unwrap();
    assert!(p.notes.is_empty(), "{:?}", p.notes);
    let r = &p.runs[0];
    assert_eq!(r.changes.len(), 1);
    assert_eq!(r.changes[0].group, Some(0));
    assert_eq!(r.changes[0].at, Span::from_millis(1000));
    let why = v1_refuses(r).expect("v1 refuses the change");
    assert!(
        why.contains("after") || why.contains("1s") || why.contains("at "),
        "{why}"
    );
    // Children first: lowering the child, then the pod, is fine.
    let both = "[[change]]\nat = \"1s\"\ngroup = \"c\"\nlimit = { cpus = 0.2 }\n\
                [[change]]\nat = \"1s\"\ngroup = \"pod\"\nlimit = { cpus = 0.25 }\n";
    let p = plan(&tree("{ cpus = 1 }", "{ cpus = 0.5 }", both)).unwrap();
    assert_eq!(v1_refuses(&p.runs[0]), None);
}

#[test]
fn requests_become_shares_as_kubelet_converts_them() {
    let p = plan(&tree("{ request = \"750m\" }", "{ request = 0.25 }", "")).unwrap();
    let w = |g: &PlannedGroup| g.limit.as_ref().and_then(|l| l.weight);
    assert_eq!(w(&p.runs[0].groups[0]), Some(Weight::Shares(768)));
    assert_eq!(w(&p.runs[0].groups[1]), Some(Weight::Shares(256)));
}

#[test]
fn a_groups_limit_can_be_swept_as_a_whole_table() {
    let text = format!(
        "{}[sweep]\n\"group.pod.limit\" = [{{ quota = \"max\" }}, {{ millicores = 1000 }}]\n",
        tree("{ quota = \"max\" }", "{ cpus = 0.5 }", "")
    );
    let p = plan(&text).unwrap();
    assert_eq!(p.runs.len(), 2);
    assert_eq!(quota(&p.runs[0].groups[0]), Some((None, 100_000)));
    assert_eq!(quota(&p.runs[1].groups[0]), Some((Some(100_000), 100_000)));
}

#[test]
fn the_period_goes_with_the_units_system() {
    // kubelet's --cpu-cfs-quota-period, and its 1 ms floor at a 10 ms period.
    let p = plan(&tree(
        "{ millicores = 50, quota_period = \"10ms\" }",
        "{ quota = \"1ms\", period = \"10ms\" }",
        "",
    ))
    .unwrap();
    assert_eq!(quota(&p.runs[0].groups[0]), Some((Some(1000), 10_000)));
    let e = plan(&tree(
        "{ cpus = 0.5, quota_period = \"10ms\" }",
        "{ cpus = 0.1 }",
        "",
    ))
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("group.limit.quota_period"), "{e}");
}
