//! FIPS 140-2 randomness tests (Monobit, Poker, Runs, Long run, Continuous run) that count
//! exactly as `rngtest` from rng-tools does (Debian package `rng-tools5`; its `fips.c`,
//! `fips.h` and `rngtest.c`, version 5 as in Debian's `rng-tools5` 5-4.1), and 30 to 40
//! times faster: on a 2-vCPU AMD EPYC VM with AVX2, 5.1 to 5.7 Gibit/s on 64 MiB in
//! memory (6.5 Gibit/s on 2.5 MB, `cargo bench --bench fips`), against rngtest's 150 to
//! 180 Mibit/s on the same file.
//!
//! # The stream, as rngtest reads it
//!
//! - The first 4 bytes only seed the continuous run test (rngtest's `fips_init` with "the
//!   first 32 bits"); they are in no block, but they count in "bits received".
//! - Then 20,000-bit blocks of [`BLOCK_BYTES`] (2,500) bytes. A trailing partial block is
//!   not tested, but its bytes count in "bits received" (rngtest reads them before it sees
//!   the end of the input). With fewer than 4 bytes rngtest prints no report at all; here
//!   the counts then hold the bits and no block.
//! - Bits are taken from each byte most significant first (rng-tools' `fips_test_store`
//!   walks `j = 7..0`), so runs continue from bit 0 of one byte into bit 7 of the next.
//! - A block fails when any test fails ("FIPS 140-2 failures"); the per-test counts count
//!   every test a block failed, so they can add up to more than the failures.
//! - `rngtest -c N` stops after N blocks: [`Fips::with_max_blocks`], which then also
//!   stops counting bits after those N blocks, as rngtest stops reading.
//!
//! # The tests and their bounds (FIPS 140-2, change notice of 2001-10-10)
//!
//! - **Monobit**: the number of ones in the block, `n`, must satisfy `9725 < n < 10275`.
//! - **Poker**: the 5,000 4-bit nibbles (high nibble, then low nibble of each byte) are
//!   counted per value, `c[0..16]`; `sum c[i]^2` must lie in `1563176..=1576928`, which
//!   is `2.16 < X < 46.17` for `X = 16/5000 * sum c[i]^2 - 5000`.
//! - **Runs**: runs (maximal stretches of equal bits) of length 1, 2, 3, 4, 5 and 6 or
//!   more are counted, for zeros and for ones; each count must lie within
//!   [`RUNS_BOUNDS`]: 2315..=2685, 1114..=1386, 527..=723, 240..=384, 103..=209,
//!   103..=209.
//! - **Long run**: no run of 26 or more equal bits.
//! - **Continuous run**: the block read as 625 32-bit little-endian words; no word may
//!   equal the word before it. The word before the first word of a block is the last
//!   word of the block before, and before the first block the 4 seed bytes.
//!
//! # rng-tools' own quirks, reproduced
//!
//! rngtest's counts are the reference, so these are kept, not fixed (each is checked
//! against rngtest itself by blocks built to sit at a bound, in `tests/fips`):
//!
//! - rng-tools means `runs[0..6]` for runs of zeros and `runs[6..12]` for runs of ones,
//!   but a run that a bit change ends is filed under the new bit's value
//!   (`6 * current_bit`): runs of ones in `runs[0..6]`, runs of zeros in `runs[6..12]`.
//!   Only the block's last run, counted after the loop, is filed under its own value. As
//!   the bounds are the same for both, this matters only at a bound: a block with 103 runs
//!   of 6 or more ones, the last of them its last run, has 102 filed together and fails.
//! - Runs never cross a block boundary, but rng-tools keeps the block's last bit
//!   (`last_bit`) while it resets the run length to -1. When a block's first bit differs
//!   from the previous block's last bit (or from 0, for the first block), an empty run is
//!   counted at `runs[-1 + 6 * bit]`: with a first bit of 1 that is `runs[5]`, one more
//!   run of 6 or more in `runs[0..6]`; with a first bit of 0 it is `runs[-1]`, which in
//!   `struct fips_ctx` is `poker[15]`: the block's count of nibble 0xF gains one before
//!   the poker sum.
//!
//! # Speed
//!
//! rngtest goes bit by bit (about 150 Mibit/s here). This reads the block as 64-bit
//! big-endian words (bit 63 of word 0 is the stream's first bit) and counts in bulk:
//!
//! - runs: for each polarity and k = 1..=6, a mask of the bits where a run of at least
//!   k starts (a bit that differs from the one before, and equals the k - 1 after it),
//!   counted with popcounts; runs of exactly k are the differences;
//! - ones: popcounts of the words;
//! - poker: per nibble value, byte counters that compare 32 nibbles at a time;
//! - long run: a run of 26 covers two whole bytes of 0x00 or 0xFF in a row; words with
//!   such a pair (a zero-byte test on "this bit and the bit 8 later") send the block
//!   (about 7% of random blocks) to an exact check that measures the run through it;
//! - continuous run: each 64-bit load holds two neighbouring words to compare.
//!
//! On x86-64 the block loop is also compiled for AVX2 + `popcnt` (where the compiler
//! vectorises the word loop) and for `popcnt` alone, and the best one the CPU runs is
//! chosen at run time. Nothing is allocated per block. `throttlebench bench fips`
//! (against rngtest) and `cargo bench --bench fips` measure it.

use std::fmt;
use std::io::Read;

/// Bytes in one FIPS block (20,000 bits).
pub const BLOCK_BYTES: usize = 2500;
/// Bits in one FIPS block.
pub const BLOCK_BITS: u64 = BLOCK_BYTES as u64 * 8;
/// Bytes at the start of the input that seed the continuous run test.
pub const SEED_BYTES: usize = 4;

/// Monobit: a block passes when `MONOBIT_BOUNDS.0 < ones < MONOBIT_BOUNDS.1`.
pub const MONOBIT_BOUNDS: (u32, u32) = (9725, 10275);
/// Poker: a block passes when the sum of the squared nibble counts lies in this range
/// (both ends included).
pub const POKER_BOUNDS: (u32, u32) = (1_563_176, 1_576_928);
/// Runs: the allowed counts (both ends included) of runs of length 1, 2, 3, 4, 5 and 6 or
/// more, each for zeros and for ones.
pub const RUNS_BOUNDS: [(u32, u32); 6] = [
    (2315, 2685),
    (1114, 1386),
    (527, 723),
    (240, 384),
    (103, 209),
    (103, 209),
];
/// Long run: a run of this many equal bits or more fails the block.
pub const LONG_RUN_BITS: u32 = 26;

/// Failure flags of one block, as rng-tools' `FIPS_RNG_*`.
const MONOBIT: u8 = 1;
const POKER: u8 = 2;
const RUNS: u8 = 4;
const LONG_RUN: u8 = 8;
const CONTINUOUS_RUN: u8 = 16;

/// What rngtest reports: the bits read and the block counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FipsCounts {
    /// "bits received from input": every byte read, the 4 seed bytes and a trailing
    /// partial block included.
    pub bits_received: u64,
    /// Blocks tested (successes + failures).
    pub blocks: u64,
    /// Blocks that passed every test.
    pub successes: u64,
    /// Blocks that failed at least one test.
    pub failures: u64,
    /// Blocks that failed the monobit test.
    pub monobit: u64,
    /// Blocks that failed the poker test.
    pub poker: u64,
    /// Blocks that failed the runs test.
    pub runs: u64,
    /// Blocks that failed the long run test.
    pub long_run: u64,
    /// Blocks that failed the continuous run test.
    pub continuous_run: u64,
}

/// rngtest's labels (after "rngtest: ") for the counts it reports, in its order.
const LABELS: [&str; 8] = [
    "bits received from input",
    "FIPS 140-2 successes",
    "FIPS 140-2 failures",
    "FIPS 140-2(2001-10-10) Monobit",
    "FIPS 140-2(2001-10-10) Poker",
    "FIPS 140-2(2001-10-10) Runs",
    "FIPS 140-2(2001-10-10) Long run",
    "FIPS 140-2(2001-10-10) Continuous run",
];

impl FipsCounts {
    /// The reported values in the order of [`LABELS`].
    fn values(&self) -> [u64; 8] {
        [
            self.bits_received,
            self.successes,
            self.failures,
            self.monobit,
            self.poker,
            self.runs,
            self.long_run,
            self.continuous_run,
        ]
    }

    /// Bits in the tested blocks.
    pub fn bits_tested(&self) -> u64 {
        self.blocks * BLOCK_BITS
    }

    fn add_block(&mut self, flags: u8) {
        self.blocks += 1;
        if flags == 0 {
            self.successes += 1;
            return;
        }
        self.failures += 1;
        self.monobit += u64::from(flags & MONOBIT != 0);
        self.poker += u64::from(flags & POKER != 0);
        self.runs += u64::from(flags & RUNS != 0);
        self.long_run += u64::from(flags & LONG_RUN != 0);
        self.continuous_run += u64::from(flags & CONTINUOUS_RUN != 0);
    }
}

/// rngtest's own lines, e.g. `rngtest: FIPS 140-2 successes: 7`, one per count, without
/// its timing lines.
impl fmt::Display for FipsCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (label, value)) in LABELS.iter().zip(self.values()).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "rngtest: {label}: {value}")?;
        }
        Ok(())
    }
}

/// Parse rngtest's report (its stderr) into counts. Needs all eight count lines ("bits
/// received from input", successes, failures and the five tests); `None` when one is
/// missing (rngtest prints no report when the input holds fewer than 4 bytes). When the
/// report repeats (`rngtest -b`), the last value of each line wins. `blocks` is
/// successes + failures.
pub fn parse_rngtest(report: &str) -> Option<FipsCounts> {
    let mut found: [Option<u64>; 8] = [None; 8];
    for line in report.lines() {
        let line = line.trim();
        let line = line.strip_prefix("rngtest:").unwrap_or(line).trim_start();
        let Some((label, value)) = line.rsplit_once(':') else {
            continue;
        };
        if let Some(i) = LABELS.iter().position(|l| *l == label.trim()) {
            found[i] = Some(value.trim().parse().ok()?);
        }
    }
    let [bits_received, successes, failures, monobit, poker, runs, long_run, continuous_run] =
        found;
    Some(FipsCounts {
        bits_received: bits_received?,
        blocks: successes? + failures?,
        successes: successes?,
        failures: failures?,
        monobit: monobit?,
        poker: poker?,
        runs: runs?,
        long_run: long_run?,
        continuous_run: continuous_run?,
    })
}

/// The state rng-tools carries from one block to the next.
#[derive(Debug, Clone, Copy, Default)]
struct Carry {
    /// The previous 32-bit word (little-endian), for the continuous run test.
    last32: u32,
    /// The last bit of the previous block (0 before the first block): rng-tools'
    /// `last_bit`, which it does not reset between blocks.
    last_bit: u8,
}

/// Streaming tester: feed any chunk sizes; the 4 seed bytes, a partial block and the
/// continuous run test's last word are kept across calls.
#[derive(Debug, Clone)]
pub struct Fips {
    counts: FipsCounts,
    carry: Carry,
    seed: [u8; SEED_BYTES],
    seed_len: usize,
    partial: [u8; BLOCK_BYTES],
    partial_len: usize,
    /// Bytes still to read before `-c N` stops (`u64::MAX`: no limit).
    budget: u64,
}

impl Default for Fips {
    fn default() -> Self {
        Self::new()
    }
}

impl Fips {
    /// A tester for a whole input, as `rngtest < FILE`.
    pub fn new() -> Self {
        Fips {
            counts: FipsCounts::default(),
            carry: Carry::default(),
            seed: [0; SEED_BYTES],
            seed_len: 0,
            partial: [0; BLOCK_BYTES],
            partial_len: 0,
            budget: u64::MAX,
        }
    }

    /// A tester that stops after `blocks` blocks, as `rngtest -c N` (0: no limit, as
    /// rngtest): bytes after the seed and those blocks are not read or counted.
    pub fn with_max_blocks(blocks: u64) -> Self {
        let mut f = Self::new();
        if blocks > 0 {
            f.budget =
                (SEED_BYTES as u64).saturating_add(blocks.saturating_mul(BLOCK_BYTES as u64));
        }
        f
    }

    /// Whether `-c N` has been reached (more input is ignored).
    pub fn is_done(&self) -> bool {
        self.budget == 0
    }

    /// Test the next bytes of the input.
    pub fn feed(&mut self, bytes: &[u8]) {
        let take = (bytes.len() as u64).min(self.budget) as usize;
        let mut b = &bytes[..take];
        if self.budget != u64::MAX {
            self.budget -= take as u64;
        }
        self.counts.bits_received += take as u64 * 8;
        if self.seed_len < SEED_BYTES {
            let n = (SEED_BYTES - self.seed_len).min(b.len());
            self.seed[self.seed_len..self.seed_len + n].copy_from_slice(&b[..n]);
            self.seed_len += n;
            b = &b[n..];
            if self.seed_len < SEED_BYTES {
                return;
            }
            self.carry.last32 = u32::from_le_bytes(self.seed);
        }
        if self.partial_len > 0 {
            let n = (BLOCK_BYTES - self.partial_len).min(b.len());
            self.partial[self.partial_len..self.partial_len + n].copy_from_slice(&b[..n]);
            self.partial_len += n;
            b = &b[n..];
            if self.partial_len < BLOCK_BYTES {
                return;
            }
            self.partial_len = 0;
            test_blocks(&mut self.carry, &mut self.counts, &self.partial);
        }
        let whole = b.len() - b.len() % BLOCK_BYTES;
        test_blocks(&mut self.carry, &mut self.counts, &b[..whole]);
        let rest = &b[whole..];
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    /// The counts so far.
    pub fn counts(&self) -> FipsCounts {
        self.counts
    }
}

/// Test a whole buffer, as `rngtest < FILE`.
pub fn test_bytes(bytes: &[u8]) -> FipsCounts {
    let mut f = Fips::new();
    f.feed(bytes);
    f.counts()
}

/// Test a reader to its end, as `rngtest < FILE`.
pub fn test_reader(r: &mut dyn Read) -> std::io::Result<FipsCounts> {
    let mut f = Fips::new();
    let mut buf = vec![0u8; 64 * BLOCK_BYTES];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(f.counts()),
            Ok(n) => f.feed(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift64*, seeded through splitmix64) for tests
/// and benchmarks: good enough that about 1 block in 1,000 fails, as for a real source.
pub fn xorshift_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let mut s = (z ^ (z >> 31)) | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        v.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Test whole blocks (`blocks.len()` a multiple of [`BLOCK_BYTES`]), with the fastest
/// code this CPU runs.
fn test_blocks(carry: &mut Carry, counts: &mut FipsCounts, blocks: &[u8]) {
    if blocks.is_empty() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { test_blocks_avx2(carry, counts, blocks) };
            return;
        }
        if std::is_x86_feature_detected!("popcnt") {
            // SAFETY: as above.
            unsafe { test_blocks_popcnt(carry, counts, blocks) };
            return;
        }
    }
    test_blocks_generic(carry, counts, blocks);
}

/// The block loop compiled for AVX2 (the nibble counts in 32-byte vectors) and `popcnt`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn test_blocks_avx2(carry: &mut Carry, counts: &mut FipsCounts, blocks: &[u8]) {
    test_blocks_generic(carry, counts, blocks)
}

/// The block loop compiled for the `popcnt` instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn test_blocks_popcnt(carry: &mut Carry, counts: &mut FipsCounts, blocks: &[u8]) {
    test_blocks_generic(carry, counts, blocks)
}

/// The block loop for any CPU (and, inlined, for the variants above).
#[inline(always)]
fn test_blocks_generic(carry: &mut Carry, counts: &mut FipsCounts, blocks: &[u8]) {
    for b in blocks.chunks_exact(BLOCK_BYTES) {
        counts.add_block(block_flags(carry, b.try_into().unwrap()));
    }
}

/// The failure flags of one block, and the carry updated for the next one.
#[inline(always)]
fn block_flags(carry: &mut Carry, block: &[u8; BLOCK_BYTES]) -> u8 {
    let mut flags = 0;
    if continuous_repeat(carry.last32, block) {
        flags |= CONTINUOUS_RUN;
    }
    carry.last32 = u32::from_le_bytes(block[BLOCK_BYTES - 4..].try_into().unwrap());

    let mut poker = nibble_counts(block);
    let runs = run_counts(block);
    if runs.long_maybe && has_long_run(block) {
        flags |= LONG_RUN;
    }
    if runs.ones <= MONOBIT_BOUNDS.0 || runs.ones >= MONOBIT_BOUNDS.1 {
        flags |= MONOBIT;
    }

    // rng-tools' runs[0..6] and runs[6..12] (see the module notes): a run that a bit
    // change ends is filed under the new bit, so runs of ones go to the first half and
    // runs of zeros to the second; the block's last run goes under its own value.
    let mut halves = [runs.exact(ONES), runs.exact(ZEROS)];
    let last = block[BLOCK_BYTES - 1] & 1;
    let last_byte = if last == 1 {
        block[BLOCK_BYTES - 1]
    } else {
        !block[BLOCK_BYTES - 1]
    };
    // The last run's length, up to 6 (its last 8 bits are in the last byte; if all 8 are
    // equal it is 6 or more anyway).
    let last_len = (last_byte.trailing_ones() as usize).min(6);
    // Counted above in the half of its value's runs; filed by rng-tools in the other.
    let (counted, own) = if last == 1 { (0, 1) } else { (1, 0) };
    halves[counted][last_len - 1] -= 1;
    halves[own][last_len - 1] += 1;
    // The block's first bit against rng-tools' `last_bit`: `runs[-1 + 6 * bit]`.
    let first = block[0] >> 7;
    if first != carry.last_bit {
        if first == 1 {
            halves[0][5] += 1;
        } else {
            poker[15] += 1;
        }
    }
    carry.last_bit = last;

    let sum: u32 = poker.iter().map(|c| c * c).sum();
    if sum < POKER_BOUNDS.0 || sum > POKER_BOUNDS.1 {
        flags |= POKER;
    }
    let runs_bad = halves.iter().any(|half| {
        half.iter()
            .zip(RUNS_BOUNDS)
            .any(|(&n, (lo, hi))| n < lo || n > hi)
    });
    if runs_bad {
        flags |= RUNS;
    }
    flags
}

/// Whether a 32-bit word of the block (little-endian, at a multiple of 4 bytes) equals the
/// word before it, the first one `last32`.
#[inline(always)]
fn continuous_repeat(last32: u32, block: &[u8; BLOCK_BYTES]) -> bool {
    let mut eq = u32::from(u32::from_le_bytes(block[..4].try_into().unwrap()) == last32);
    for i in 0..BLOCK_BYTES / 4 - 1 {
        // Words i and i + 1 as the low and high half of one 64-bit load.
        let v = u64::from_le_bytes(block[4 * i..4 * i + 8].try_into().unwrap());
        eq |= u32::from(v as u32 == (v >> 32) as u32);
    }
    eq != 0
}

/// The count of each nibble value in the block (high and low nibble of every byte):
/// per value, lanes of byte counters that compare 32 bytes at a time (78 rounds of at most
/// 2 each cannot overflow a byte), summed at the end.
#[inline(always)]
fn nibble_counts(block: &[u8; BLOCK_BYTES]) -> [u32; 16] {
    const LANES: usize = 32;
    let mut acc = [[0u8; LANES]; 16];
    let mut chunks = block.chunks_exact(LANES);
    for c in &mut chunks {
        let mut hi = [0u8; LANES];
        let mut lo = [0u8; LANES];
        for ((h, l), &x) in hi.iter_mut().zip(&mut lo).zip(c) {
            *h = x >> 4;
            *l = x & 15;
        }
        for (v, lanes) in acc.iter_mut().enumerate() {
            for ((a, &h), &l) in lanes.iter_mut().zip(&hi).zip(&lo) {
                // a += (h == v) + (l == v), as a minus two all-ones compare masks.
                let eq_h = 0u8.wrapping_sub(u8::from(h == v as u8));
                let eq_l = 0u8.wrapping_sub(u8::from(l == v as u8));
                *a = a.wrapping_sub(eq_h).wrapping_sub(eq_l);
            }
        }
    }
    let mut counts = [0u32; 16];
    for (n, lanes) in counts.iter_mut().zip(&acc) {
        *n = lanes.iter().map(|&a| u32::from(a)).sum();
    }
    for &x in chunks.remainder() {
        counts[usize::from(x >> 4)] += 1;
        counts[usize::from(x & 15)] += 1;
    }
    counts
}

/// Index of runs of ones, and of zeros, in [`RunCounts::at_least`].
const ONES: usize = 0;
const ZEROS: usize = 1;

/// Runs in a block, counted bit-parallel.
struct RunCounts {
    /// `at_least[v][k]`: runs of ones (v = ONES) or zeros (ZEROS) of at least k + 1 bits,
    /// for k + 1 = 1..=6.
    at_least: [[u32; 6]; 2],
    /// Ones in the block.
    ones: u32,
    /// Two whole bytes in a row of 0x00 or 0xFF: true for every block with a run of 26
    /// (which, wherever it starts, covers two whole bytes after at most 7 bits).
    long_maybe: bool,
}

impl RunCounts {
    /// Runs of ones or zeros of exactly 1, 2, 3, 4, 5 and of 6 or more bits.
    fn exact(&self, v: usize) -> [u32; 6] {
        let a = self.at_least[v];
        [
            a[0] - a[1],
            a[1] - a[2],
            a[2] - a[3],
            a[3] - a[4],
            a[4] - a[5],
            a[5],
        ]
    }
}

/// 64-bit words per block: 312 whole ones, then 32 bits.
const WORDS: usize = BLOCK_BYTES / 8 + 1;
/// The valid bits of the last word.
const LAST_WORD_MASK: u64 = 0xFFFF_FFFF_0000_0000;

/// Word `i` of the block, big-endian (the stream's first bit is bit 63 of word 0); the
/// last word holds 32 bits and zeros, and past it there are only zeros.
#[inline(always)]
fn word(block: &[u8; BLOCK_BYTES], i: usize) -> u64 {
    if i < WORDS - 1 {
        u64::from_be_bytes(block[8 * i..8 * i + 8].try_into().unwrap())
    } else if i == WORDS - 1 {
        u64::from(u32::from_be_bytes(
            block[BLOCK_BYTES - 4..].try_into().unwrap(),
        )) << 32
    } else {
        0
    }
}

/// Runs in one word, both polarities: a run of at least k ones starts at a bit that is
/// 1 while the bit before it is 0 and the k - 1 bits after it are 1 (zeros alike); one
/// mask per k and polarity, one popcount each. `cur` is word i, `next` word i + 1 (only
/// its first 8 bits are read), `before` holds the bit before word i (in bit 63) of each
/// polarity. `long[v]` gets a bit where two whole bytes of ones (v = ONES) or zeros
/// follow each other, for [`RunCounts::long_maybe`].
#[inline(always)]
fn count_word(
    cur: u64,
    next: u64,
    before: &mut [u64; 2],
    at_least: &mut [[u32; 6]; 2],
    long: &mut [u64; 2],
) {
    let ncur = !cur;
    let mut ones = cur & !((cur >> 1) | before[ONES]);
    let mut zeros = ncur & !((ncur >> 1) | before[ZEROS]);
    before[ONES] = cur << 63;
    before[ZEROS] = ncur << 63;
    at_least[ONES][0] += ones.count_ones();
    at_least[ZEROS][0] += zeros.count_ones();
    // "The bit k places later", for k = 1..=5: 1 keeps a start of ones, 0 one of zeros.
    let later = [
        (cur << 1) | (next >> 63),
        (cur << 2) | (next >> 62),
        (cur << 3) | (next >> 61),
        (cur << 4) | (next >> 60),
        (cur << 5) | (next >> 59),
    ];
    for (k, l) in later.into_iter().enumerate() {
        ones &= l;
        zeros &= !l;
        at_least[ONES][k + 1] += ones.count_ones();
        at_least[ZEROS][k + 1] += zeros.count_ones();
    }
    // A byte of ones (zeros) followed by another: a 0xFF byte in "this bit and the bit 8
    // later are 1" (0), found as a zero byte in its complement.
    let l8 = (cur << 8) | (next >> 56);
    for (v, q) in [(ONES, !(cur & l8)), (ZEROS, cur | l8)] {
        long[v] |= q.wrapping_sub(0x0101_0101_0101_0101) & !q & 0x8080_8080_8080_8080;
    }
}

/// The runs of ones and zeros in a block, in one pass over its words. Runs neither begin
/// before the block nor go past its end: the bit before it counts as different from the
/// first, and in the last word the 32 bits of padding are kept out.
#[inline(always)]
fn run_counts(block: &[u8; BLOCK_BYTES]) -> RunCounts {
    let mut at_least = [[0; 6]; 2];
    let mut ones = 0;
    let mut before = [0u64; 2];
    let mut long = [0u64; 2];
    let mut cur = word(block, 0);
    // Words 0..=311, each with the next word (the last one's first 8 bits are read).
    for i in 0..WORDS - 1 {
        let next = word(block, i + 1);
        ones += cur.count_ones();
        count_word(cur, next, &mut before, &mut at_least, &mut long);
        cur = next;
    }
    // The last word: 32 bits and a zero padding, which is right for the runs of ones;
    // the runs of zeros are the runs of ones of its complement (with a zero padding).
    ones += cur.count_ones();
    let (mut at, mut lg) = ([[0; 6]; 2], [0; 2]);
    count_word(cur, 0, &mut before.clone(), &mut at, &mut lg);
    let (mut at_z, mut lg_z) = ([[0; 6]; 2], [0; 2]);
    let mut before_z = [before[ZEROS], before[ONES]];
    count_word(
        !cur & LAST_WORD_MASK,
        0,
        &mut before_z,
        &mut at_z,
        &mut lg_z,
    );
    for k in 0..6 {
        at_least[ONES][k] += at[ONES][k];
        at_least[ZEROS][k] += at_z[ONES][k];
    }
    RunCounts {
        at_least,
        ones,
        long_maybe: (long[ONES] | long[ZEROS] | lg[ONES] | lg_z[ONES]) != 0,
    }
}

/// Whether the block has a run of [`LONG_RUN_BITS`] (26) equal bits or more. Such a run
/// covers two whole bytes of 0x00 or 0xFF in a row; from each such pair (found a word at
/// a time, as in [`count_word`]) the run through it is measured: whole equal bytes to
/// either side, then the equal bits of the first byte that differs. Only for the few
/// blocks that [`run_counts`] flags.
#[inline(never)]
fn has_long_run(block: &[u8; BLOCK_BYTES]) -> bool {
    for i in 0..WORDS {
        let (cur, next) = (word(block, i), word(block, i + 1));
        let l8 = (cur << 8) | (next >> 56);
        let mut candidates = 0;
        for q in [!(cur & l8), cur | l8] {
            // A zero byte of q sets the top bit of its byte here (and maybe of bytes above
            // it, from the borrow: each candidate is checked).
            candidates |= q.wrapping_sub(0x0101_0101_0101_0101) & !q & 0x8080_8080_8080_8080;
        }
        while candidates != 0 {
            let at = 8 * i + candidates.leading_zeros() as usize / 8;
            candidates &= !(0x80 << (56 - 8 * (at - 8 * i)));
            // (Candidates in the last word's padding are past the block.)
            if at + 1 >= BLOCK_BYTES {
                continue;
            }
            let v = block[at];
            if (v == 0 || v == 0xFF)
                && block[at + 1] == v
                && run_through(block, at, v) >= LONG_RUN_BITS
            {
                return true;
            }
        }
    }
    false
}

/// The length of the run through bytes `at` and `at + 1`, both `v` (0x00 or 0xFF).
fn run_through(block: &[u8; BLOCK_BYTES], at: usize, v: u8) -> u32 {
    let mut len = 16;
    let mut j = at;
    while j > 0 && block[j - 1] == v {
        j -= 1;
        len += 8;
    }
    if j > 0 {
        let b = block[j - 1];
        len += if v == 0 {
            b.trailing_zeros()
        } else {
            b.trailing_ones()
        };
    }
    let mut k = at + 2;
    while k < BLOCK_BYTES && block[k] == v {
        k += 1;
        len += 8;
    }
    if k < BLOCK_BYTES {
        let b = block[k];
        len += if v == 0 {
            b.leading_zeros()
        } else {
            b.leading_ones()
        };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rng-tools' `fips.c` transliterated bit by bit (the reference for the fast code):
    /// `poker` and `runs` share one array as in `struct fips_ctx`, so that `runs[-1]` is
    /// `poker[15]`.
    struct Reference {
        /// poker[0..16], runs[16..28]
        arr: [i64; 28],
        ones: i64,
        rlength: i64,
        current_bit: i64,
        last_bit: i64,
        longrun: bool,
        last32: u32,
    }

    impl Reference {
        fn new(last32: u32) -> Self {
            Reference {
                arr: [0; 28],
                ones: 0,
                rlength: -1,
                current_bit: 0,
                last_bit: 0,
                longrun: false,
                last32,
            }
        }

        fn runs(&mut self, i: i64) -> &mut i64 {
            &mut self.arr[(16 + i) as usize]
        }

        fn store(&mut self, data: u8) {
            self.arr[(data >> 4) as usize] += 1;
            self.arr[(data & 15) as usize] += 1;
            for j in (0..8).rev() {
                self.current_bit = i64::from((data >> j) & 1);
                self.ones += self.current_bit;
                if self.current_bit != self.last_bit {
                    let i = self.rlength.min(5) + 6 * self.current_bit;
                    *self.runs(i) += 1;
                    if self.rlength >= 25 {
                        self.longrun = true;
                    }
                    self.rlength = 0;
                    self.last_bit = self.current_bit;
                } else {
                    self.rlength += 1;
                }
            }
        }

        fn block(&mut self, buf: &[u8]) -> u8 {
            let mut flags = 0;
            for c in buf.chunks_exact(4) {
                let new32 = u32::from_le_bytes(c.try_into().unwrap());
                if new32 == self.last32 {
                    flags |= CONTINUOUS_RUN;
                }
                self.last32 = new32;
                for &b in c {
                    self.store(b);
                }
            }
            let i = self.rlength.min(5) + 6 * self.current_bit;
            *self.runs(i) += 1;
            if self.rlength >= 25 {
                flags |= LONG_RUN;
            }
            if self.longrun {
                flags |= LONG_RUN;
                self.longrun = false;
            }
            if self.ones >= 10275 || self.ones <= 9725 {
                flags |= MONOBIT;
            }
            let j: i64 = self.arr[..16].iter().map(|c| c * c).sum();
            if !(1563176..=1576928).contains(&j) {
                flags |= POKER;
            }
            let bounds = [
                (2315, 2685),
                (1114, 1386),
                (527, 723),
                (240, 384),
                (103, 209),
                (103, 209),
            ];
            for k in 0..12 {
                let (lo, hi) = bounds[k % 6];
                if !(lo..=hi).contains(&self.arr[16 + k]) {
                    flags |= RUNS;
                }
            }
            self.arr = [0; 28];
            self.ones = 0;
            self.rlength = -1;
            self.current_bit = 0;
            flags
        }
    }

    /// The reference's counts for a whole input.
    fn reference(bytes: &[u8]) -> FipsCounts {
        let mut c = FipsCounts {
            bits_received: bytes.len() as u64 * 8,
            ..Default::default()
        };
        if bytes.len() < 4 {
            return c;
        }
        let mut r = Reference::new(u32::from_le_bytes(bytes[..4].try_into().unwrap()));
        for b in bytes[4..].chunks_exact(BLOCK_BYTES) {
            c.add_block(r.block(b));
        }
        c
    }

    /// The failure flags of each block of `bytes` (seed included), from the fast code.
    fn flags_of(bytes: &[u8]) -> Vec<u8> {
        let mut carry = Carry {
            last32: u32::from_le_bytes(bytes[..4].try_into().unwrap()),
            last_bit: 0,
        };
        bytes[4..]
            .chunks_exact(BLOCK_BYTES)
            .map(|b| block_flags(&mut carry, b.try_into().unwrap()))
            .collect()
    }

    /// Flags of a single block after 4 seed bytes of `0xA5`.
    fn single(block: &[u8]) -> u8 {
        assert_eq!(block.len(), BLOCK_BYTES);
        let mut v = vec![0xA5; 4];
        v.extend_from_slice(block);
        let f = flags_of(&v);
        assert_eq!(f.len(), 1);
        f[0]
    }

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

    fn ones(b: &[u8]) -> u32 {
        b.iter().map(|x| x.count_ones()).sum()
    }

    /// A random block that passes every test.
    fn good_block(seed: u64) -> Vec<u8> {
        let b = xorshift_bytes(seed, BLOCK_BYTES);
        assert_eq!(single(&b), 0, "seed {seed} gives a failing block");
        b
    }

    #[test]
    fn good_random_blocks_pass() {
        let data = xorshift_bytes(1, 4 + 200 * BLOCK_BYTES);
        let c = test_bytes(&data);
        assert_eq!(c.blocks, 200);
        // About 1 block in 1,000 fails; these 200 all pass.
        assert_eq!(c.failures, 0, "{c}");
        assert_eq!(c.successes, 200);
        assert_eq!(c, reference(&data));
    }

    #[test]
    fn all_zeros_fail_monobit_poker_runs_long_run_and_continuous() {
        let f = single(&[0; BLOCK_BYTES]);
        // Equal zero words also fail the continuous run test.
        assert_eq!(f, MONOBIT | POKER | RUNS | LONG_RUN | CONTINUOUS_RUN);
        let f = single(&[0xFF; BLOCK_BYTES]);
        assert_eq!(f, MONOBIT | POKER | RUNS | LONG_RUN | CONTINUOUS_RUN);
    }

    /// Write a run of exactly `len` bits of `v` at bit `at`, bounded by the other value.
    fn put_run(b: &mut [u8], at: usize, len: usize, v: u8) {
        set_bit(b, at - 1, 1 - v);
        for i in at..at + len {
            set_bit(b, i, v);
        }
        set_bit(b, at + len, 1 - v);
    }

    #[test]
    fn long_run_is_26_bits_or_more() {
        for v in [0, 1] {
            let mut b = good_block(7);
            put_run(&mut b, 9001, 25, v);
            assert_eq!(single(&b), 0, "a run of 25 {v}s passes");
            put_run(&mut b, 9001, 26, v);
            assert_eq!(
                single(&b),
                LONG_RUN,
                "a run of 26 {v}s fails the long run only"
            );
            let mut b = good_block(7);
            put_run(&mut b, 12345, 40, v);
            assert_eq!(single(&b), LONG_RUN);
        }
        // At the block's ends and across words too.
        let mut b = good_block(7);
        for i in 0..26 {
            set_bit(&mut b, i, 1);
        }
        set_bit(&mut b, 26, 0);
        assert_eq!(single(&b) & LONG_RUN, LONG_RUN);
        let mut b = good_block(7);
        set_bit(&mut b, 19999 - 26, 1);
        for i in 19999 - 25..20000 {
            set_bit(&mut b, i, 0);
        }
        assert_eq!(single(&b) & LONG_RUN, LONG_RUN);
        set_bit(&mut b, 19999 - 25, 1);
        assert_eq!(single(&b) & LONG_RUN, 0, "25 zeros at the end pass");
    }

    #[test]
    fn runs_do_not_cross_blocks() {
        // 20 ones at the end of one block and 20 at the start of the next: no long run.
        let mut a = good_block(7);
        let mut b = good_block(8);
        set_bit(&mut a, 19999 - 20, 0);
        for i in 19999 - 19..20000 {
            set_bit(&mut a, i, 1);
        }
        for i in 0..20 {
            set_bit(&mut b, i, 1);
        }
        set_bit(&mut b, 20, 0);
        let mut v = vec![0; 4];
        v.extend_from_slice(&a);
        v.extend_from_slice(&b);
        assert_eq!(flags_of(&v), [0, 0]);
        assert_eq!(test_bytes(&v), reference(&v));
    }

    /// Set bits of `b` from 0 to 1 (or back) at spread-out places until it has `target`
    /// ones.
    fn bias_to(b: &mut [u8], target: u32) {
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
    fn monobit_bounds() {
        let mut b = good_block(11);
        for (n, fails) in [
            (10_274, false),
            (10_275, true),
            (9_726, false),
            (9_725, true),
        ] {
            bias_to(&mut b, n);
            assert_eq!(ones(&b), n);
            let want = if fails { MONOBIT } else { 0 };
            assert_eq!(single(&b), want, "{n} ones");
        }
        bias_to(&mut b, 10_400);
        assert_eq!(
            single(&b),
            MONOBIT,
            "a biased block fails the monobit test only"
        );
    }

    #[test]
    fn repeated_word_fails_continuous_run() {
        let mut b = good_block(3);
        b.copy_within(400..404, 404);
        assert_eq!(single(&b), CONTINUOUS_RUN);
        // Words are aligned to the block: a repeat shifted by one byte is not one.
        let mut b = good_block(3);
        b.copy_within(401..405, 405);
        assert_eq!(single(&b), 0);
        // The first word against the seed bytes.
        let b = good_block(3);
        let mut v = b[..4].to_vec();
        v.extend_from_slice(&b);
        assert_eq!(flags_of(&v), [CONTINUOUS_RUN]);
        // The first word of a block against the last word of the block before.
        let a = good_block(3);
        let mut b = good_block(4);
        b[..4].copy_from_slice(&a[BLOCK_BYTES - 4..]);
        let mut v = vec![1, 2, 3, 4];
        v.extend_from_slice(&a);
        v.extend_from_slice(&b);
        assert_eq!(flags_of(&v), [0, CONTINUOUS_RUN]);
    }

    /// Nibble counts of a block.
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

    #[test]
    fn too_uniform_nibbles_fail_poker() {
        // Make every nibble value appear 312 or 313 times: sum of squares 1,562,504,
        // below 1,563,176 (X < 2.16), with the bits otherwise as random as before.
        let mut b = good_block(5);
        let mut i = 1; // keep the first bit as it is
        loop {
            let c = nibbles(&b);
            let (hi, _) = c.iter().enumerate().max_by_key(|(_, &n)| n).unwrap();
            let (lo, _) = c.iter().enumerate().min_by_key(|(_, &n)| n).unwrap();
            if c[hi] - c[lo] <= 1 {
                break;
            }
            while nibble(&b, i) as usize != hi {
                i += 1;
            }
            set_nibble(&mut b, i, lo as u8);
        }
        let c = nibbles(&b);
        assert!(c.iter().all(|&n| n == 312 || n == 313), "{c:?}");
        assert_eq!(single(&b), POKER);
    }

    #[test]
    fn alternating_bits_fail_runs() {
        // 0101...: 20,000 runs of length 1 (and equal words, and one nibble value).
        let f = single(&[0x55; BLOCK_BYTES]);
        assert_eq!(f, POKER | RUNS | CONTINUOUS_RUN);
        assert_eq!(f & (MONOBIT | LONG_RUN), 0, "10,000 ones, no long run");
    }

    /// Where each run of `v`s of length >= 6 starts and how long it is.
    fn long_runs_of(b: &[u8], v: u8) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < 20000 {
            let start = i;
            while i < 20000 && bit(b, i) == bit(b, start) {
                i += 1;
            }
            if bit(b, start) == v && i - start >= 6 {
                out.push((start, i - start));
            }
        }
        out
    }

    /// Split runs of 6 or more ones that start before bit `keep_from` (at their third
    /// bit) until `target` runs of 6 or more ones are left in the block.
    fn long_one_runs_to(b: &mut [u8], target: usize, keep_from: usize) {
        assert!(long_runs_of(b, 1).len() >= target);
        while long_runs_of(b, 1).len() > target {
            let (start, _) = long_runs_of(b, 1)[0];
            assert!(start < keep_from, "no run left to split");
            set_bit(b, start + 2, 0);
        }
    }

    #[test]
    fn too_few_long_runs_fail_runs_only() {
        // Runs of 6+ ones broken until only 100 are left: the runs test fails (at least
        // 103 needed) while the other tests pass.
        let mut b = good_block(9);
        assert!(long_runs_of(&b, 1).len() > 120);
        long_one_runs_to(&mut b, 100, 20000);
        assert_eq!(single(&b), RUNS);
    }

    /// rng-tools files a run that a bit change ends under the new bit's value, and the
    /// block's last run under its own: with the last run one of 6+ ones, the count of
    /// 6+ runs "of ones" is one less than the block's.
    #[test]
    fn the_last_run_is_filed_under_its_own_value() {
        let mut b = good_block(12);
        // The block ends with exactly 6 ones; its first bit is 0 (no quirk, below).
        set_bit(&mut b, 0, 0);
        set_bit(&mut b, 19993, 0);
        for i in 19994..20000 {
            set_bit(&mut b, i, 1);
        }
        long_one_runs_to(&mut b, 104, 19993);
        assert_eq!(
            single(&b),
            0,
            "104 runs of 6+ ones, 103 filed as such: a pass"
        );
        long_one_runs_to(&mut b, 103, 19993);
        assert_eq!(
            single(&b),
            RUNS,
            "103 runs of 6+ ones, 102 filed as such: a fail"
        );
        // With the last run broken, the 102 runs left are all filed as runs of ones.
        set_bit(&mut b, 19996, 0);
        assert_eq!(long_runs_of(&b, 1).len(), 102);
        assert_eq!(single(&b), RUNS);
        let mut r = Reference::new(0xA5A5_A5A5);
        assert_eq!(r.block(&b), RUNS);
    }

    /// The flags of `b` after a first block that ends with the bit `prev`, and the
    /// reference's.
    fn after_block_ending_in(prev: u8, b: &[u8]) -> (u8, u8) {
        let mut first = good_block(31);
        set_bit(&mut first, 19999, prev);
        let mut v = vec![0x3C, 0xC3, 0x5A, 0xA5];
        v.extend_from_slice(&first);
        v.extend_from_slice(b);
        let mut r = Reference::new(u32::from_le_bytes(v[..4].try_into().unwrap()));
        r.block(&first);
        let f = flags_of(&v);
        assert_eq!(f[0], 0);
        (f[1], r.block(b))
    }

    /// rng-tools keeps the block's last bit but resets the run length: when the next
    /// block's first bit differs, it counts `runs[-1 + 6 * bit]`, one more "run of 6+"
    /// (first bit 1) or one more nibble 0xF (first bit 0). Blocks at a bound show it.
    #[test]
    fn the_block_start_quirk_moves_verdicts_at_the_bounds() {
        // Runs: a block starting with 1 with 102 runs of 6+ ones and a last run "10":
        // after a block that ends with 0 the quirk adds the 103rd.
        let mut b = good_block(43);
        set_bit(&mut b, 0, 1);
        set_bit(&mut b, 19998, 1);
        set_bit(&mut b, 19999, 0);
        long_one_runs_to(&mut b, 102, 20000);
        assert_eq!(after_block_ending_in(0, &b), (0, 0));
        assert_eq!(after_block_ending_in(1, &b), (RUNS, RUNS));

        // Poker: a block starting with 0 whose sum of squared nibble counts is just under
        // the upper bound; after a block that ends with 1, one more 0xF goes over.
        let upper = POKER_BOUNDS.1;
        let mut b = good_block(41);
        set_bit(&mut b, 0, 0);
        loop {
            let c = nibbles(&b);
            let sum: u32 = c.iter().map(|n| n * n).sum();
            if sum > upper - (2 * c[15] + 1) {
                assert!(sum <= upper);
                break;
            }
            // The biggest step (a nibble `from` made `to`) that stays under the bound,
            // leaving 0xF alone.
            let (from, to) = (0..15)
                .flat_map(|a| (0..15).map(move |z| (a, z)))
                .filter(|&(a, z)| a != z && c[a] > 0 && c[z] >= c[a])
                .filter(|&(a, z)| sum + 2 * (c[z] + 1 - c[a]) <= upper)
                .max_by_key(|&(a, z)| c[z] - c[a])
                .unwrap();
            let i = (1..5000).find(|&i| nibble(&b, i) as usize == from).unwrap();
            set_nibble(&mut b, i, to as u8);
        }
        assert_eq!(after_block_ending_in(0, &b), (0, 0));
        assert_eq!(after_block_ending_in(1, &b), (POKER, POKER));
    }

    #[test]
    fn first_four_bytes_are_not_in_a_block() {
        // Seed bytes of zeros and a good block: a pass, whatever the seed bytes hold.
        let b = good_block(2);
        let mut v = vec![0; 4];
        v.extend_from_slice(&b);
        let c = test_bytes(&v);
        assert_eq!((c.blocks, c.successes, c.failures), (1, 1, 0));
        assert_eq!(c.bits_received, 8 * (4 + 2500));
        // 2,503 bytes: no block. 2,504: one. The rest of a block is read but not tested.
        assert_eq!(test_bytes(&v[..2503]).blocks, 0);
        assert_eq!(test_bytes(&v[..2503]).bits_received, 2503 * 8);
        // Without the 4-byte seed the block would be shifted; a bad block right after
        // the seed is tested as such.
        let mut v = vec![0x55; 4];
        v.extend_from_slice(&[0; BLOCK_BYTES]);
        assert_eq!(test_bytes(&v).monobit, 1);
        // Fewer than 4 bytes: no block, only the bits.
        let c = test_bytes(&[1, 2, 3]);
        assert_eq!((c.bits_received, c.blocks), (24, 0));
    }

    #[test]
    fn chunked_feeding_equals_whole_buffer() {
        let mut data = xorshift_bytes(21, 4 + 37 * BLOCK_BYTES + 777);
        // Some failing blocks, so that the carry between blocks matters.
        data[4 + 3 * BLOCK_BYTES..4 + 4 * BLOCK_BYTES].fill(0);
        data.copy_within(
            4 + 10 * BLOCK_BYTES - 4..4 + 10 * BLOCK_BYTES,
            4 + 10 * BLOCK_BYTES,
        );
        let whole = test_bytes(&data);
        assert_eq!(whole, reference(&data));
        assert_eq!(whole.continuous_run, 2);
        for chunk in [1, 2, 3, 5, 1000, 2499, 2500, 2501, 7777, 65536] {
            let mut f = Fips::new();
            for c in data.chunks(chunk) {
                f.feed(c);
            }
            assert_eq!(f.counts(), whole, "chunks of {chunk}");
        }
        let mut f = Fips::new();
        let mut rest = &data[..];
        for n in (0..).map(|i| (i * 7 + 1) % 3000) {
            if rest.is_empty() {
                break;
            }
            let n = n.min(rest.len());
            f.feed(&rest[..n]);
            rest = &rest[n..];
        }
        assert_eq!(f.counts(), whole, "uneven chunks");
        assert_eq!(test_reader(&mut &data[..]).unwrap(), whole);
    }

    #[test]
    fn max_blocks_stops_like_rngtest_c() {
        let data = xorshift_bytes(4, 4 + 10 * BLOCK_BYTES + 100);
        let mut f = Fips::with_max_blocks(3);
        for c in data.chunks(1000) {
            f.feed(c);
        }
        let c = f.counts();
        assert!(f.is_done());
        assert_eq!(c.blocks, 3);
        assert_eq!(c.bits_received, 8 * (4 + 3 * 2500));
        assert_eq!(c, test_bytes(&data[..4 + 3 * BLOCK_BYTES]));
        let mut f = Fips::with_max_blocks(0);
        f.feed(&data);
        assert_eq!(f.counts(), test_bytes(&data));
    }

    /// Every kind of block in a shuffled order, against the transliterated reference.
    #[test]
    fn matches_rng_tools_reference() {
        let mut data = xorshift_bytes(99, 4);
        let kinds: [fn(u64) -> Vec<u8>; 9] = [
            |s| xorshift_bytes(s, BLOCK_BYTES),
            |s| xorshift_bytes(s, BLOCK_BYTES),
            |s| xorshift_bytes(s, BLOCK_BYTES),
            |_| vec![0; BLOCK_BYTES],
            |_| vec![0xFF; BLOCK_BYTES],
            |s| vec![(s % 256) as u8; BLOCK_BYTES],
            |s| {
                // Blocks with long runs of random lengths.
                let mut b = xorshift_bytes(s, BLOCK_BYTES);
                let r = xorshift_bytes(s ^ 1, 16);
                for k in 0..4 {
                    let at = 1 + (r[k] as usize * 77) % 19_900;
                    let len = 20 + (r[k + 4] as usize % 12);
                    put_run(&mut b, at.min(19_998 - len), len, r[k + 8] & 1);
                }
                b
            },
            |s| {
                // Biased towards ones or zeros.
                let a = xorshift_bytes(s, BLOCK_BYTES);
                let b = xorshift_bytes(s ^ 7, BLOCK_BYTES);
                let or = s % 2 == 0;
                a.iter()
                    .zip(&b)
                    .map(|(x, y)| {
                        if or {
                            x | (y & y << 1)
                        } else {
                            x & !(y & y >> 3)
                        }
                    })
                    .collect()
            },
            |s| {
                // Repeated words, and runs at the block's ends.
                let mut b = xorshift_bytes(s, BLOCK_BYTES);
                b.copy_within(0..4, 4);
                b[0] = if s % 2 == 0 { 0 } else { 0xFF };
                b[BLOCK_BYTES - 1] = if s % 3 == 0 { 0 } else { 0xFF };
                b
            },
        ];
        let order = xorshift_bytes(5, 1000);
        for (i, k) in order.iter().enumerate() {
            data.extend(kinds[*k as usize % kinds.len()](i as u64));
        }
        data.extend_from_slice(&[1, 2, 3]);
        // Block by block, and the counts.
        let mut r = Reference::new(u32::from_le_bytes(data[..4].try_into().unwrap()));
        let mut want = FipsCounts {
            bits_received: data.len() as u64 * 8,
            ..Default::default()
        };
        for (i, (f, b)) in flags_of(&data)
            .iter()
            .zip(data[4..].chunks_exact(BLOCK_BYTES))
            .enumerate()
        {
            let rf = r.block(b);
            assert_eq!(*f, rf, "block {i}");
            want.add_block(rf);
        }
        let got = test_bytes(&data);
        assert_eq!(got, want);
        assert!(got.failures > 500 && got.successes > 250, "{got}");
        assert!(got.monobit > 0 && got.poker > 0 && got.runs > 0);
        assert!(got.long_run > 0 && got.continuous_run > 0);
    }

    #[test]
    fn every_compiled_variant_agrees() {
        let mut data = xorshift_bytes(8, 4 + 300 * BLOCK_BYTES);
        data[4 + 50 * BLOCK_BYTES..4 + 51 * BLOCK_BYTES].fill(0xFF);
        data[4 + 60 * BLOCK_BYTES..4 + 61 * BLOCK_BYTES].fill(0x55);
        let run = |f: &dyn Fn(&mut Carry, &mut FipsCounts, &[u8])| {
            let mut c = (Carry::default(), FipsCounts::default());
            f(&mut c.0, &mut c.1, &data[4..]);
            c.1
        };
        let generic = run(&|c, n, b| test_blocks_generic(c, n, b));
        assert_eq!(generic.blocks, 300);
        assert!(generic.failures >= 2, "{generic}");
        assert_eq!(run(&|c, n, b| test_blocks(c, n, b)), generic);
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("popcnt") {
                // SAFETY: the CPU has the feature.
                assert_eq!(
                    run(&|c, n, b| unsafe { test_blocks_popcnt(c, n, b) }),
                    generic
                );
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("popcnt") {
                // SAFETY: as above.
                assert_eq!(
                    run(&|c, n, b| unsafe { test_blocks_avx2(c, n, b) }),
                    generic
                );
            }
        }
    }

    #[test]
    fn the_long_run_filter_misses_no_long_run() {
        // A run of 26 at every offset within a byte and around word boundaries: the cheap
        // filter flags the block, and the exact check finds the run; 25 is not one.
        for v in [0, 1] {
            for at in (1..80).chain(20000 - 90..20000 - 26) {
                for (len, long) in [(25, false), (26, true)] {
                    let mut b = xorshift_bytes(at as u64, BLOCK_BYTES);
                    // No other long run: break any run of 20 or more outside this one.
                    for i in (0..20000).step_by(16) {
                        set_bit(&mut b, i, (i / 16 % 2) as u8);
                    }
                    if at > 0 {
                        set_bit(&mut b, at - 1, 1 - v);
                    }
                    for i in at..(at + len).min(20000) {
                        set_bit(&mut b, i, v);
                    }
                    if at + len < 20000 {
                        set_bit(&mut b, at + len, 1 - v);
                    }
                    let b: &[u8; BLOCK_BYTES] = b[..].try_into().unwrap();
                    assert_eq!(has_long_run(b), long, "{len} {v}s at {at}");
                    if long {
                        assert!(run_counts(b).long_maybe, "{len} {v}s at {at}");
                    }
                }
            }
        }
    }

    #[test]
    fn display_and_parse_round_trip() {
        let c = FipsCounts {
            bits_received: 40_000_032,
            blocks: 1999,
            successes: 1998,
            failures: 1,
            monobit: 0,
            poker: 0,
            runs: 1,
            long_run: 0,
            continuous_run: 0,
        };
        let text = c.to_string();
        assert!(text.starts_with("rngtest: bits received from input: 40000032\n"));
        assert!(text.contains("\nrngtest: FIPS 140-2(2001-10-10) Runs: 1\n"));
        assert_eq!(parse_rngtest(&text), Some(c));
        // rngtest's real report, with its banner and timing lines.
        let report = "rngtest 5\nCopyright (c) 2004 by Henrique de Moraes Holschuh\n\n\
            rngtest: starting FIPS tests...\nrngtest: entropy source drained\n\
            rngtest: bits received from input: 40000032\nrngtest: FIPS 140-2 successes: 1998\n\
            rngtest: FIPS 140-2 failures: 1\nrngtest: FIPS 140-2(2001-10-10) Monobit: 0\n\
            rngtest: FIPS 140-2(2001-10-10) Poker: 0\nrngtest: FIPS 140-2(2001-10-10) Runs: 1\n\
            rngtest: FIPS 140-2(2001-10-10) Long run: 0\n\
            rngtest: FIPS 140-2(2001-10-10) Continuous run: 0\n\
            rngtest: input channel speed: (min=1.552; avg=32.834; max=18.626)Gibits/s\n\
            rngtest: FIPS tests speed: (min=84.396; avg=270.453; max=298.023)Mibits/s\n\
            rngtest: Program run time: 142274 microseconds\n";
        assert_eq!(parse_rngtest(report), Some(c));
        // A line missing: no counts.
        let partial = report.replace("rngtest: FIPS 140-2(2001-10-10) Poker: 0\n", "");
        assert_eq!(parse_rngtest(&partial), None);
        assert_eq!(parse_rngtest(""), None);
    }

    #[test]
    fn xorshift_bytes_is_deterministic() {
        assert_eq!(xorshift_bytes(1, 100), xorshift_bytes(1, 100));
        assert_ne!(xorshift_bytes(1, 100), xorshift_bytes(2, 100));
        assert_eq!(xorshift_bytes(1, 13), xorshift_bytes(1, 100)[..13]);
        assert_eq!(xorshift_bytes(0, 0), Vec::<u8>::new());
    }
}
