//! FIPS 140-2 counts against the real `rngtest` (Debian package rng-tools5): the same
//! input through `throttlebench::probe::fips` and through `rngtest < FILE` must give the
//! same count on every line of rngtest's report. Without rngtest the tests print why and
//! pass, except in CI (`CI` set), where they fail (`.ci/run` installs rng-tools5).

use crate::common::*;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use throttlebench::probe::fips::{self, Fips, FipsCounts, BLOCK_BYTES};

/// Whether rngtest runs here; if not, skip (or fail in CI).
fn rngtest_or_skip(test: &str) -> bool {
    let found = Command::new("rngtest")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if found {
        return true;
    }
    let why = format!("{test}: needs rngtest (apt-get install rng-tools5)");
    if crate::common::ci() {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    false
}

/// rngtest's counts for `file` on its stdin. It exits 1 when a block failed (or none
/// was tested), 0 when all passed.
fn rngtest(file: &Path, args: &[&str]) -> FipsCounts {
    let out = Command::new("rngtest")
        .args(args)
        .stdin(File::open(file).unwrap())
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let c = fips::parse_rngtest(&String::from_utf8_lossy(&out.stderr))
        .unwrap_or_else(|| panic!("no report from rngtest: {}", text(&out)));
    let want = if c.failures > 0 || c.successes == 0 {
        1
    } else {
        0
    };
    assert_eq!(out.status.code(), Some(want), "{}", text(&out));
    c
}

/// Our counts equal rngtest's, line by line (so a mismatch names the line).
fn assert_same(ours: &FipsCounts, theirs: &FipsCounts) {
    let lines = |c: &FipsCounts| c.to_string().lines().map(String::from).collect::<Vec<_>>();
    assert_eq!(lines(ours), lines(theirs), "ours (left) vs rngtest (right)");
    assert_eq!(ours, theirs);
}

fn block_of(data: &mut [u8], i: usize) -> &mut [u8] {
    &mut data[4 + i * BLOCK_BYTES..4 + (i + 1) * BLOCK_BYTES]
}

/// Bit `i` of a block, most significant bit of each byte first (as rng-tools reads).
fn bit(b: &[u8], i: usize) -> u8 {
    (b[i / 8] >> (7 - i % 8)) & 1
}

fn set_bit(b: &mut [u8], i: usize, v: u8) {
    let m = 0x80 >> (i % 8);
    if v == 1 {
        b[i / 8] |= m;
    } else {
        b[i / 8] &= !m;
    }
}

/// The input of the main comparison: 4 seed bytes, 200 pseudo-random blocks with
/// failing ones spliced in, and 1,234 bytes of a block that is never completed.
fn spliced_input() -> Vec<u8> {
    let mut d = fips::xorshift_bytes(2024, 4 + 200 * BLOCK_BYTES + 1234);
    // Zeros: monobit, poker, runs, long run and continuous run.
    block_of(&mut d, 10).fill(0);
    // Half a block of zeros, starting mid-block.
    block_of(&mut d, 15)[1000..2250].fill(0);
    // A repeated 32-bit word.
    block_of(&mut d, 20).copy_within(800..804, 804);
    // The first word of a block repeats the last word of the block before.
    let last = block_of(&mut d, 29)[BLOCK_BYTES - 4..].to_vec();
    block_of(&mut d, 30)[..4].copy_from_slice(&last);
    // A long run of 30 ones in the middle, and one of 27 zeros across a word boundary.
    let b = block_of(&mut d, 40);
    for i in 7000..7030 {
        set_bit(b, i, 1);
    }
    for i in 64 * 100 - 13..64 * 100 + 14 {
        set_bit(b, i, 0);
    }
    // Biased: about 60% ones.
    let bias = fips::xorshift_bytes(7, BLOCK_BYTES);
    for (x, y) in block_of(&mut d, 50).iter_mut().zip(&bias) {
        *x |= y & (y >> 1) & (y >> 2);
    }
    // Alternating bits.
    block_of(&mut d, 60).fill(0x55);
    // Only the nibbles 0x3, 0x5, 0x6, 0x9, 0xA, 0xC.
    const TWO: [u8; 6] = [0x3, 0x5, 0x6, 0x9, 0xA, 0xC];
    for x in block_of(&mut d, 70).iter_mut() {
        *x = (TWO[(*x >> 4) as usize % 6] << 4) | TWO[(*x & 15) as usize % 6];
    }
    // A run of 25 ones (allowed) and of 26 zeros (not) at the ends of blocks.
    let b = block_of(&mut d, 80);
    for i in 0..25 {
        set_bit(b, i, 1);
    }
    set_bit(b, 25, 0);
    let b = block_of(&mut d, 81);
    set_bit(b, 20000 - 27, 1);
    for i in 20000 - 26..20000 {
        set_bit(b, i, 0);
    }
    // Constant bytes.
    block_of(&mut d, 90).fill(0xFF);
    block_of(&mut d, 91).fill(0x0F);
    // The monobit bounds: 10,275 and 9,725 ones fail, 10,274 and 9,726 pass.
    for (i, ones) in [(100, 10_275), (101, 9_725), (102, 10_274), (103, 9_726)] {
        ones_to(block_of(&mut d, i), ones);
    }
    d
}

/// Flip bits at spread-out places until the block has `target` ones.
fn ones_to(b: &mut [u8], target: u32) {
    let ones = |b: &[u8]| b.iter().map(|x| x.count_ones()).sum::<u32>();
    let mut i = 0;
    while ones(b) != target {
        let up = ones(b) < target;
        let p = (i * 7919) % 20000;
        if bit(b, p) == u8::from(!up) {
            set_bit(b, p, u8::from(up));
        }
        i += 1;
    }
}

#[test]
fn counts_equal_rngtest_on_a_spliced_file() {
    if !rngtest_or_skip("counts_equal_rngtest_on_a_spliced_file") {
        return;
    }
    // rngtest and our tests over the same bytes load a CPU: not beside a measuring test.
    let _x = crate::common::exclusive();
    let dir = TempDir::new("fips");
    let data = spliced_input();
    let file = dir.path().join("input.bin");
    std::fs::write(&file, &data).unwrap();

    let theirs = rngtest(&file, &[]);
    let ours = fips::test_bytes(&data);
    assert_same(&ours, &theirs);
    // Streaming in odd chunks, and from a reader, give the same.
    let mut f = Fips::new();
    for c in data.chunks(4099) {
        f.feed(c);
    }
    assert_same(&f.counts(), &theirs);
    assert_same(
        &fips::test_reader(&mut File::open(&file).unwrap()).unwrap(),
        &theirs,
    );

    // The file really has failures of every kind, and a partial block at the end.
    assert_eq!(theirs.blocks, 200);
    assert_eq!(theirs.bits_received, 8 * data.len() as u64);
    // The 13 spliced failing blocks (block 80's run of 25 passes, as do blocks 102 and
    // 103 at the monobit bounds), and maybe a random one.
    assert!(theirs.failures >= 13, "{theirs}");
    assert!(theirs.successes >= 180, "{theirs}");
    for (name, n) in [
        ("monobit", theirs.monobit),
        ("poker", theirs.poker),
        ("runs", theirs.runs),
        ("long run", theirs.long_run),
        ("continuous run", theirs.continuous_run),
    ] {
        assert!(n >= 2, "{name}: {n} failures only\n{theirs}");
    }
}

#[test]
fn blockcount_matches_rngtest_c() {
    if !rngtest_or_skip("blockcount_matches_rngtest_c") {
        return;
    }
    // rngtest and our tests over the same bytes load a CPU: not beside a measuring test.
    let _x = crate::common::exclusive();
    let dir = TempDir::new("fips-c");
    let data = spliced_input();
    let file = dir.path().join("input.bin");
    std::fs::write(&file, &data).unwrap();
    for n in [1u64, 11, 65] {
        let theirs = rngtest(&file, &["-c", &n.to_string()]);
        let mut f = Fips::with_max_blocks(n);
        for c in data.chunks(10_000) {
            f.feed(c);
        }
        assert_same(&f.counts(), &theirs);
        assert_eq!(theirs.blocks, n);
        assert_eq!(theirs.bits_received, 8 * (4 + n * BLOCK_BYTES as u64));
    }
}

/// Nibble counts of a block (high nibble and low nibble of each byte).
fn nibbles(b: &[u8]) -> [u32; 16] {
    let mut c = [0; 16];
    for &x in b {
        c[(x >> 4) as usize] += 1;
        c[(x & 15) as usize] += 1;
    }
    c
}

/// Nibble `i` of a block: 0 is the high nibble of byte 0, 1 its low nibble.
fn nibble(b: &[u8], i: usize) -> u8 {
    (b[i / 2] >> (4 - 4 * (i % 2))) & 15
}

/// Replace nibble `i` with `v`.
fn set_nibble(b: &mut [u8], i: usize, v: u8) {
    let shift = 4 - 4 * (i % 2);
    b[i / 2] = (b[i / 2] & !(15 << shift)) | (v << shift);
}

/// Split runs of 6 or more ones that start before bit `keep_from` (at their third bit)
/// until `target` runs of 6 or more ones are left in the block.
fn long_one_runs_to(b: &mut [u8], target: usize, keep_from: usize) {
    assert!(long_one_runs(b).len() >= target);
    while long_one_runs(b).len() > target {
        let start = long_one_runs(b)[0];
        assert!(start < keep_from, "no run left to split");
        set_bit(b, start + 2, 0);
    }
}

/// Starts of the runs of 6 or more ones in a block.
fn long_one_runs(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < 20000 {
        let start = i;
        while i < 20000 && bit(b, i) == bit(b, start) {
            i += 1;
        }
        if bit(b, start) == 1 && i - start >= 6 {
            out.push(start);
        }
    }
    out
}

/// A good block whose last bit is `v`.
fn ending_in(seed: u64, v: u8) -> Vec<u8> {
    let mut b = fips::xorshift_bytes(seed, BLOCK_BYTES);
    set_bit(&mut b, 19999, v);
    b
}

/// rngtest's and our counts for seed bytes, a block ending in bit `prev`, then `b`.
fn after_block_ending_in(dir: &TempDir, prev: u8, b: &[u8]) -> FipsCounts {
    let mut data = vec![0xA5, 0x5A, 0xC3, 0x3C];
    data.extend(ending_in(31, prev));
    data.extend_from_slice(b);
    let file = dir.path().join(format!("quirk-{prev}.bin"));
    std::fs::write(&file, &data).unwrap();
    let theirs = rngtest(&file, &[]);
    assert_same(&fips::test_bytes(&data), &theirs);
    theirs
}

/// rng-tools keeps the last bit of a block (`last_bit`) but resets the run length. When
/// the next block's first bit differs, it counts a run at `runs[-1 + 6 * bit]`: with a
/// first bit of 1 one more "zero run of 6 or more", with a first bit of 0 `runs[-1]`,
/// which is `poker[15]`. Blocks built to sit at a bound show rngtest does this, and that
/// our counts follow it.
#[test]
fn rng_tools_block_start_quirk_matches_rngtest() {
    if !rngtest_or_skip("rng_tools_block_start_quirk_matches_rngtest") {
        return;
    }
    // rngtest and our tests over the same bytes load a CPU: not beside a measuring test.
    let _x = crate::common::exclusive();
    let dir = TempDir::new("fips-quirk");

    // Poker: a block starting with a 0 bit whose sum of squared nibble counts is just
    // below the upper bound, so that one more 0xF nibble pushes it over.
    const UPPER: u32 = 1_576_928;
    let mut b = fips::xorshift_bytes(41, BLOCK_BYTES);
    b[0] &= 0x7F;
    loop {
        let c = nibbles(&b);
        let sum: u32 = c.iter().map(|n| n * n).sum();
        // One more 0xF adds 2 * c[15] + 1.
        if sum > UPPER - (2 * c[15] + 1) {
            assert!(sum <= UPPER);
            break;
        }
        // The biggest step (nibble value `from` becomes `to`) that stays under the bound,
        // leaving 0xF alone.
        let (from, to) = (0..15)
            .flat_map(|a| (0..15).map(move |z| (a, z)))
            .filter(|&(a, z)| a != z && c[a] > 0 && c[z] >= c[a])
            .filter(|&(a, z)| sum + 2 * (c[z] + 1 - c[a]) <= UPPER)
            .max_by_key(|&(a, z)| c[z] - c[a])
            .unwrap();
        let i = (1..5000).find(|&i| nibble(&b, i) as usize == from).unwrap();
        set_nibble(&mut b, i, to as u8);
    }
    let with = after_block_ending_in(&dir, 1, &b);
    let without = after_block_ending_in(&dir, 0, &b);
    assert_eq!((without.failures, without.poker), (0, 0), "{without}");
    assert_eq!((with.failures, with.poker), (1, 1), "{with}");

    // Runs: a block starting with a 1 bit with 102 runs of 6 or more ones (at least 103
    // needed) and a last run that is not one of them (it ends "10"): it fails, unless
    // the block before ends with a 0 and the quirk adds the 103rd.
    let mut b = fips::xorshift_bytes(43, BLOCK_BYTES);
    set_bit(&mut b, 0, 1);
    set_bit(&mut b, 19998, 1);
    set_bit(&mut b, 19999, 0);
    long_one_runs_to(&mut b, 102, 20000);
    let with = after_block_ending_in(&dir, 0, &b);
    let without = after_block_ending_in(&dir, 1, &b);
    assert_eq!((with.failures, with.runs), (0, 0), "{with}");
    assert_eq!((without.failures, without.runs), (1, 1), "{without}");
}

/// rng-tools files a run that a bit change ends under the new bit's value, but the
/// block's last run under its own. A block whose last run is one of its 103 runs of 6 or
/// more ones has 102 filed as such, and fails; with 104 it passes.
#[test]
fn rng_tools_last_run_filing_matches_rngtest() {
    if !rngtest_or_skip("rng_tools_last_run_filing_matches_rngtest") {
        return;
    }
    // rngtest and our tests over the same bytes load a CPU: not beside a measuring test.
    let _x = crate::common::exclusive();
    let dir = TempDir::new("fips-last-run");
    let mut b = fips::xorshift_bytes(12, BLOCK_BYTES);
    // First bit 0 after a block ending in 0: no block-start quirk.
    set_bit(&mut b, 0, 0);
    set_bit(&mut b, 19993, 0);
    for i in 19994..20000 {
        set_bit(&mut b, i, 1);
    }
    long_one_runs_to(&mut b, 104, 19993);
    let c = after_block_ending_in(&dir, 0, &b);
    assert_eq!((c.failures, c.runs), (0, 0), "{c}");
    long_one_runs_to(&mut b, 103, 19993);
    let c = after_block_ending_in(&dir, 0, &b);
    assert_eq!((c.failures, c.runs), (1, 1), "{c}");
}

/// `throttlebench bench fips` on a small input: both processes' rows and the in-memory
/// row, the same counts.
#[test]
fn bench_fips_command_writes_both_rows() {
    // A timed benchmark: it and the measuring tests must not share the CPUs.
    let _x = crate::common::exclusive();
    let dir = TempDir::new("fips-bench");
    let csv = dir.path().join("fips.csv");
    let out = tb()
        .args([
            "bench",
            "fips",
            "--mib",
            "1",
            "--repeat",
            "2",
            "--csv",
            csv.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows = read_csv(&csv);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tools: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["tool"].as_str(), r["timed"].as_str()))
        .collect();
    let ours = ("throttlebench", "process reading the file");
    let mem = ("throttlebench (in memory)", "tests on bytes in memory");
    for r in &rows {
        // 1 MiB after the 4 seed bytes: 419 whole blocks, whichever way they were tested.
        assert_eq!(num(r, "blocks"), 419.0, "{r:?}");
        assert_eq!(num(r, "runs"), 2.0, "{r:?}");
        assert!(
            num(r, "best_s") > 0.0 && num(r, "best_s") <= num(r, "worst_s"),
            "{r:?}"
        );
    }
    if !rngtest_or_skip("bench_fips_command_writes_both_rows") {
        assert_eq!(tools, [ours, mem], "{}", text(&out));
        assert!(stdout.contains("rngtest not found"), "{}", text(&out));
        return;
    }
    assert_eq!(
        tools,
        [ours, ("rngtest", "process reading the file"), mem],
        "{}",
        text(&out)
    );
    for col in ["blocks", "failures", "bits_received"] {
        assert_eq!(rows[0][col], rows[1][col], "{col}");
        assert_eq!(rows[0][col], rows[2][col], "{col}");
    }
    // The processes have a CPU time; the in-memory row has none.
    assert!(
        num(&rows[0], "cpu_s") > 0.0 && num(&rows[1], "cpu_s") > 0.0,
        "{rows:?}"
    );
    assert_eq!(rows[2]["cpu_s"], "");
    assert!(stdout.contains("process against process"), "{}", text(&out));
}

/// The bench fails (exit 1, saying which counts) when rngtest counts otherwise: a fake
/// `rngtest` first on PATH reports one failure more than the real tests find.
#[test]
fn bench_fips_fails_when_the_counts_differ() {
    let _x = crate::common::exclusive();
    let dir = TempDir::new("fips-bench-differ");
    // The real tests find far fewer than 7 failures (poker) in these 419 blocks.
    let fake = dir.file(
        "rngtest",
        r#"#!/bin/sh
cat >/dev/null
for l in 'bits received from input: 8388608' 'FIPS 140-2 successes: 412' \
  'FIPS 140-2 failures: 7' 'FIPS 140-2(2001-10-10) Monobit: 0' \
  'FIPS 140-2(2001-10-10) Poker: 7' 'FIPS 140-2(2001-10-10) Runs: 0' \
  'FIPS 140-2(2001-10-10) Long run: 0' 'FIPS 140-2(2001-10-10) Continuous run: 0'; do
  echo "rngtest: $l" >&2
done
exit 1
"#,
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tb()
        .args(["bench", "fips", "--mib", "1", "--repeat", "1"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the counts differ"), "{}", text(&out));
    assert!(err.contains("FIPS 140-2 failures: 7"), "{}", text(&out));
}
