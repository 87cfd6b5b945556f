//! The binary end to end, on a tiny INR set the test fits: `nfn train`, `nfn eval` and `nfn tables`
//! for a classification run and an Inr2Array pretraining + latent classification pair. Every kind
//! trains, evaluates and tabulates through the same path, and `nfn eval` reproduces the test
//! metrics that `summary.json` recorded.

mod support;

use std::path::{Path, PathBuf};

use support::{classify_config, fit_tiny_set, latent_config, nfn, pretrain_config};

fn edit_config(name: &str, inrs: &Path, images: &Path) -> String {
    format!(
        r#"name = "{name}"
task = "inr_editing"
style = "dilate"
images = "{images}"
[data]
inrs = "{inrs}"
batch_size = 8
eval_batch_size = 8
[model]
kind = "nfn"
layer = "np"
hidden = 4
extra_layers = 0
fourier = {{ in_channels = 1, mapping_size = 4, scale = 3.0 }}
[trainer]
steps = 6
eval_every = 3
log_every = 1
optim = {{ lr = 1e-3, warmup_steps = 1 }}
[paper]
metric = 0.051
source = "a test row"
"#,
        inrs = inrs.display(),
        images = images.display()
    )
}

/// `nfn eval --json` against the run's `summary.json`: the same metrics, to round-off.
fn eval_matches_summary(run: &Path) -> serde_json::Value {
    let out = nfn(&["eval", run.to_str().unwrap(), "--json"]);
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let recorded = summary["test"].as_array().unwrap();
    assert!(!recorded.is_empty());
    for record in recorded {
        let metric = record["metric"].as_str().unwrap();
        let (a, b) = (eval["values"][metric].as_f64().unwrap(), record["value"].as_f64().unwrap());
        assert!(
            (a - b).abs() <= 1e-9 * a.abs().max(1.0),
            "{run:?} {metric}: eval {a} vs summary {b}"
        );
    }
    assert_eq!(eval["count"], summary["data"]["test"]);
    summary
}

#[test]
fn every_kind_trains_evaluates_and_tabulates_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let inrs = fit_tiny_set(dir.path());
    let runs = dir.path().join("runs");
    // The classifier trains on weight-space augmented INRs (flips and shifts folded into W0, b0).
    let hnp = classify_config("hnp", &inrs, 12, 4).replace(
        "eval_batch_size = 16",
        "eval_batch_size = 16\naugment = { flip = true, shift = 0.05 }",
    );
    let configs = [
        ("hnp", hnp),
        ("ae", pretrain_config("ae", &inrs, 28, "sitzmann")),
        ("latent", latent_config("latent", &runs.join("ae"))),
        ("edit", edit_config("edit", &inrs, &dir.path().join("images"))),
    ];
    for (name, text) in &configs {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        if *name == "latent" {
            // The latents in two parts, as two machines would make them; training finds them.
            let cache = runs.join("ae/latents");
            for part in ["1/2", "0/2"] {
                nfn(&["latents", path.to_str().unwrap(), "--shard", part]);
            }
            let merged = nfn(&["merge-set", cache.to_str().unwrap()]);
            let out = String::from_utf8_lossy(&merged.stdout);
            assert!(out.contains("train: 55 latents") && out.contains("complete"), "{out}");
        }
        nfn(&["train", path.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    }

    let hnp = eval_matches_summary(&runs.join("hnp"));
    assert_eq!(hnp["kind"], "inr_classification");
    assert_eq!(hnp["headline"], "accuracy");
    assert_eq!(hnp["selection"]["metric"], "accuracy");
    assert_eq!(hnp["selection"]["direction"], "higher");
    assert_eq!(hnp["data"]["train"], 55);
    assert_eq!(hnp["budget"]["steps"], 12);
    let summary = |run: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(runs.join(run).join("summary.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    // Each result carries its do-nothing level: the majority class, the mean training image.
    let chance = &summary("hnp")["baselines"][0];
    assert_eq!(chance["name"], "majority-class accuracy");
    assert!((0.0..=100.0).contains(&chance["value"].as_f64().unwrap()), "{chance}");
    let mean_image = &summary("ae")["baselines"][0];
    assert_eq!(mean_image["name"], "mean-image MSE");
    assert!(mean_image["value"].as_f64().unwrap() > 0.0, "{mean_image}");
    let ae = eval_matches_summary(&runs.join("ae"));
    assert_eq!(
        (ae["kind"].as_str(), ae["page"].as_str()),
        (Some("inr2array_pretrain"), Some("inr_reconstruction"))
    );
    assert_eq!(ae["selection"]["metric"], "mse");
    assert_eq!(ae["selection"]["direction"], "lower");
    let latent = eval_matches_summary(&runs.join("latent"));
    assert_eq!(latent["page"], "inr_classification");
    assert_eq!(latent["budget"]["steps"], 2 * 6, "2 epochs of 55 / 8 full batches");

    let edit = eval_matches_summary(&runs.join("edit"));
    assert_eq!(
        (edit["kind"].as_str(), edit["page"].as_str()),
        (Some("inr_editing"), Some("inr_editing"))
    );
    assert_eq!(
        (edit["selection"]["metric"].as_str(), edit["headline"].as_str()),
        (Some("mse"), Some("mse"))
    );
    assert!(inrs.join("targets-dilate").is_dir(), "targets are cached beside the INR set");
    let names: Vec<&str> =
        edit["baselines"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["do-nothing MSE", "SIREN-fit MSE"]);
    let value = |i: usize| edit["baselines"][i]["value"].as_f64().unwrap();
    assert!(value(1) < value(0), "a SIREN fitted to the target beats the unedited INR");

    for run in ["edit", "ae"] {
        let png = dir.path().join(format!("{run}.png"));
        let run_dir = runs.join(run);
        let images = dir.path().join("images");
        let (out, images) = (png.to_str().unwrap(), images.to_str().unwrap());
        nfn(&["show", run_dir.to_str().unwrap(), "--count", "3", "--out", out, "--images", images]);
        let img = image::open(&png).unwrap();
        let rows = if run == "edit" { 4 } else { 3 }; // the original images row included
        assert_eq!(img.height(), rows * (28 * 4 + 2) + 2, "{run}");
    }

    // A second `train` of a finished run resumes it: nothing to do, the same test metrics.
    let again = nfn(&[
        "train",
        dir.path().join("hnp.toml").to_str().unwrap(),
        "--runs",
        runs.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("hnp: test accuracy"));

    let pages = dir.path().join("pages");
    nfn(&["tables", "--runs", runs.to_str().unwrap(), "--out", pages.to_str().unwrap()]);
    let cls = std::fs::read_to_string(pages.join("inr_classification.md")).unwrap();
    assert!(cls.contains("test accuracy ↑ (%)") && cls.contains("higher is better"), "{cls}");
    assert!(
        cls.contains("| hnp |") && cls.contains("| latent |") && cls.contains("72.7 (a test row)"),
        "{cls}"
    );
    let rec = std::fs::read_to_string(pages.join("inr_reconstruction.md")).unwrap();
    assert!(
        rec.contains("test MSE ↓") && rec.contains("lower is better") && rec.contains("| ae |"),
        "{rec}"
    );
    // `nfn edit` applies the trained editor to an INR set (same format, labels and indices) and to
    // a .npz of SIRENs; the two agree.
    let edited = dir.path().join("edited");
    let edit_run = runs.join("edit");
    let (run_s, out_s) = (edit_run.to_str().unwrap(), edited.to_str().unwrap());
    nfn(&["edit", "--run", run_s, "--inrs", inrs.to_str().unwrap(), "--out", out_s, "--png", "3"]);
    assert!(edited.with_extension("png").exists());
    let load = |dir: &Path| {
        nfn_datasets::InrSet::open(dir).unwrap().load(nfn_datasets::Split::Test, false).unwrap()
    };
    let (source, result) = (load(&inrs), load(&edited));
    assert!(source.labels.equal(&result.labels) && source.image_index.equal(&result.image_index));
    let idx = tch::Tensor::arange(3, (tch::Kind::Int64, tch::Device::Cpu));
    let (before, after) = (source.features(&idx).unwrap(), result.features(&idx).unwrap());
    assert!(
        !before.flatten().allclose(&after.flatten(), 1e-7, 1e-7, false),
        "the editor changed nothing"
    );
    let npz = dir.path().join("three.npz");
    before.write_npz(&npz).unwrap();
    let npz_out = dir.path().join("three-edited.npz");
    nfn(&[
        "edit",
        "--run",
        run_s,
        "--inrs",
        npz.to_str().unwrap(),
        "--out",
        npz_out.to_str().unwrap(),
    ]);
    let from_npz = nfn_weightspace::WeightSpaceFeatures::read_npz(&npz_out).unwrap();
    assert!(from_npz.flatten().allclose(&after.flatten(), 1e-5, 1e-6, false));

    // `nfn predict` scores INRs a user brings with a trained classifier: on the set's test split it
    // reproduces the run's test accuracy, rows in the set's order; a .npz has no labels. `nfn
    // embed` writes the encoder's latents in input order.
    let accuracy = |summary: &serde_json::Value| {
        summary["test"].as_array().unwrap().iter().find(|m| m["metric"] == "accuracy").unwrap()
            ["value"]
            .as_f64()
            .unwrap()
    };
    let test_index = Vec::<i64>::try_from(&source.image_index).unwrap();
    let column = |csv: &Path, col: usize| -> Vec<String> {
        let text = std::fs::read_to_string(csv).unwrap();
        text.lines().skip(1).map(|l| l.split(',').nth(col).unwrap().to_string()).collect()
    };
    for (run, summary) in [("hnp", &hnp), ("latent", &latent)] {
        let csv = dir.path().join(format!("{run}-predicted.csv"));
        let run_dir = runs.join(run);
        let out = nfn(&[
            "predict",
            "--run",
            run_dir.to_str().unwrap(),
            "--inrs",
            inrs.to_str().unwrap(),
            "--out",
            csv.to_str().unwrap(),
        ]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(&format!("accuracy {:.1}%", accuracy(summary))), "{run}: {said}");
        let header = std::fs::read_to_string(&csv).unwrap().lines().next().unwrap().to_string();
        assert_eq!(header, "index,split,image_index,label,predicted,p0,p1,p2", "{run}");
        let index: Vec<i64> = column(&csv, 2).iter().map(|v| v.parse().unwrap()).collect();
        assert_eq!(index, test_index, "{run}: rows follow the set");
    }
    let csv = dir.path().join("three.csv");
    let hnp_run = runs.join("hnp");
    let (hnp_s, npz_s) = (hnp_run.to_str().unwrap(), npz.to_str().unwrap());
    nfn(&["predict", "--run", hnp_s, "--inrs", npz_s, "--out", csv.to_str().unwrap()]);
    assert_eq!(column(&csv, 0), ["0", "1", "2"]);
    assert_eq!(column(&csv, 3), ["", "", ""], "a .npz records no labels");
    let latents = dir.path().join("latents.npy");
    let ae_run = runs.join("ae");
    nfn(&[
        "embed",
        "--run",
        ae_run.to_str().unwrap(),
        "--inrs",
        inrs.to_str().unwrap(),
        "--splits",
        "test",
        "--out",
        latents.to_str().unwrap(),
    ]);
    let z = nfn_weightspace::io::read_npy(&latents).unwrap();
    assert_eq!(z.size(), [test_index.len() as i64, 4, 8]);
    let index: Vec<i64> =
        column(&latents.with_extension("csv"), 2).iter().map(|v| v.parse().unwrap()).collect();
    assert_eq!(index, test_index);
    // The committed reference-format folder (`randinit_smaller_<d>s/net<i>.pth`): its base fits,
    // in image-index order, with the labels of their folders.
    let pth = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../nfn-datasets/tests/fixtures/pth/siren_mnist_wts");
    let csv = dir.path().join("pth.csv");
    nfn(&[
        "predict",
        "--run",
        hnp_s,
        "--inrs",
        pth.to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(
        (column(&csv, 2), column(&csv, 3)),
        (vec!["2".into(), "5".into()], vec!["7".into(), "3".into()])
    );
    let pth_latents = dir.path().join("pth.npy");
    nfn(&[
        "embed",
        "--run",
        ae_run.to_str().unwrap(),
        "--inrs",
        pth.to_str().unwrap(),
        "--out",
        pth_latents.to_str().unwrap(),
    ]);
    assert_eq!(nfn_weightspace::io::read_npy(&pth_latents).unwrap().size(), [2, 4, 8]);
    // INRs of another architecture (a hidden width of 8; 3-channel CIFAR SIRENs to this 1-channel
    // model), a missing run, and a run that does not classify: one line, exit code 2.
    let wrong = dir.path().join("wrong.npz");
    let spec = nfn_weightspace::NetworkSpec::mlp(&[2, 8, 1]).unwrap();
    nfn_weightspace::WeightSpaceFeatures::randn(&spec, 2, 1, (tch::Kind::Float, tch::Device::Cpu))
        .write_npz(&wrong)
        .unwrap();
    let colour = dir.path().join("colour.npz");
    let spec = nfn_weightspace::NetworkSpec::siren(3);
    nfn_weightspace::WeightSpaceFeatures::randn(&spec, 2, 1, (tch::Kind::Float, tch::Device::Cpu))
        .write_npz(&colour)
        .unwrap();
    let missing = dir.path().join("no-such-run");
    for (run, inrs_arg, needle) in [
        (&hnp_run, &wrong, "wrong.npz"),
        (&hnp_run, &colour, "colour.npz"),
        (&missing, &inrs, "no-such-run"),
        (&ae_run, &inrs, "needs an INR classification run"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nfn"))
            .args(["predict", "--run", run.to_str().unwrap(), "--inrs"])
            .arg(inrs_arg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(needle) && err.trim().lines().count() == 1, "{err}");
    }

    // Another split protocol re-splits the set by image index; this subset has no images in the
    // classify protocol's validation range, which is said in one line.
    let resplit = dir.path().join("resplit.toml");
    let text = classify_config("resplit", &inrs, 2, 1)
        .replace("eval_batch_size = 16", "eval_batch_size = 16\nsplit_protocol = \"classify\"");
    std::fs::write(&resplit, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nfn"))
        .args(["train", resplit.to_str().unwrap(), "--runs", runs.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("classify protocol the val split") && err.contains("[45000, 50000]"),
        "{err}"
    );

    // More training sets (`data.extra_train`, e.g. INRs of another fitter) join the training split
    // only; here the same set again, so the training split doubles and val/test stay.
    for (name, text) in [
        ("extra", classify_config("extra", &inrs, 2, 1)),
        ("latent_extra", latent_config("latent_extra", &runs.join("ae"))),
    ] {
        let needle = if name == "extra" { "eval_batch_size = 16" } else { "chunk_size = 16" };
        let text =
            text.replace(needle, &format!("{needle}\nextra_train = [\"{}\"]", inrs.display()));
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        nfn(&["train", path.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
        let summary = eval_matches_summary(&runs.join(name));
        assert_eq!(summary["data"]["train"], 110, "{name}");
        assert_eq!(summary["data"]["test"], hnp["data"]["test"], "{name}");
    }

    // A corrupt shard is a data error that names the file, not a config error.
    let shard = std::fs::read_dir(&inrs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("test-"))
        .unwrap();
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nfn"))
        .args(["eval", runs.join("hnp").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let name = shard.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&name) && !err.contains("invalid config"), "{err}");

    let edits = std::fs::read_to_string(pages.join("inr_editing.md")).unwrap();
    assert!(edits.contains("| edit |") && edits.contains("0.0510 (a test row)"), "{edits}");
    assert!(edits.contains("do-nothing MSE |") && edits.contains("SIREN-fit MSE |"), "{edits}");
    assert_eq!(edits.matches("do-nothing MSE |").count(), 1, "one column per baseline: {edits}");
    let mse = ae["test"].as_array().unwrap().iter().find(|m| m["metric"] == "mse").unwrap()
        ["value"]
        .as_f64()
        .unwrap();
    assert!(rec.contains(&format!("**{mse:.4}**")), "{rec}");
}

#[test]
fn user_errors_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, classify_config("c", &dir.path().join("missing-set"), 5, 5)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nfn"))
        .args(["train", cfg.to_str().unwrap(), "--runs", dir.path().to_str().unwrap()])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("missing-set") && !err.contains("backtrace"), "{err}");
    // An unknown task is refused naming the file.
    std::fs::write(&cfg, "name = \"x\"\ntask = \"painting\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nfn"))
        .args(["check-config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2) && err.contains("painting") && err.contains("c.toml"),
        "{err}"
    );
}

/// `data.extra_train` in a pretraining config: the encoder trains on the INRs of both sets (here the
/// same images fitted again with the reference's recipe); validation and test stay the main set's.
#[test]
fn pretraining_takes_extra_training_sets() {
    let dir = tempfile::tempdir().unwrap();
    let inrs = fit_tiny_set(dir.path());
    let extra = dir.path().join("inrs-ref");
    let mut args = support::fit_args(&dir.path().join("images"), &extra, 10);
    args.extend(["--recipe", "reference"].map(String::from));
    support::nfn_args(&args);
    let inrs_line = format!("inrs = \"{}\"", inrs.display());
    let config = pretrain_config("ae", &inrs, 28, "sitzmann")
        .replace(&inrs_line, &format!("{inrs_line}\nextra_train = [\"{}\"]", extra.display()));
    assert!(config.contains("extra_train"), "{config}");
    let path = dir.path().join("ae.toml");
    std::fs::write(&path, config).unwrap();
    let runs = dir.path().join("runs");
    nfn(&["train", path.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("ae/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["data"]["train"], 110, "55 INRs from each set");
    assert_eq!(summary["data"]["test"], 10, "the main set's test split only");

    // The set grows by an augmentation copy (its shards kept), and a latent classifier with
    // `use_copies` trains on the latents of both fits of every training image; one without
    // keeps reading the base fits (the two caches are apart).
    let mut grow = support::fit_args(&dir.path().join("images"), &inrs, 40);
    grow.extend(["--copies", "1"].map(String::from));
    support::nfn_args(&grow);
    for (name, copies, train) in [("latent_copies", true, 110), ("latent_base", false, 55)] {
        let mut text = support::latent_config(name, &runs.join("ae"));
        if copies {
            text = text.replace("chunk_size = 16", "chunk_size = 16\nuse_copies = true");
        }
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        nfn(&["train", path.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(runs.join(name).join("summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["data"]["train"], train, "{name}");
        assert_eq!(summary["data"]["test"], 10, "{name}");
    }
    assert!(runs.join("ae/latents/train-copies").is_dir());
}

/// An encoder run trained on to a larger step budget (constant rate) continues where it stopped and
/// keeps the shorter budget's result; its latent cache and the classifiers trained on the earlier
/// checkpoint are refused, not silently mixed with the new one.
#[test]
fn an_encoder_trained_on_keeps_its_earlier_latents_and_classifiers_apart() {
    let dir = tempfile::tempdir().unwrap();
    let inrs = fit_tiny_set(dir.path());
    let runs = dir.path().join("runs");
    let (ae, ae_run) = (dir.path().join("ae.toml"), runs.join("ae"));
    let constant = pretrain_config("ae", &inrs, 28, "sitzmann")
        .replace("schedule = \"cosine\"", "schedule = \"constant\"")
        .replace("lr = 1e-3", "lr = 1e-2");
    std::fs::write(&ae, &constant).unwrap();
    let train =
        |path: &Path| nfn(&["train", path.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    train(&ae);
    let cls = dir.path().join("cls.toml");
    std::fs::write(&cls, latent_config("cls", &ae_run)).unwrap();
    train(&cls);
    let best_step = || -> u64 {
        let state = std::fs::read_to_string(ae_run.join("state.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&state).unwrap()["best"]["step"].as_u64().unwrap()
    };
    assert_eq!(best_step(), 6);

    std::fs::write(&ae, constant.replace("steps = 6", "steps = 12")).unwrap();
    let out = train(&ae);
    assert!(String::from_utf8_lossy(&out.stderr).contains("12 steps"));
    assert_eq!(best_step(), 12, "the validation MSE still falls at step 12");
    assert!(ae_run.join("summary.steps6.json").exists() && ae_run.join("summary.json").exists());
    assert!(ae_run.join("model.steps6.safetensors").exists());
    // The metrics hold steps 1..12 once each, as one 12-step run's would.
    let metrics = std::fs::read_to_string(ae_run.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "train")
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=12).collect::<Vec<_>>());

    let fails = |args: &[&str]| -> String {
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_nfn")).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = fails(&["eval", runs.join("cls").to_str().unwrap()]);
    assert!(err.contains("step 6") && err.contains("under a new name"), "{err}");
    let cls2 = dir.path().join("cls2.toml");
    std::fs::write(&cls2, latent_config("cls2", &ae_run)).unwrap();
    let err = fails(&["train", cls2.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    assert!(err.contains("latent cache") && err.contains("extract the latents again"), "{err}");
    std::fs::rename(ae_run.join("latents"), ae_run.join("latents.steps6")).unwrap();
    train(&cls2);
    assert!(ae_run.join("latents/encoder.json").exists());
}
