//! Throughput of the FIPS 140-2 tests (`throttlebench::probe::fips`) on pseudo-random
//! input: a whole buffer at once, and fed in 64 KiB chunks as from a reader.
//! `cargo bench --bench fips`; `throttlebench bench fips` compares with rngtest.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use throttlebench::probe::fips::{self, Fips, BLOCK_BYTES};

fn bench(c: &mut Criterion) {
    // 4 seed bytes and 1,000 blocks (2.5 MB).
    let data = fips::xorshift_bytes(1, 4 + 1000 * BLOCK_BYTES);
    let mut g = c.benchmark_group("fips");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("test_bytes", |b| {
        b.iter(|| fips::test_bytes(black_box(&data)))
    });
    g.bench_function("feed_64KiB_chunks", |b| {
        b.iter(|| {
            let mut f = Fips::new();
            for chunk in black_box(&data).chunks(64 << 10) {
                f.feed(chunk);
            }
            f.counts()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
