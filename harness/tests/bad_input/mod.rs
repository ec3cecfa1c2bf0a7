//! Malformed scenario files (harness/tests/corpus/): each gets one line of error that names
//! the file, the line and the field, and exit code 3; none panics. Each file says the
//! field its error must name in its first line (`# field: limiter.quota`).

use crate::common::*;
use std::path::Path;

#[test]
fn every_malformed_scenario_names_its_file_line_and_field() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    // docs/reliability.md says how many there are: the claim and the corpus agree.
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/reliability.md"),
    )
    .unwrap();
    let said: usize = doc
        .split("`harness/tests/corpus/` holds ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("docs/reliability.md says how many corpus files there are");
    assert_eq!(
        files.len(),
        said,
        "the corpus and docs/reliability.md disagree"
    );
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let field = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# field: "))
            .unwrap_or_else(|| panic!("{}: no `# field:` line", f.display()));
        let no_line = text.contains("# line: none");
        let out = tb()
            .args(["run", f.to_str().unwrap(), "--dry-run"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let lines: Vec<&str> = err.lines().collect();
        let first = lines.first().copied().unwrap_or("");
        let name = f.display().to_string();
        let located = if no_line {
            first.contains(&format!("{name}: field `{field}`: "))
        } else {
            first.starts_with(&format!("throttlebench: error: {name}:"))
                && first[format!("throttlebench: error: {name}:").len()..]
                    .split(':')
                    .next()
                    .is_some_and(|n| n.parse::<usize>().is_ok())
                && first.contains(&format!(": field `{field}`: "))
        };
        if out.status.code() != Some(3) || lines.len() != 1 || !located || err.contains("panicked")
        {
            failures.push(format!(
                "{}: exit {:?}, stderr {err:?}",
                f.file_name().unwrap().to_string_lossy(),
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
