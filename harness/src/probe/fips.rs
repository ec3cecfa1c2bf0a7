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
mod tests;
