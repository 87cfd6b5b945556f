//! Criterion benches: forward and forward+backward of the reference bench's layer configurations
//! (SIREN 2-32-32-1 weights), at batch 32 and 128. Throughput is reported in INRs per second.
//!
//! `cargo bench -p nfn-bench --bench layers` (the side-by-side table with the PyTorch reference comes
//! from `cargo xtask bench layers`).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};

fn layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("layers");
    group.sample_size(10).warm_up_time(std::time::Duration::from_secs(1));
    for config in ["hnp128", "np128", "attention", "nft_block"] {
        for b in [32i64, 128] {
            let bench = nfn_bench::build(config, b).expect("known config");
            group.throughput(Throughput::Elements(b as u64));
            group.bench_with_input(BenchmarkId::new(format!("{config}/fwd"), b), &b, |bn, _| {
                bn.iter(|| bench.forward())
            });
            group.bench_with_input(
                BenchmarkId::new(format!("{config}/fwd_bwd"), b),
                &b,
                |bn, _| bn.iter(|| bench.forward_backward()),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, layers);

fn main() {
    // what `criterion_main!` does, after moving onto the allocator the nfn binaries use
    nfn_weightspace::runtime::reexec_with_tuned_malloc();
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
