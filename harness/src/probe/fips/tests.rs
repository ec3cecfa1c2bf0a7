//! Tests of `fips`.

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
