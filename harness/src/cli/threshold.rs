//! `throttlebench find-threshold`: search for the sustainable duty share, the burst
//! budget and the throttled rate under a scenario's limiter (none: the bare machine).

use crate::cgroup::{self, Hierarchy};
use crate::cli::exit::RunStop;
use crate::runner::{Runner, WorkloadProgram};
use crate::scenario::{self, Limiter, Span};
use crate::signals;
use crate::threshold::cgroup_prober::CgroupProber;
use crate::threshold::search::{search, ProbeRecord, SearchParams};
use crate::units::utc_now;
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct ThresholdArgs {
    #[command(flatten)]
    pub root: super::CgroupRoot,
    /// Scenario whose [limiter] to search under (none, cfs, credits); without one, the
    /// bare machine (a cloud instance's own throttling).
    pub scenario: Option<PathBuf>,
    /// Duty cycle length at which the sustainable share is searched.
    #[arg(long, default_value = "10s")]
    pub cycle: Span,
    /// Total time allowed; the search reports the bracket it has when time runs out.
    #[arg(long, default_value = "30m")]
    pub budget: Span,
    /// Longest full-speed probe for the burst budget (default: a third of the budget).
    #[arg(long)]
    pub max_burst: Option<Span>,
    /// Stop bisecting when the bracket is this narrow (share of a CPU).
    #[arg(long, default_value_t = 0.005)]
    pub resolution: f64,
    /// Cycles per duty probe.
    #[arg(long, default_value_t = 3)]
    pub cycles: u32,
    /// Slices the work rate is counted in.
    #[arg(long, default_value = "100ms")]
    pub slice: Span,
    /// A duty probe is sustainable when the ends of its on-periods keep at least this
    /// share of the unthrottled work rate (0.5: this machine's ordinary stalls never come
    /// near it, throttling always goes below; raise it to ask for more).
    #[arg(long, default_value_t = 0.5)]
    pub sustainable: f64,
    /// Do not draw the search's plot at the end (`throttlebench plot DIR` draws it later).
    #[arg(long)]
    pub no_plot: bool,
    /// Result folder (default: results/threshold-<scenario>/<UTC time>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn run(cgroup_root: &Path, proc_root: &Path, args: &ThresholdArgs) -> Result<PathBuf> {
    let (limiter, name) = match &args.scenario {
        Some(p) => {
            let (sc, text) = scenario::load(p)?;
            let source = p.display().to_string();
            let allowed = super::allowed_cpus()?;
            let l = scenario::resolve::resolve_limiter(&sc.limiter, &source, &allowed)
                .map_err(|e| scenario::locate(e, &text))?;
            (l, sc.name)
        }
        None => (Limiter::None, "machine".to_string()),
    };
    anyhow::ensure!(
        matches!(
            limiter,
            Limiter::None | Limiter::Cfs(_) | Limiter::Credits(_)
        ),
        "find-threshold searches under limiter kinds none, cfs and credits, not {}",
        limiter.name()
    );
    let hierarchy = Hierarchy::detect(cgroup_root)?;
    for s in cgroup::remove_stale(&hierarchy)? {
        eprintln!(
            "throttlebench: removed {} left by dead run {}",
            s.path.display(),
            s.owner_pid
        );
    }
    signals::install();
    signals::become_subreaper();
    let runner = Runner {
        hierarchy: hierarchy.clone(),
        proc_root: proc_root.to_path_buf(),
        workload: WorkloadProgram::locate()?,
        allowed: super::allowed_cpus()?,
    };
    let (stamp, created) = utc_now();
    // A new folder per search (`-2`, ... when two start in one second), or --out.
    let dir = match &args.out {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            let base = PathBuf::from("results")
                .join(format!("threshold-{name}"))
                .join(stamp);
            crate::report::ResultFolder::fresh(&base)?.path
        }
    };
    let budget = args.budget.0;
    let params = SearchParams {
        cycle: args.cycle.0,
        max_burst: args.max_burst.map(|s| s.0).unwrap_or(budget / 3),
        resolution: args.resolution,
        cycles: args.cycles.max(2),
        budget,
        slice: args.slice.0,
        sustainable: args.sustainable,
    };
    anyhow::ensure!(
        args.sustainable > 0.0 && args.sustainable < 1.0,
        "--sustainable {} is not a share of the unthrottled rate in (0, 1)",
        args.sustainable
    );
    let cg = hierarchy.create_run(&[])?;
    let mut prober = CgroupProber::new(&runner, &cg, limiter.clone());
    let probes_path = dir.join("probes.csv");
    let mut probes_csv = csv::Writer::from_path(&probes_path)
        .with_context(|| format!("creating {}", probes_path.display()))?;
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    eprintln!(
        "throttlebench: finding the threshold under limiter {} (cycle {}, budget {}), probes in {}",
        limiter.name(),
        args.cycle,
        args.budget,
        probes_path.display()
    );
    let t0 = Instant::now();
    let mut write_err: Option<std::io::Error> = None;
    let outcome = search(
        &mut prober,
        &params,
        &mut || t0.elapsed().as_secs_f64(),
        &mut |r: &ProbeRecord, (lo, hi): (f64, f64)| {
            // Every probe is on disk as soon as it is done, so an interrupted search keeps it.
            if let Err(e) = probes_csv
                .serialize(r)
                .and_then(|_| probes_csv.flush().map_err(Into::into))
            {
                write_err.get_or_insert(std::io::Error::other(e.to_string()));
            }
            let line = format!(
                "probe {:>3} {:<9} duty {:>5.1}%: rate {:>5.1}% (end of on-periods {:>5.1}%){}",
                r.probe,
                r.phase,
                r.duty_share * 100.0,
                r.rate_median * 100.0,
                r.rate_end * 100.0,
                if r.throttled { " THROTTLED" } else { "" }
            );
            // A line per probe: above the spinner on a terminal, plain lines otherwise.
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
            bar.set_message(format!(
                "sustainable share in [{:.1}%, {:.1}%]",
                lo * 100.0,
                hi * 100.0
            ));
        },
    );
    bar.finish_and_clear();
    let limiter_report = prober.finish();
    drop(prober);
    let name_cg = cg.name();
    cg.destroy(Duration::from_secs(5))
        .with_context(|| format!("removing cgroup {name_cg}"))?;
    hierarchy.remove_parents_if_empty();
    if let Some(e) = write_err {
        return Err(e).context(format!("writing {}", probes_path.display()));
    }
    let (findings, _) = match outcome {
        Ok(x) => x,
        Err(e) if signals::received().is_some() => {
            return Err(RunStop::Interrupted {
                signal: signals::received().unwrap_or(0),
                dir: dir.display().to_string(),
            })
            .context(e.to_string());
        }
        Err(e) => return Err(e),
    };
    let doc = serde_json::json!({
        "schema_version": 1,
        "created": created,
        "scenario": args.scenario.as_ref().map(|p| p.display().to_string()),
        "limiter": limiter,
        "params": {
            "cycle_s": params.cycle.as_secs_f64(),
            "max_burst_s": params.max_burst.as_secs_f64(),
            "resolution": params.resolution,
            "cycles": params.cycles,
            "budget_s": params.budget.as_secs_f64(),
            "slice_s": params.slice.as_secs_f64(),
        },
        "limiter_report": limiter_report,
    });
    // The findings' fields at the top level, then what the search ran with.
    let mut flat = serde_json::to_value(&findings)?;
    if let (Some(obj), serde_json::Value::Object(full)) = (flat.as_object_mut(), doc) {
        for (k, v) in full {
            obj.insert(k, v);
        }
    }
    let path = dir.join("threshold.json");
    std::fs::write(&path, serde_json::to_string_pretty(&flat)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    match findings.sustainable_share_high {
        Some(high) => println!(
            "sustainable duty share at {} cycles: {} (sustainable at {}, throttled at {})",
            args.cycle,
            pct(findings.sustainable_share),
            pct(findings.sustainable_share_low),
            pct(high)
        ),
        None => println!(
            "sustainable duty share at {} cycles: no upper end found: nothing was throttled, so full speed held for the {:.0} s probed (a longer --max-burst tells whether it lasts)",
            args.cycle, findings.burst_probe_s
        ),
    }
    println!(
        "rule: a duty probe is sustainable when the ends of its on-periods keep at least {} of the unthrottled rate (--sustainable)",
        pct(findings.sustainable_rate)
    );
    for (share, throttled) in &findings.disagreements {
        println!(
            "two probes disagreed at {}: a third decided {}",
            pct(*share),
            if *throttled {
                "throttled"
            } else {
                "sustainable"
            }
        );
    }
    match (findings.burst_budget_s, findings.throttled_share) {
        (Some(b), Some(t)) => println!(
            "burst budget: {b:.1} s at full speed from rest ({:.1} CPU-s of balance); throttled rate {}; rest to refill about {:.0} s (estimated)",
            findings.burst_balance_s.unwrap_or(0.0),
            pct(t),
            findings.recovery_estimate_s.unwrap_or(0.0)
        ),
        _ => println!(
            "no throttling: the rate never collapsed in {:.0} s at full speed",
            findings.burst_probe_s
        ),
    }
    if !args.no_plot {
        super::plot::after_run(&dir);
    }
    println!(
        "{} probes in {:.0} s; {}",
        findings.probes,
        findings.elapsed_s,
        dir.display()
    );
    Ok(dir)
}
