use super::*;
use fibtest::cpulist::CpuList;

fn two_cpus() -> CpuList {
    "0-1".parse().unwrap()
}

fn plan(text: &str) -> Result<Plan, ScenarioError> {
    let s = parse(text, "t.toml")?;
    resolve(&s, "t.toml", &two_cpus()).map_err(|e| locate(e, text))
}

#[test]
fn builtin_default_resolves_to_the_conceptual_model() {
    let p = plan(BUILTIN_DEFAULT).unwrap();
    assert_eq!(p.runs.len(), 1);
    let r = &p.runs[0];
    assert_eq!(
        r.limiter,
        Limiter::Cfs(CfsLimit {
            quota_us: Some(40_000),
            period_us: 100_000,
            burst_us: 0
        })
    );
    match r.workload() {
        Workload::Requests { work, count, .. } => {
            assert_eq!(*work, Span::from_millis(200));
            assert_eq!(*count, 5);
        }
        other => panic!("unexpected workload {other:?}"),
    }
}

#[test]
fn unknown_field_is_named_with_its_line() {
    let text = "name = \"x\"\n[limiter]\nkind = \"cfs\"\nquotaa = \"40ms\"\n[workload]\nkind = \"requests\"\nwork = \"1ms\"\n";
    let e = plan(text).unwrap_err();
    // Named with the table it is in.
    assert_eq!(e.field.as_deref(), Some("limiter.quotaa"));
    assert_eq!(e.line, Some(4));
    assert!(
        e.to_string()
            .starts_with("t.toml:4: field `limiter.quotaa`"),
        "{e}"
    );
}

#[test]
fn the_field_of_a_line_is_named_with_its_table() {
    let text = "name = \"x\"\n[limiter]\nkind = \"cfs\"\n\n[[group]]\nname = \"a\"\n[sweep]\n\"limiter.quota\" = []\n";
    assert_eq!(super::field_at_line(text, 1).as_deref(), Some("name"));
    assert_eq!(
        super::field_at_line(text, 3).as_deref(),
        Some("limiter.kind")
    );
    assert_eq!(super::field_at_line(text, 4), None);
    assert_eq!(super::field_at_line(text, 6).as_deref(), Some("group.name"));
    assert_eq!(
        super::field_at_line(text, 8).as_deref(),
        Some("sweep.\"limiter.quota\"")
    );
}

#[test]
fn bad_duration_names_its_line() {
    let text = "name = \"x\"\n[workload]\nkind = \"requests\"\nwork = \"200\"\n";
    let e = plan(text).unwrap_err();
    assert_eq!(e.line, Some(4));
    assert!(e.message.contains("not a duration"), "{e}");
}

#[test]
fn field_of_another_kind_is_rejected_with_field_and_line() {
    let text = "name = \"x\"\n[limiter]\nkind = \"none\"\nquota = \"40ms\"\n[workload]\nkind = \"requests\"\nwork = \"1ms\"\n";
    let e = plan(text).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("limiter.quota"));
    assert_eq!(e.line, Some(4));
    let text = "name = \"x\"\n[workload]\nkind = \"requests\"\nwork = \"1ms\"\nfast = 2\n";
    let e = plan(text).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("workload.fast"));
    assert_eq!(e.line, Some(5));
}

#[test]
fn cfs_limits_are_checked_against_kernel_rules() {
    let base = |lim: &str| {
        format!("name = \"x\"\n[limiter]\nkind = \"cfs\"\n{lim}\n[workload]\nkind = \"requests\"\nwork = \"1ms\"\n")
    };
    assert_eq!(
        plan(&base("")).unwrap_err().field.as_deref(),
        Some("limiter.quota")
    );
    assert_eq!(
        plan(&base("quota = \"500us\""))
            .unwrap_err()
            .field
            .as_deref(),
        Some("limiter.quota")
    );
    assert_eq!(
        plan(&base("quota = \"40ms\"\nperiod = \"2s\""))
            .unwrap_err()
            .field
            .as_deref(),
        Some("limiter.period")
    );
    assert_eq!(
        plan(&base("quota = \"40ms\"\nburst = \"50ms\""))
            .unwrap_err()
            .field
            .as_deref(),
        Some("limiter.burst")
    );
    assert_eq!(
        plan(&base("quota = \"max\"\nburst = \"5ms\""))
            .unwrap_err()
            .field
            .as_deref(),
        Some("limiter.burst")
    );
    let p = plan(&base("quota = \"max\"")).unwrap();
    assert_eq!(p.runs[0].limiter.cap_cpus(), None);
    let p = plan(&base("quota = \"40ms\"\nburst = \"20ms\"")).unwrap();
    assert_eq!(p.runs[0].limiter.cap_cpus(), Some(0.4));
}

#[test]
fn sweep_expands_with_repeats_and_params() {
    let text = "name = \"x\"\nrepeats = 2\n[limiter]\nkind = \"cfs\"\nquota = \"40ms\"\n[workload]\nkind = \"requests\"\nwork = \"1ms\"\n[sweep]\n\"limiter.quota\" = [\"20ms\", \"max\", \"80ms\"]\n";
    let p = plan(text).unwrap();
    assert_eq!(p.swept, vec!["limiter.quota".to_string()]);
    assert_eq!(p.runs.len(), 6);
    let caps: Vec<Option<f64>> = p.runs.iter().map(|r| r.limiter.cap_cpus()).collect();
    assert_eq!(
        caps,
        vec![Some(0.2), Some(0.2), None, None, Some(0.8), Some(0.8)]
    );
    assert_eq!(
        p.runs[2].params,
        vec![("limiter.quota".into(), "max".into())]
    );
    assert_eq!(p.runs[3].repeat, 1);
    assert_eq!(p.runs[3].config, 1);
    assert_eq!(p.runs[5].index, 5);
}

#[test]
fn two_sweeps_make_a_cartesian_product() {
    let text = "name = \"x\"\n[limiter]\nkind = \"cfs\"\nquota = \"40ms\"\n[workload]\nkind = \"requests\"\nwork = \"1ms\"\n[sweep]\n\"limiter.quota\" = [\"20ms\", \"40ms\"]\n\"workload.count\" = [1, 2, 3]\n";
    let p = plan(text).unwrap();
    assert_eq!(p.runs.len(), 6);
    assert_eq!(p.runs[5].params[1], ("workload.count".into(), "3".into()));
}

#[test]
fn bad_sweep_value_or_path_is_named() {
    let text = "name = \"x\"\n[limiter]\nkind = \"cfs\"\nquota = \"40ms\"\n[workload]\nkind = \"requests\"\nwork = \"1ms\"\n[sweep]\n\"limiter.quota\" = [\"20\"]\n";
    let e = plan(text).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("sweep"));
    assert!(e.message.contains("limiter.quota = 20"), "{e}");
    let text = "name = \"x\"\n[workload]\nkind = \"requests\"\nwork = \"1ms\"\n[sweep]\n\"name\" = [\"a\"]\n";
    let e = plan(text).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("sweep.\"name\""));
}

#[test]
fn cpus_outside_the_allowed_set_are_rejected() {
    let text =
        "name = \"x\"\n[workload]\nkind = \"fibtest\"\nfast_cpus = \"0\"\nslow_cpus = \"1-3\"\n";
    let e = plan(text).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("workload.slow_cpus"));
    assert!(e.message.contains("CPU 2"), "{e}");
    assert_eq!(e.line, Some(5));
}

#[test]
fn fibtest_defaults_follow_the_allowed_cpus() {
    let p = plan("name = \"x\"\n[workload]\nkind = \"fibtest\"\n").unwrap();
    match p.runs[0].workload() {
        Workload::Fibtest {
            fast,
            slow,
            fast_cpus,
            slow_cpus,
            ..
        } => {
            assert_eq!((*fast, *slow), (1, 1));
            assert_eq!(fast_cpus.to_string(), "0");
            assert_eq!(slow_cpus.to_string(), "1");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_names_and_repeats() {
    let e = plan("name = \"../x\"\n[workload]\nkind = \"duty\"\non = \"1s\"\n").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("name"));
    assert_eq!(e.line, Some(1));
    let e =
        plan("name = \"x\"\nrepeats = 0\n[workload]\nkind = \"duty\"\non = \"1s\"\n").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("repeats"));
}

#[test]
fn phase_needs_a_quota_that_throttles_visibly() {
    let base = |lim: &str| {
        format!("name = \"x\"\n[limiter]\n{lim}\n[workload]\nkind = \"requests\"\nwork = \"1ms\"\nphase = \"10ms\"\n")
    };
    for lim in [
        "kind = \"none\"",
        "kind = \"cfs\"\nquota = \"max\"",
        "kind = \"cfs\"\nquota = \"200ms\"",
        "kind = \"cfs\"\nquota = \"90ms\"",
        "kind = \"cfs\"\nquota = \"4ms\"\nperiod = \"10ms\"",
    ] {
        let text = base(lim);
        let e = plan(&text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("workload.phase"), "{lim}: {e}");
        let line = text.lines().nth(e.line.unwrap() - 1).unwrap();
        assert!(line.starts_with("phase"), "{e} points at `{line}`");
    }
    let p = plan(&base("kind = \"cfs\"\nquota = \"40ms\"")).unwrap();
    assert_eq!(
        p.runs[0].phase,
        Some(PeriodPhase {
            period_us: 100_000,
            phase_us: 10_000,
            sync_gap_us: 30_000
        })
    );
}

#[test]
fn fibtest_args_carry_every_setting() {
    let p = plan(BUILTIN_DEFAULT).unwrap();
    let args = p.runs[0].fibtest_args(0);
    assert_eq!(
        args,
        [
            "requests",
            "--work",
            "200ms",
            "--count",
            "5",
            "--interval",
            "1s",
            "--threads",
            "1",
            "--align",
            "100ms",
            "--sync-gap",
            "30ms",
            "--phase",
            "0ms"
        ]
    );
}

#[test]
fn a_whole_limiter_table_can_be_swept() {
    let text = "name = \"x\"\n[workload]\nkind = \"duty\"\non = \"1s\"\n[sweep]\n\"limiter\" = [{ kind = \"cfs\", quota = \"40ms\" }, { kind = \"signal\", by = \"group\", share = 0.4 }]\n";
    let p = plan(text).unwrap();
    assert_eq!(p.runs.len(), 2);
    assert_eq!(p.runs[0].limiter.name(), "cfs");
    assert_eq!(p.runs[1].limiter.name(), "signal");
    assert_eq!(p.runs[1].limiter.target_share(), Some(0.4));
    assert_eq!(p.runs[0].params[0].1, "kind=cfs quota=40ms");
}

#[test]
fn limiter_kinds_check_their_fields() {
    let base = |lim: &str| {
        format!("name = \"x\"\n[limiter]\n{lim}\n[workload]\nkind = \"duty\"\non = \"1s\"\n")
    };
    let field = |lim: &str| plan(&base(lim)).unwrap_err().field.unwrap();
    assert_eq!(field("kind = \"signal\"\nshare = 0.4"), "limiter.by");
    assert_eq!(field("kind = \"signal\"\nby = \"group\""), "limiter.share");
    assert_eq!(
        field("kind = \"signal\"\nby = \"group\"\nshare = 1.5"),
        "limiter.share"
    );
    assert_eq!(
        field("kind = \"freezer\"\nshare = 0.4\non = \"1s\""),
        "limiter.share"
    );
    assert_eq!(
        field("kind = \"freezer\"\non = \"1s\"\ncycle = \"1s\""),
        "limiter.cycle"
    );
    assert_eq!(
        field("kind = \"freezer\"\nshare = 0.4\nby = \"group\""),
        "limiter.by"
    );
    assert_eq!(field("kind = \"cpuset\""), "limiter.cpus");
    assert_eq!(field("kind = \"cpuset\"\ncpus = \"7\""), "limiter.cpus");
    assert_eq!(field("kind = \"command\""), "limiter.command");
    assert_eq!(
        field("kind = \"command\"\ncommand = \"cpulimit -l {percent} -p {pid}\""),
        "limiter.share"
    );
    assert_eq!(
        field("kind = \"command\"\ncommand = \"x {nope}\""),
        "limiter.command"
    );
    assert_eq!(
        field("kind = \"cfs\"\nquota = \"40ms\"\nshare = 0.4"),
        "limiter.share"
    );
    assert_eq!(field("kind = \"weight\""), "limiter.kind");
    let p = plan(&base(
        "kind = \"signal\"\nby = \"tree\"\non = \"1s\"\noff = \"9s\"",
    ))
    .unwrap();
    assert_eq!(p.runs[0].limiter.cap_cpus(), Some(0.1));
    assert_eq!(p.runs[0].limiter.target_share(), None);
}

#[test]
fn groups_with_weights() {
    let text = "name = \"w\"\n[limiter]\nkind = \"weight\"\n[[group]]\nname = \"a\"\nweight = 150\nworkload = { kind = \"duty\", on = \"1s\" }\n[[group]]\nname = \"b\"\nworkload = { kind = \"duty\", on = \"1s\" }\n";
    let p = plan(text).unwrap();
    let g = &p.runs[0].groups;
    assert_eq!(g.len(), 2);
    assert_eq!((g[0].weight, g[1].weight), (Some(150), Some(100)));
    let dup = text.replace("name = \"b\"", "name = \"a\"");
    assert_eq!(plan(&dup).unwrap_err().field.as_deref(), Some("group.name"));
    let both = format!("{text}[workload]\nkind = \"duty\"\non = \"1s\"\n");
    assert_eq!(plan(&both).unwrap_err().field.as_deref(), Some("workload"));
    let unweighted = text.replace("kind = \"weight\"", "kind = \"none\"");
    assert_eq!(
        plan(&unweighted).unwrap_err().field.as_deref(),
        Some("group.weight")
    );
}

#[test]
fn command_workloads() {
    let text =
        "name = \"c\"\n[workload]\nkind = \"command\"\ncommand = \"sleep 1\"\nduration = \"2s\"\n";
    let p = plan(text).unwrap();
    assert_eq!(p.runs[0].workload().name(), "command");
    let e = plan("name = \"c\"\n[workload]\nkind = \"command\"\n").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("workload.command"));
}

#[test]
fn credits_limiter_fields() {
    let base = |lim: &str| {
        format!("name = \"x\"\n[limiter]\nkind = \"credits\"\n{lim}\n[workload]\nkind = \"duty\"\non = \"1s\"\n")
    };
    let p = plan(&base(
        "baseline = 0.1\nbalance_max = \"30s\"\nbalance_start = \"5s\"",
    ))
    .unwrap();
    match &p.runs[0].limiter {
        Limiter::Credits(m) => {
            assert_eq!(
                (m.baseline, m.balance_max_s, m.balance_start_s),
                (0.1, 30.0, 5.0)
            );
            assert_eq!(m.period_us, 100_000);
        }
        other => panic!("{other:?}"),
    }
    let field = |lim: &str| plan(&base(lim)).unwrap_err().field.unwrap();
    assert_eq!(field("balance_max = \"30s\""), "limiter.baseline");
    assert_eq!(
        field("baseline = 1.5\nbalance_max = \"30s\""),
        "limiter.baseline"
    );
    assert_eq!(field("baseline = 0.1"), "limiter.balance_max");
    assert_eq!(
        field("baseline = 0.1\nbalance_max = \"3s\"\nbalance_start = \"5s\""),
        "limiter.balance_start"
    );
    assert_eq!(
        field("baseline = 0.1\nbalance_max = \"3s\"\nquota = \"10ms\""),
        "limiter.quota"
    );
    assert_eq!(
        field("baseline = 0.001\nbalance_max = \"3s\""),
        "limiter.period"
    );
}
