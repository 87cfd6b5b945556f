//! Peak memory of loading the CIFAR-10-GS test split from a full-size synthetic Small CNN Zoo.
//! Writes `weights.npy` (`[rows, 4970]` f32, streamed row by row), `metrics.csv.gz` (`step`
//! cycling 0, 1, 2, 3, 20, 40, 60, 80, 86), `layout.csv` and a permutation file (leading `0`, as
//! the reference's), loads the test split with `load_cnn_zoo`, deletes the files, and prints one
//! JSON line: rows, rows loaded, seconds, peak RSS (`VmHWM`) before and after loading.
//!
//! `cargo run --release -p nfn-datasets --example zoo_load_mem -- [rows=270000] [dir=<temp>]`
//! Needs no data; the default writes 5.4 GB (check `df -h` first).

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use nfn_datasets::cnn_zoo::{load_cnn_zoo, ZOO_NUM_PARAMS};
use nfn_datasets::Split;
use rand::seq::SliceRandom;
use rand::SeedableRng;

const STEPS: [i64; 9] = [0, 1, 2, 3, 20, 40, 60, 80, 86];

const LAYOUT: &str = "varname,start_idx,end_idx,shape
sequential/conv2d/kernel:0,0,144,\"(3, 3, 1, 16)\"
sequential/conv2d/bias:0,144,160,\"(16,)\"
sequential/conv2d_1/kernel:0,160,2464,\"(3, 3, 16, 16)\"
sequential/conv2d_1/bias:0,2464,2480,\"(16,)\"
sequential/conv2d_2/kernel:0,2480,4784,\"(3, 3, 16, 16)\"
sequential/conv2d_2/bias:0,4784,4800,\"(16,)\"
sequential/dense/kernel:0,4800,4960,\"(16, 10)\"
sequential/dense/bias:0,4960,4970,\"(10,)\"
";

/// Removes the files it names when dropped, also on errors.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Peak resident set size in MiB (`VmHWM` of `/proc/self/status`).
fn peak_rss_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM")?;
    let kib: f64 = line.split_whitespace().nth(1).context("VmHWM value")?.parse()?;
    Ok(kib / 1024.0)
}

/// `weights.npy` header via ndarray-npy (a sparse zero file), then the rows streamed over it.
fn write_weights(path: &Path, rows: usize) -> Result<()> {
    let cols = ZOO_NUM_PARAMS as usize;
    let file = std::fs::File::create(path)?;
    ndarray_npy::write_zeroed_npy::<f32, _>(&file, (rows, cols))?;
    let data_start = file.metadata()?.len() - (rows * cols * 4) as u64;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.seek(SeekFrom::Start(data_start))?;
    let mut row = vec![0u8; cols * 4];
    for r in 0..rows {
        for (c, b) in row.chunks_exact_mut(4).enumerate() {
            b.copy_from_slice(&((((r * 31 + c) % 2001) as f32 - 1000.0) * 1e-3).to_le_bytes());
        }
        out.write_all(&row)?;
    }
    out.flush()?;
    Ok(())
}

fn write_zoo(dir: &Path, rows: usize) -> Result<PathBuf> {
    write_weights(&dir.join("weights.npy"), rows)?;
    std::fs::write(dir.join("layout.csv"), LAYOUT)?;
    let gz = std::fs::File::create(dir.join("metrics.csv.gz"))?;
    let mut gz = flate2::write::GzEncoder::new(BufWriter::new(gz), flate2::Compression::fast());
    writeln!(gz, ",step,test_accuracy")?;
    for r in 0..rows {
        writeln!(gz, "{r},{}.0,{}", STEPS[r % STEPS.len()], (r % 1000) as f64 / 1000.0)?;
    }
    gz.finish()?.flush()?;
    let mut perm: Vec<usize> = (0..rows).collect();
    perm.shuffle(&mut rand::rngs::StdRng::seed_from_u64(0));
    let split = dir.join("split.csv");
    let mut out = BufWriter::new(std::fs::File::create(&split)?);
    writeln!(out, "0")?;
    for p in perm {
        writeln!(out, "{p}")?;
    }
    out.flush()?;
    Ok(split)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map_or(Ok(270_000), |a| a.parse()).context("rows")?;
    let tmp = tempfile::tempdir()?;
    let dir = args.next().map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let names = ["weights.npy", "metrics.csv.gz", "layout.csv", "split.csv"];
    let _cleanup = Cleanup(names.iter().map(|n| dir.join(n)).collect());

    let t = Instant::now();
    let split = write_zoo(&dir, rows).with_context(|| format!("writing the zoo in {dir:?}"))?;
    let write_s = t.elapsed().as_secs_f64();
    let rss_before = peak_rss_mib()?;

    let t = Instant::now();
    let zoo = load_cnn_zoo(&dir, &split, Split::Test).context("loading the test split")?;
    let load_s = t.elapsed().as_secs_f64();
    let peak = peak_rss_mib()?;
    println!(
        "{{\"rows\":{rows},\"rows_loaded\":{},\"write_s\":{write_s:.1},\"load_s\":{load_s:.2},\
         \"peak_rss_mib_before_load\":{rss_before:.0},\"peak_rss_mib\":{peak:.0}}}",
        zoo.rows.len()
    );
    Ok(())
}
