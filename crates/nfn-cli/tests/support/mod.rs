//! Shared by the binary's end-to-end tests: a tiny FashionMNIST-layout image set written by the
//! test, fitted into an INR set by `nfn fit-inrs`, and helpers to run `nfn`.
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Images `[0, 55)` (train), `[55000, 55005)` (val) and `[60000, 60010)` (test) are drawn; the
/// others stay blank. `--limit 55` selects exactly these.
pub const LIMIT: &str = "55";

/// Class `i % 3` of image `i`: a bright bar in one of three places.
fn image(i: usize) -> [u8; 784] {
    let mut px = [0u8; 784];
    let class = i % 3;
    for r in 0..28 {
        for c in 0..28 {
            let on = match class {
                0 => (8..14).contains(&r),
                1 => (8..14).contains(&c),
                _ => (r + c) % 9 < 3,
            };
            let shade = 128 + ((i * 37 + r * 3 + c) % 127) as u8;
            px[r * 28 + c] = if on { shade } else { 0 };
        }
    }
    px
}

pub fn write_idx(path: &Path, dims: &[u32], data: impl Iterator<Item = Vec<u8>>) {
    let file = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let magic = 0x0800u32 | dims.len() as u32;
    gz.write_all(&magic.to_be_bytes()).unwrap();
    for d in dims {
        gz.write_all(&d.to_be_bytes()).unwrap();
    }
    for chunk in data {
        gz.write_all(&chunk).unwrap();
    }
    gz.finish().unwrap();
}

/// Write the image set into `dir` (60 000 train and 10 test images, mostly blank).
pub fn write_images(dir: &Path) {
    let used = |i: usize| i < 55 || (55_000..55_005).contains(&i);
    let train = |i: usize| if used(i) { image(i).to_vec() } else { vec![0; 784] };
    write_idx(&dir.join("train-images-idx3-ubyte.gz"), &[60_000, 28, 28], (0..60_000).map(train));
    write_idx(
        &dir.join("train-labels-idx1-ubyte.gz"),
        &[60_000],
        (0..60_000).map(|i| vec![(i % 3) as u8]),
    );
    write_idx(
        &dir.join("t10k-images-idx3-ubyte.gz"),
        &[10, 28, 28],
        (60_000..60_010).map(|i| image(i).to_vec()),
    );
    write_idx(
        &dir.join("t10k-labels-idx1-ubyte.gz"),
        &[10],
        (60_000..60_010).map(|i| vec![(i % 3) as u8]),
    );
}

/// Write the image set into `<dir>/images` and return that folder.
pub fn images_in(dir: &Path) -> PathBuf {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_images(&images);
    images
}

/// Run `nfn` with `args`; panics with its output if it fails.
pub fn nfn(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_nfn")).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "nfn {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Write the images and fit them (40 Adam steps each, no early stop) into `<dir>/inrs`.
pub fn fit_tiny_set(dir: &Path) -> PathBuf {
    let images = images_in(dir);
    let inrs = dir.join("inrs");
    let args = fit_args(&images, &inrs, 40);
    nfn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    inrs
}

/// `fit-inrs` of the tiny image set in `images` into `out`: `steps` Adam steps each, no early stop.
pub fn fit_args(images: &Path, out: &Path, steps: usize) -> Vec<String> {
    let (images, out) = (images.display().to_string(), out.display().to_string());
    let steps = steps.to_string();
    ["fit-inrs", "--dataset", "fashion-mnist", "--data-dir", &images, "--out", &out]
        .into_iter()
        .chain(["--limit", LIMIT, "--steps", &steps, "--target-psnr=-1"])
        .map(String::from)
        .collect()
}

/// A tiny HNP classification config on `inrs`.
pub fn classify_config(name: &str, inrs: &Path, steps: u64, eval_every: u64) -> String {
    format!(
        r#"name = "{name}"
[data]
inrs = "{inrs}"
batch_size = 8
eval_batch_size = 16
[model]
kind = "nfn"
layer = "hnp"
hidden = [8]
pool = "hnp"
head = {{ hidden = [16], dropout = 0.0 }}
[trainer]
steps = {steps}
eval_every = {eval_every}
log_every = 1
seed = 1
objective = "cross_entropy"
optim = {{ lr = 1e-3, warmup_steps = 5 }}
[paper]
metric = 72.7
source = "a test row"
"#,
        inrs = inrs.display()
    )
}

/// CIFAR-10 binary batches in `dir` (`data_batch_1..5.bin`, `test_batch.bin`, gzipped inside):
/// 50 000 training records, mostly blank, and 10 test records. Images `[0, 45)` (train),
/// `[45000, 45005)` (val) and `[50000, 50010)` (test) are drawn, in three colours and shapes, so
/// that `--limit 45` selects exactly them (the CIFAR-10 split is 45 000 / 5 000 / 10 000).
pub fn write_cifar(dir: &Path) {
    let record = |i: usize| {
        let mut rec = vec![0u8; 3073];
        let used = i < 45 || (45_000..45_005).contains(&i) || i >= 50_000;
        rec[0] = (i % 3) as u8;
        if used {
            for ch in 0..3 {
                for r in 0..32 {
                    for c in 0..32 {
                        let on = match i % 3 {
                            0 => (10..18).contains(&r),
                            1 => (10..18).contains(&c),
                            _ => (r + c) % 11 < 4,
                        };
                        let base = [200, 120, 60][(ch + i) % 3];
                        let shade = if on { base } else { 30 + ((i * 7 + r + c * ch) % 50) };
                        rec[1 + ch * 1024 + r * 32 + c] = shade as u8;
                    }
                }
            }
        }
        rec
    };
    let write = |name: &str, range: std::ops::Range<usize>| {
        let file = std::fs::File::create(dir.join(name)).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        for i in range {
            gz.write_all(&record(i)).unwrap();
        }
        gz.finish().unwrap();
    };
    for b in 0..5 {
        write(&format!("data_batch_{}.bin", b + 1), b * 10_000..(b + 1) * 10_000);
    }
    write("test_batch.bin", 50_000..50_010);
}

/// A tiny Inr2Array pretraining config on `inrs`, rendering `side x side` with `dec_type`.
pub fn pretrain_config(name: &str, inrs: &Path, side: i64, dec_type: &str) -> String {
    format!(
        r#"name = "{name}"
task = "inr2array_pretrain"
[data]
inrs = "{inrs}"
batch_size = 8
eval_batch_size = 8
[model]
image_size = [{side}, {side}]
[model.encoder]
channels = 8
num_blocks = 1
num_heads = 2
ff_factor = 2
num_latents = 4
latent_dim = 8
[model.decoder]
dec_type = "{dec_type}"
hidden_dim = 8
[trainer]
steps = 6
eval_every = 3
log_every = 1
optim = {{ lr = 1e-3, warmup_steps = 1, schedule = "cosine" }}
"#,
        inrs = inrs.display()
    )
}

/// A tiny latent classifier config on the latents of `encoder_run` (3 classes).
pub fn latent_config(name: &str, encoder_run: &Path) -> String {
    format!(
        r#"name = "{name}"
task = "inr2array_classify"
encoder_run = "{run}"
epochs = 2
[data]
batch_size = 8
eval_batch_size = 8
extract_batch_size = 8
chunk_size = 16
[model]
latent_dim = 8
d_model = 16
num_layers = 1
num_heads = 2
ff_dim = 16
dropout = 0.0
max_tokens = 4
head_hidden = 16
num_classes = 3
[trainer]
steps = 1
eval_every = 1
objective = "cross_entropy"
optim = {{ lr = 1e-3, warmup_steps = 1 }}
[paper]
metric = 79.3
source = "a test row"
"#,
        run = encoder_run.display()
    )
}

/// Run `nfn` with owned arguments (see [`nfn`]).
pub fn nfn_args(args: &[String]) -> Output {
    nfn(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The files under `dir` with their paths relative to it and their bytes, sorted; temporary files
/// (names starting with a dot) left out. Two runs' outputs compare equal file for file.
pub fn tree_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if !name.starts_with('.') {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The names of [`tree_files`].
pub fn names(files: &[(String, Vec<u8>)]) -> Vec<String> {
    files.iter().map(|f| f.0.clone()).collect()
}

/// `fit-inrs` of the tiny image set into `out` with four images per shard (18 shards) and one
/// thread: every shard a deterministic function of its seed, so that runs compare byte for byte.
pub fn fit_chunked_args(images: &Path, out: &Path) -> Vec<String> {
    let mut args = fit_args(images, out, 20);
    args.extend(["--chunk", "4", "--threads", "1"].map(String::from));
    args
}

/// Start `nfn args` and kill it with SIGKILL as soon as `ready()` holds; panics if it finishes
/// first or nothing is ready within 300 s.
pub fn kill_when(args: &[String], ready: impl Fn() -> bool, what: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nfn"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !ready() {
        assert!(start.elapsed().as_secs() < 300, "never {what}");
        assert!(child.try_wait().unwrap().is_none(), "finished before {what}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
