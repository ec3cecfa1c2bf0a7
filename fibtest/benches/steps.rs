//! Time per Fibonacci step of the fast loop (one dependent addition): the figure the
//! fast threads' steps/s rests on. scripts/bench-fib.sh compares whole runs with C.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fibtest::fib::Fib;

fn steps(c: &mut Criterion) {
    let mut g = c.benchmark_group("fib_steps");
    for n in [1u64 << 10, 1 << 20] {
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let mut f = Fib::default();
            b.iter(|| f.steps(n));
        });
    }
    g.finish();
}

criterion_group!(benches, steps);
criterion_main!(benches);
