//! Predicting CNN generalisation end to end through the binary: `nfn make-zoo` trains a tiny zoo
//! on an image set the test writes and writes it in the Small CNN Zoo format; every zoo model
//! kind trains on it (`task = "cnn_generalization"`), evaluates to the numbers its summary
//! recorded, is tabulated, drawn (`nfn show`) and applied to the zoo and to a `.npy` of weights
//! (`nfn predict`).

mod support;

use std::path::Path;

use support::{kill_when, nfn, nfn_args, write_idx};

/// A learnable 4-class image set in FashionMNIST's layout: a bright bar in one of four places,
/// with noise. 2000 training and 400 test images.
fn write_images(dir: &Path) {
    let image = |i: usize| {
        let mut px = vec![0u8; 784];
        let class = i % 4;
        for r in 0..28 {
            for c in 0..28 {
                let on = match class {
                    0 => (4..10).contains(&r),
                    1 => (18..24).contains(&r),
                    2 => (4..10).contains(&c),
                    _ => (18..24).contains(&c),
                };
                let noise = ((i * 7919 + r * 131 + c * 31) % 97) as u8;
                px[r * 28 + c] = if on { 150 + noise } else { noise };
            }
        }
        px
    };
    let labels = |range: std::ops::Range<usize>| range.map(|i| vec![(i % 4) as u8]);
    write_idx(&dir.join("train-images-idx3-ubyte.gz"), &[2000, 28, 28], (0..2000).map(image));
    write_idx(&dir.join("train-labels-idx1-ubyte.gz"), &[2000], labels(0..2000));
    write_idx(&dir.join("t10k-images-idx3-ubyte.gz"), &[400, 28, 28], (2000..2400).map(image));
    write_idx(&dir.join("t10k-labels-idx1-ubyte.gz"), &[400], labels(2000..2400));
}

fn config(name: &str, zoo: &Path, model: &str, steps: u64) -> String {
    format!(
        r#"name = "{name}"
task = "cnn_generalization"
[data]
zoo = "{zoo}"
batch_size = 8
eval_batch_size = 32
standardize = {std}
[model]
{model}
[trainer]
steps = {steps}
eval_every = {every}
log_every = 5
objective = "sigmoid_bce"
optim = {{ lr = 1e-3, warmup_steps = 0 }}
[paper]
metric = 0.926
source = "a test row"
"#,
        zoo = zoo.display(),
        std = model.contains("np"),
        every = steps / 2,
    )
}

#[test]
fn make_zoo_then_every_model_predicts_generalisation() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_images(&images);
    let zoo = dir.path().join("zoo");
    let (images_s, zoo_s) = (images.to_str().unwrap(), zoo.to_str().unwrap());
    // two shards, then the merge
    for shard in ["0/2", "1/2"] {
        nfn(&[
            "make-zoo",
            "--data-dir",
            images_s,
            "--networks",
            "64",
            "--group",
            "16",
            "--epochs",
            "0,1",
            "--steps-per-epoch",
            "40",
            "--eval-images",
            "200",
            "--train-eval-images",
            "200",
            "--out",
            zoo_s,
            "--shard",
            shard,
        ]);
    }
    for file in ["weights.npy", "metrics.csv.gz", "layout.csv", "split.csv", "accuracy.png"] {
        assert!(zoo.join(file).exists(), "{file}");
    }
    // `nfn show` on a zoo folder draws the spread of its accuracies
    let hist = dir.path().join("hist.png");
    let out = nfn(&["show", zoo_s, "--out", hist.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("64 networks at the final epoch"));
    assert!(hist.exists());

    let models = [
        ("statnet", "kind = \"statnet\"\nhidden = [32]\ndropout = 0.0", 60),
        (
            "hnp",
            "kind = \"nfn\"\nlayer = \"hnp\"\nhidden = [4]\npool = \"hnp\"\nhead = { hidden = [16], dropout = 0.0 }",
            20,
        ),
        (
            "np",
            "kind = \"nfn\"\nlayer = \"np\"\nhidden = [4]\nio_embed = true\npool = \"hnp\"\nhead = { hidden = [16], dropout = 0.0 }",
            20,
        ),
        (
            "nft",
            "kind = \"nft\"\ninput = \"pointwise\"\nchannels = 8\nnum_blocks = 1\nnum_heads = 2\nff_factor = 2\ndropout = 0.0\nreadout = { pool = \"hnp\" }\nhead = { hidden = [16], dropout = 0.0 }",
            6,
        ),
    ];
    let runs = dir.path().join("runs");
    for (name, model, steps) in models {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, config(name, &zoo, model, steps)).unwrap();
        nfn(&["train", path.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
        let run = runs.join(name);
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["kind"], "cnn_generalization");
        assert_eq!(summary["headline"], "kendall_tau");
        assert_eq!(summary["selection"]["metric"], "kendall_tau");
        assert_eq!(summary["selection"]["direction"], "higher");
        let total = ["train", "val", "test"].iter().map(|s| summary["data"][s].as_i64().unwrap());
        assert_eq!(total.sum::<i64>(), 64, "every network in one split: {summary}");
        // `nfn eval` reproduces the recorded test metrics
        let out = nfn(&["eval", run.to_str().unwrap(), "--json"]);
        let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for record in summary["test"].as_array().unwrap() {
            let (a, b) = (
                eval["values"][record["metric"].as_str().unwrap()].as_f64().unwrap(),
                record["value"].as_f64().unwrap(),
            );
            assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "{name}: {a} vs {b}");
        }
    }
    // StatNet learns the ranking on a zoo whose accuracies spread widely: its best val tau beats
    // a constant predictor's (0).
    let statnet: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("statnet/summary.json")).unwrap())
            .unwrap();
    let val_tau = statnet["selection"]["value"].as_f64().unwrap();
    assert!(val_tau > 0.3, "StatNet val tau {val_tau}");

    let run = runs.join("statnet");
    let png = dir.path().join("scatter.png");
    let out = nfn(&["show", run.to_str().unwrap(), "--out", png.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Kendall tau"));
    assert!(image::open(&png).unwrap().width() > 100);

    let pages = dir.path().join("pages");
    nfn(&["tables", "--runs", runs.to_str().unwrap(), "--out", pages.to_str().unwrap()]);
    let page = std::fs::read_to_string(pages.join("cnn_generalization.md")).unwrap();
    for name in ["statnet", "hnp", "np", "nft"] {
        assert!(page.contains(&format!("| {name} |")), "{page}");
    }
    assert!(page.contains("0.9260 (a test row)") || page.contains("0.926 (a test row)"), "{page}");

    // predict on the zoo folder: every network, with its recorded accuracy
    let csv = dir.path().join("pred.csv");
    let (run_s, csv_s) = (run.to_str().unwrap(), csv.to_str().unwrap());
    nfn(&["predict", "--run", run_s, "--weights", zoo_s, "--out", csv_s]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("row,split,predicted,test_accuracy"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 64);
    // ... and on a .npy of flat weights (the zoo's own rows), which gives the same predictions
    let weights = nfn_weightspace::io::read_npy(zoo.join("weights.npy")).unwrap();
    let first: Vec<i64> =
        rows.iter().take(5).map(|r| r.split(',').next().unwrap().parse().unwrap()).collect();
    let picked = weights.index_select(0, &tch::Tensor::from_slice(&first));
    let npy = dir.path().join("five.npy");
    nfn_weightspace::io::write_npy(&npy, &picked).unwrap();
    let csv2 = dir.path().join("pred2.csv");
    nfn(&[
        "predict",
        "--run",
        run_s,
        "--weights",
        npy.to_str().unwrap(),
        "--out",
        csv2.to_str().unwrap(),
    ]);
    let text2 = std::fs::read_to_string(&csv2).unwrap();
    for (a, b) in rows.iter().take(5).zip(text2.lines().skip(1)) {
        let pa: f64 = a.split(',').nth(2).unwrap().parse().unwrap();
        let pb: f64 = b.split(',').nth(2).unwrap().parse().unwrap();
        assert!((pa - pb).abs() < 1e-5, "{a} vs {b}");
    }
}

/// The parts `make-zoo` has finished (final names only).
fn parts_done(zoo: &Path) -> usize {
    std::fs::read_dir(zoo.join("parts")).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("part-") && name.ends_with(".bin")
            })
            .count()
    })
}

/// Kill -9 `nfn make-zoo` after one and after three of its six groups of CNNs are written, run
/// it again: the zoo's files equal an uninterrupted run's, byte for byte.
#[test]
fn a_killed_make_zoo_resumes_to_the_same_zoo() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_images(&images);
    let args = |zoo: &Path| -> Vec<String> {
        let zoo = zoo.display().to_string();
        let images = images.display().to_string();
        [
            "--threads",
            "1",
            "make-zoo",
            "--data-dir",
            &images,
            "--networks",
            "48",
            "--group",
            "8",
            "--epochs",
            "0,1",
            "--steps-per-epoch",
            "20",
            "--eval-images",
            "100",
            "--train-eval-images",
            "100",
            "--out",
            &zoo,
        ]
        .map(String::from)
        .to_vec()
    };
    let whole = dir.path().join("whole");
    nfn_args(&args(&whole));
    let files = ["weights.npy", "metrics.csv.gz", "layout.csv", "split.csv"];
    for (i, after) in [1usize, 3].into_iter().enumerate() {
        let zoo = dir.path().join(format!("killed{i}"));
        kill_when(&args(&zoo), || parts_done(&zoo) >= after, &format!("{after} parts"));
        assert!(!zoo.join("weights.npy").exists(), "a zoo written before its parts were done");
        nfn_args(&args(&zoo));
        for file in files {
            let same =
                std::fs::read(whole.join(file)).unwrap() == std::fs::read(zoo.join(file)).unwrap();
            assert!(same, "{file} differs after a kill at {after} parts");
        }
    }
}

/// `make-zoo --dataset svhn-gs` on SVHN-format `.mat` files the test writes (three-channel 32 x 32
/// digits-like bars): the zoo trains on their greyscale and loads back with the zoo loader.
#[test]
fn make_zoo_reads_svhn_mat_files() {
    let dir = tempfile::tempdir().unwrap();
    let svhn = dir.path().join("svhn");
    std::fs::create_dir_all(&svhn).unwrap();
    let image = |i: usize| -> Vec<u8> {
        let class = i % 4;
        let mut px = vec![0u8; 3072];
        for c in 0..3 {
            for r in 0..32 {
                for col in 0..32 {
                    let on = match class {
                        0 => (4..12).contains(&r),
                        1 => (20..28).contains(&r),
                        2 => (4..12).contains(&col),
                        _ => (20..28).contains(&col),
                    };
                    let noise = ((i * 7919 + r * 131 + col * 31 + c) % 61) as u8;
                    px[(c * 32 + r) * 32 + col] = if on { 160 + noise } else { noise };
                }
            }
        }
        px
    };
    for (file, range) in [("train_32x32.mat", 0..400), ("test_32x32.mat", 400..460)] {
        let pixels: Vec<u8> = range.clone().flat_map(image).collect();
        let labels: Vec<u8> = range.map(|i| (i % 4) as u8).collect();
        nfn_datasets::images::write_svhn_mat(svhn.join(file), &pixels, &labels, true).unwrap();
    }
    let zoo = dir.path().join("zoo");
    nfn(&[
        "make-zoo",
        "--dataset",
        "svhn-gs",
        "--data-dir",
        svhn.to_str().unwrap(),
        "--networks",
        "8",
        "--group",
        "8",
        "--epochs",
        "0,1",
        "--steps-per-epoch",
        "10",
        "--eval-images",
        "60",
        "--train-eval-images",
        "60",
        "--out",
        zoo.to_str().unwrap(),
    ]);
    let layout = std::fs::read_to_string(zoo.join("layout.csv")).unwrap();
    assert!(layout.contains("\"(3, 3, 1, 16)\""), "greyscale input: {layout}");
    let splits = [nfn_datasets::Split::Train, nfn_datasets::Split::Val, nfn_datasets::Split::Test];
    let loaded: usize = splits
        .into_iter()
        .map(|split| {
            let part = nfn_datasets::load_cnn_zoo(&zoo, zoo.join("split.csv"), split).unwrap();
            assert_eq!(part.wsfeat.batch_size() as usize, part.rows.len());
            part.rows.len()
        })
        .sum();
    assert_eq!(loaded, 8, "every network in one split");
    // a missing SVHN folder says where to get it
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nfn"))
        .args([
            "make-zoo",
            "--dataset",
            "svhn-gs",
            "--data-dir",
            dir.path().join("none").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("train_32x32.mat") && stderr.contains("cargo xtask download svhn"),
        "{stderr}"
    );
}
