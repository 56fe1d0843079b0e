//! Sum and min trees of prioritized replay: `set` at random leaves and `find_prefix` at random
//! masses, on trees of 2^10 and 2^20 leaves filled with random priorities.
//!
//! `cargo bench -p deeprl-replay --bench trees`; times are per operation, except
//! `sum_find_prefix_batch256`, one call for 256 masses (criterion also prints the rate per
//! mass). Indices, values and masses are drawn beforehand (4096 of each, reused in turn), so
//! the times hold no RNG.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use deeprl_replay::segment_tree::{MinTree, SumTree};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

const BATCH: usize = 4096;

fn trees(c: &mut Criterion) {
    let mut group = c.benchmark_group("trees");
    for log2 in [10u32, 20] {
        let capacity = 1usize << log2;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut sum = SumTree::new(capacity);
        let mut min = MinTree::new(capacity);
        for i in 0..capacity {
            let p = rng.random::<f64>() + 1e-6;
            sum.set(i, p).unwrap();
            min.set(i, p).unwrap();
        }
        let indices: Vec<usize> = (0..BATCH).map(|_| rng.random_range(0..capacity)).collect();
        let values: Vec<f64> = (0..BATCH).map(|_| rng.random::<f64>() + 1e-6).collect();
        // Masses against the total at the start; set keeps the total within a few percent.
        let masses: Vec<f64> = (0..BATCH).map(|_| rng.random::<f64>() * sum.total()).collect();
        let size = format!("2^{log2}");
        group.throughput(Throughput::Elements(1));

        group.bench_function(BenchmarkId::new("sum_set", &size), |b| {
            let mut k = 0;
            b.iter(|| {
                k = (k + 1) % BATCH;
                sum.set(indices[k], values[k]).unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("sum_find_prefix", &size), |b| {
            let mut k = 0;
            b.iter(|| {
                k = (k + 1) % BATCH;
                black_box(sum.find_prefix(masses[k]))
            })
        });
        // Per mass: a minibatch of 256 through `find_prefix_batch`, timed as 256 elements.
        let mut out = vec![0usize; 256];
        group.throughput(Throughput::Elements(256));
        group.bench_function(BenchmarkId::new("sum_find_prefix_batch256", &size), |b| {
            let mut k = 0;
            b.iter(|| {
                k = (k + 256) % BATCH;
                sum.find_prefix_batch(&masses[k..k + 256], &mut out);
                black_box(&out);
            })
        });
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("min_set", &size), |b| {
            let mut k = 0;
            b.iter(|| {
                k = (k + 1) % BATCH;
                min.set(indices[k], values[k]).unwrap();
            })
        });
        black_box((sum.total(), min.min()));
    }
    group.finish();
}

criterion_group!(benches, trees);
criterion_main!(benches);
