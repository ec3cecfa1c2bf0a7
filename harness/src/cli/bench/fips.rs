//! `throttlebench bench fips`: the speed of the FIPS 140-2 tests (`probe::fips`) against
//! `rngtest` (rng-tools5) on the same pseudo-random file, with a check that both count
//! the same.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// One row of the FIPS table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FipsSpeed {
    /// "throttlebench" (`probe::fips::test_bytes` on the input in memory) or "rngtest"
    /// (the whole process, reading the file on its stdin).
    pub tool: &'static str,
    pub input_bytes: u64,
    /// Timed runs; the fastest is reported.
    pub runs: u32,
    /// Wall time of the fastest run, in s.
    pub best_s: f64,
    /// Input bits / 2^20 / best_s.
    pub mibit_per_s: f64,
    pub blocks: u64,
    pub failures: u64,
    pub bits_received: u64,
}

/// `bench fips`: time our FIPS tests and rngtest on `mib` MiB of pseudo-random bytes.
pub fn fips_bench(mib: u64, repeat: u32, csv: Option<&Path>) -> Result<()> {
    use crate::probe::fips;
    use std::time::Instant;

    let n = usize::try_from(mib.checked_mul(1 << 20).context("--mib is too large")?)?;
    let data = fips::xorshift_bytes(0x5EED, n);
    // rngtest reads the bytes from a file, as `rngtest < FILE` would. The file is unlinked
    // as soon as it is made, so nothing stays in the temp folder however this ends.
    let path = std::env::temp_dir().join(format!("throttlebench-fips-{}.bin", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("making {}", path.display()))?;
    std::fs::remove_file(&path).with_context(|| format!("unlinking {}", path.display()))?;
    {
        use std::io::Write;
        file.write_all(&data)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mibits = n as f64 * 8.0 / (1u64 << 20) as f64;
    let row = |tool, best: f64, c: fips::FipsCounts| FipsSpeed {
        tool,
        input_bytes: n as u64,
        runs: repeat,
        best_s: best,
        mibit_per_s: mibits / best,
        blocks: c.blocks,
        failures: c.failures,
        bits_received: c.bits_received,
    };

    let mut best = f64::INFINITY;
    let mut ours = fips::FipsCounts::default();
    for _ in 0..repeat {
        let t = Instant::now();
        ours = fips::test_bytes(std::hint::black_box(&data));
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mut rows = vec![row("throttlebench", best, ours)];

    let mut theirs = None;
    let mut version = String::new();
    let mut own_speed = String::new();
    let mut best = f64::INFINITY;
    for _ in 0..repeat {
        // The child's stdin shares this file's offset: rewind it for each run.
        {
            use std::io::Seek;
            file.rewind()?;
        }
        let stdin = file.try_clone()?;
        let t = Instant::now();
        let out = match Command::new("rngtest")
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(e).context("running rngtest"),
        };
        best = best.min(t.elapsed().as_secs_f64());
        let report = String::from_utf8_lossy(&out.stderr);
        version = report.lines().next().unwrap_or("").to_string();
        // Its own figure: the time in fips_run_rng_test per block, without its reads.
        if let Some(l) = report.lines().find(|l| l.contains("FIPS tests speed")) {
            own_speed = l.trim_start_matches("rngtest: ").to_string();
        }
        // rngtest exits 1 when a block failed: not an error here.
        let c = fips::parse_rngtest(&report)
            .with_context(|| format!("rngtest ({}) printed no counts:\n{report}", out.status))?;
        theirs = Some(c);
    }
    if let Some(c) = theirs {
        rows.push(row("rngtest", best, c));
    }

    println!(
        "{:<14} {:>9} {:>10} {:>9} {:>8} {:>9}",
        "tool", "input_MiB", "Mibit/s", "best_s", "blocks", "failures"
    );
    for r in &rows {
        println!(
            "{:<14} {:>9} {:>10.1} {:>9.4} {:>8} {:>9}",
            r.tool, mib, r.mibit_per_s, r.best_s, r.blocks, r.failures
        );
    }
    if let Some(path) = csv {
        let mut w =
            csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
        for r in &rows {
            w.serialize(r)?;
        }
        w.flush()?;
    }
    match theirs {
        None => {
            println!("rngtest not found (apt-get install rng-tools5): only throttlebench's figure")
        }
        Some(c) => {
            // The Debian package's version, when there is one.
            let package = Command::new("dpkg-query")
                .args(["-W", "-f", "${Version}", "rng-tools5"])
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| format!(" (rng-tools5 {})", String::from_utf8_lossy(&o.stdout)))
                .unwrap_or_default();
            println!(
                "speed ratio: {:.1}x (throttlebench / {version}{package}), best of {repeat} runs each",
                rows[0].mibit_per_s / rows[1].mibit_per_s,
            );
            println!("throttlebench: test_bytes on the input in memory; rngtest: the whole process, reading the file");
            if !own_speed.is_empty() {
                println!("rngtest's own figure (per block, without its reads): {own_speed}");
            }
            if c != ours {
                anyhow::bail!("the counts differ:\nthrottlebench:\n{ours}\nrngtest:\n{c}");
            }
            println!("counts equal on every line of rngtest's report:\n{ours}");
        }
    }
    std::io::stdout().flush()?;
    Ok(())
}
