//! One layer configuration per process, for `cargo xtask bench layers`:
//! `bench_layers <config> <batch> <iters>` prints one JSON line with the median forward and
//! forward+backward times and the process's peak memory. `bench_layers --sgemm-peak <n> <iters>`
//! prints the machine's sgemm rate instead (see [`nfn_bench::sgemm_gflops`]), which the table
//! relates the rows' FLOP rates to.

use anyhow::{bail, Result};

fn main() -> Result<()> {
    nfn_weightspace::runtime::reexec_with_tuned_malloc();
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, n, iters] = args.as_slice() {
        if flag == "--sgemm-peak" {
            let (n, iters): (i64, usize) = (n.parse()?, iters.parse()?);
            let (ms, gflops) = nfn_bench::sgemm_gflops(n, iters);
            let record = serde_json::json!({
                "n": n, "ms": ms, "gflops": gflops,
                "allocator": nfn_weightspace::runtime::allocator(),
                "threads": tch::get_num_threads(), "device": format!("{:?}", tch::Device::cuda_if_available()),
            });
            println!("{record}");
            return Ok(());
        }
    }
    let [_, config, batch, iters] = args.as_slice() else {
        bail!(
            "usage: bench_layers <{}> <batch> <iters> | bench_layers --sgemm-peak <n> <iters>",
            nfn_bench::CONFIGS.join("|")
        );
    };
    let (b, iters): (i64, usize) = (batch.parse()?, iters.parse()?);
    let Some(bench) = nfn_bench::build(config, b) else { bail!("unknown config {config}") };
    let fwd_ms = nfn_bench::median_ms(iters, || bench.forward());
    let fwdbwd_ms = nfn_bench::median_ms(iters, || bench.forward_backward());
    let record = serde_json::json!({
        "config": config, "batch": b, "fwd_ms": fwd_ms, "fwdbwd_ms": fwdbwd_ms,
        "peak_mb": nfn_bench::peak_rss_mb(), "params": bench.params(),
        "allocator": nfn_weightspace::runtime::allocator(),
        "threads": tch::get_num_threads(), "device": format!("{:?}", tch::Device::cuda_if_available()),
    });
    println!("{record}");
    Ok(())
}
