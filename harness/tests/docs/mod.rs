//! The commands the README and docs/ show print what they show.
//!
//! Every ```` ```console ```` block of README.md and docs/*.md is run: each `$ ` line is a
//! command (run with `sh -c` from the repository's root, with this build's binaries first
//! on PATH, stderr after stdout as a terminal shows them), and the lines after it, up to
//! the next `$ ` line, are its output. In the expected output a line `...` stands for
//! any number of lines, and `[..]` within a line for any text. Blocks whose output
//! depends on the machine or the moment (measurements) are fenced as ```` ```text ````
//! instead, with the command and the machine in the prose around them: those are re-run
//! by hand when behaviour changes (rule 12 of the developers' guide), not here.

use std::path::{Path, PathBuf};

/// One command and what it should print.
#[derive(Debug)]
struct Example {
    file: PathBuf,
    line: usize,
    command: String,
    expected: Vec<String>,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The console examples of one markdown file.
fn examples(path: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: Vec<Example> = Vec::new();
    let mut in_console = false;
    let mut in_other = false;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        if fence {
            if in_console || in_other {
                in_console = false;
                in_other = false;
            } else if line.trim() == "```console" {
                in_console = true;
            } else {
                in_other = true;
            }
            continue;
        }
        if !in_console {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            out.push(Example {
                file: path.to_path_buf(),
                line: i + 1,
                command: cmd.to_string(),
                expected: Vec::new(),
            });
        } else if let Some(e) = out.last_mut() {
            e.expected.push(line.to_string());
        }
    }
    out
}

/// Whether `line` matches `pattern`, where `[..]` is any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || !line[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `lines` match `pattern`, where a `...` line is any number of lines.
fn matches(pattern: &[String], lines: &[&str]) -> bool {
    match pattern.split_first() {
        None => lines.is_empty(),
        Some((p, rest)) if p == "..." => {
            (0..=lines.len()).any(|skip| matches(rest, &lines[skip..]))
        }
        Some((p, rest)) => {
            !lines.is_empty() && line_matches(p, lines[0]) && matches(rest, &lines[1..])
        }
    }
}

#[test]
fn wildcards_match_what_they_say() {
    assert!(line_matches(
        "run 1/1: cpu [..] CPUs",
        "run 1/1: cpu 0.401 CPUs"
    ));
    assert!(!line_matches(
        "run 1/1: cpu [..] CPUs",
        "run 1/1: cpu 0.401 CPU"
    ));
    assert!(line_matches("[..]", ""));
    let p: Vec<String> = ["a", "...", "d"].iter().map(|s| s.to_string()).collect();
    assert!(matches(&p, &["a", "b", "c", "d"]));
    assert!(matches(&p, &["a", "d"]));
    assert!(!matches(&p, &["a", "b"]));
}

#[test]
fn every_console_example_in_the_docs_prints_what_it_shows() {
    let root = repo();
    let mut files = vec![root.join("README.md"), root.join("fibtest/README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let bin = Path::new(env!("CARGO_BIN_EXE_throttlebench"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    let mut ran = 0;
    for f in &files {
        for ex in examples(f) {
            ran += 1;
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{} 2>&1", ex.command))
                .current_dir(&root)
                .env("PATH", &path)
                .env_remove("CI")
                .output()
                .unwrap();
            let got = String::from_utf8_lossy(&out.stdout).to_string();
            let lines: Vec<&str> = got.lines().collect();
            // Trailing blank lines of a block are layout, not output.
            let mut expected = ex.expected.clone();
            while expected.last().is_some_and(|l| l.trim().is_empty()) {
                expected.pop();
            }
            if !matches(&expected, &lines) {
                failures.push(format!(
                    "{}:{}: `{}` printed:\n{}\n  but the docs show:\n{}",
                    ex.file.strip_prefix(&root).unwrap_or(&ex.file).display(),
                    ex.line,
                    ex.command,
                    got,
                    expected.join("\n")
                ));
            }
        }
    }
    assert!(ran > 0, "no console example found");
    assert!(
        failures.is_empty(),
        "{} of {ran} examples differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
