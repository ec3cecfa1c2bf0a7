//! Kernel bisection, the parts that run fast (docs/bisect.md): the planted-regression
//! series of scripts/bisect-demo applies to Debian's linux-source-6.12 and plants exactly
//! one change of code; `check` gives the recorded good and bad kernels' result folders
//! their verdicts (results/reference/cfs-slice-expiry-*), and answers 125 where the
//! machine cannot tell. The whole bisect (builds and boots, about 40 minutes here) is
//! scripts/bisect-demo.sh, run by hand.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = "/usr/src/linux-source-6.12.tar.xz";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn patches() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("scripts/bisect-demo"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    v.sort();
    v
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether an added line of C is a comment (or blank): the harmless commits add no code.
fn comment_line(l: &str) -> bool {
    let t = l.trim();
    t.is_empty() || t.starts_with("/*") || t.starts_with('*') || t.starts_with("//")
}

#[test]
fn the_planted_series_applies_to_the_source_and_plants_one_change() {
    if !Path::new(SOURCE).is_file() {
        let why = format!("the bisect series: needs {SOURCE} (apt-get install linux-source-6.12)");
        if crate::common::ci() {
            panic!("{why}");
        }
        eprintln!("skipped: {why}");
        return;
    }
    let series = patches();
    assert_eq!(series.len(), 8, "{series:?}");
    // The files the series touches, taken from the tarball as it is.
    let mut files: Vec<String> = Vec::new();
    for p in &series {
        for l in std::fs::read_to_string(p).unwrap().lines() {
            if let Some(rest) = l.strip_prefix("diff --git a/") {
                let f = rest.split(" b/").next().unwrap().to_string();
                if !files.contains(&f) {
                    files.push(f);
                }
            }
        }
    }
    let dir = TempDir::new("bisect-series");
    let st = Command::new("tar")
        .current_dir(dir.path())
        .args(["xf", SOURCE, "--strip-components=1"])
        .args(files.iter().map(|f| format!("linux-source-6.12/{f}")))
        .status()
        .unwrap();
    assert!(st.success(), "tar could not extract {files:?}");
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A", "-f"]);
    git(dir.path(), &["commit", "-q", "-m", "source"]);
    let mut am = vec!["am", "-q"];
    let names: Vec<String> = series.iter().map(|p| p.display().to_string()).collect();
    am.extend(names.iter().map(String::as_str));
    git(dir.path(), &am);
    let log = git(
        dir.path(),
        &["log", "--format=%s", "--reverse", "HEAD~8..HEAD"],
    );
    let subjects: Vec<&str> = log.lines().collect();
    assert_eq!(subjects.len(), 8);
    assert_eq!(
        subjects[4],
        "sched/fair: expire cpu-local runtime at the end of each period"
    );
    // Only the planted commit changes code: the others add documentation, help text or
    // comments (C lines added elsewhere are all comments).
    for (i, p) in series.iter().enumerate() {
        let text = std::fs::read_to_string(p).unwrap();
        let mut file = String::new();
        let mut code = Vec::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("+++ b/") {
                file = rest.to_string();
            } else if let Some(added) = l.strip_prefix('+') {
                let c_file = file.ends_with(".c") || file.ends_with(".h");
                let built = !file.starts_with("tools/");
                if c_file && built && !comment_line(added) {
                    code.push(format!("{file}: {added}"));
                }
            }
        }
        if i == 4 {
            assert!(
                code.iter()
                    .any(|c| c.contains("expire_cfs_rq_runtime(cfs_rq);")),
                "{code:?}"
            );
            assert!(
                code.iter().all(|c| c.starts_with("kernel/sched/")),
                "{code:?}"
            );
        } else {
            assert!(code.is_empty(), "{}: adds code: {code:?}", p.display());
        }
    }
    // The demonstration's script is valid shell.
    let st = Command::new("bash")
        .args(["-n"])
        .arg(repo().join("scripts/bisect-demo.sh"))
        .status()
        .unwrap();
    assert!(st.success());
}

fn check_from(dir: &Path, scenario: Option<&str>) -> std::process::Output {
    let mut c = tb();
    c.current_dir(repo()).arg("check");
    if let Some(s) = scenario {
        c.arg(s);
    }
    c.arg("--from").arg(dir).output().unwrap()
}

#[test]
fn the_recorded_good_and_bad_kernels_get_their_verdicts() {
    let good = repo().join("results/reference/cfs-slice-expiry-good");
    let bad = repo().join("results/reference/cfs-slice-expiry-bad");
    for (dir, want) in [(&good, 0), (&bad, 1)] {
        // With the expectations stored in the folder, and with the scenario file's.
        for scenario in [None, Some("scenarios/cfs-slice-expiry.toml")] {
            let out = check_from(dir, scenario);
            assert_eq!(
                out.status.code(),
                Some(want),
                "{} {scenario:?}: {}",
                dir.display(),
                text(&out)
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            // The margin is reported, on the side the verdict says.
            let margin = stdout
                .split("margin ")
                .nth(1)
                .and_then(|m| m.split_whitespace().next())
                .unwrap_or_else(|| panic!("no margin in {stdout}"));
            assert_eq!(margin.starts_with('+'), want == 0, "{stdout}");
        }
    }
    // The same folder recorded on a machine with too few CPUs cannot tell: 125, not 0.
    let few = TempDir::new("few-cpus");
    for f in ["summary.csv", "run.json"] {
        std::fs::copy(good.join(f), few.path().join(f)).unwrap();
    }
    let run_json = few.path().join("run.json");
    let mut j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&run_json).unwrap()).unwrap();
    j["host"]["cpus"] = 2.into();
    std::fs::write(&run_json, j.to_string()).unwrap();
    let out = check_from(few.path(), None);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs at least 8 CPUs"));
}

#[test]
fn too_few_cpus_here_is_125_before_anything_runs() {
    let cpus = throttlebench::scenario::requires::usable_cpus();
    if cpus >= 8 {
        eprintln!("skipped: this machine has {cpus} CPUs, enough for cfs-slice-expiry");
        return;
    }
    let dir = TempDir::new("expiry-here");
    let out = tb()
        .current_dir(repo())
        .args(["check", "scenarios/cfs-slice-expiry.toml", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot tell") && err.contains("--cpus 8"),
        "{err}"
    );
    // Nothing ran: no result folder.
    assert!(!dir.path().join("out").exists());
}

#[test]
fn the_selftest_verdicts_of_recorded_guest_runs() {
    // Recorded in the 6.12 guest (docs/kernels.md); the selftests' own checks held there.
    for name in [
        "selftest-cpucg-max",
        "selftest-cpucg-weight-overprovisioned",
        "selftest-cpucg-weight-underprovisioned",
    ] {
        let dir = repo().join(format!("results/reference/{name}-6.12"));
        let out = check_from(&dir, None);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        if name.contains("weight") {
            assert!(stdout.contains("the selftest's own checks"), "{stdout}");
            assert!(stdout.contains("PASS  test_cpucg_weight"), "{stdout}");
        }
    }
    // A group whose weight did not count fails the overprovisioned selftest: the recorded
    // underprovisioned run (equal shares) judged by the overprovisioned rule.
    let dir = repo().join("results/reference/selftest-cpucg-weight-underprovisioned-6.12");
    let scenario = TempDir::new("selftest-swap");
    let text_over = std::fs::read_to_string(
        repo().join("scenarios/selftest-cpucg-weight-overprovisioned.toml"),
    )
    .unwrap();
    let f = scenario.file("over.toml", &text_over);
    let out = check_from(&dir, Some(f.to_str().unwrap()));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("FAIL  test_cpucg_weight_overprovisioned")
    );
}
