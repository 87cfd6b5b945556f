//! CIFAR-10's pipelines end to end on a synthetic set of the same shape: 32 x 32 RGB images in
//! CIFAR-10's binary format, fitted into 3-output SIRENs; the editing row (contrast, design.md
//! §6.2: CLAHE targets, an editor trained, evaluated, shown and applied) and the classification
//! row (Inr2Array with the additive decoder rendering 32 x 32 x 3, latents, the latent
//! classifier, eval and predict), all through the binary.

mod support;

use support::{latent_config, nfn, pretrain_config, write_cifar};

#[test]
fn cifar_shaped_contrast_editing_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&images).unwrap();
    write_cifar(&images);
    let inrs = dir.path().join("inrs");
    let (images_s, inrs_s) = (images.to_str().unwrap(), inrs.to_str().unwrap());
    nfn(&[
        "fit-inrs",
        "--dataset",
        "cifar10",
        "--data-dir",
        images_s,
        "--out",
        inrs_s,
        "--limit",
        "45",
        "--steps",
        "30",
        "--target-psnr=-1",
    ]);
    let config = dir.path().join("edit.toml");
    std::fs::write(
        &config,
        format!(
            r#"name = "contrast"
task = "inr_editing"
style = "contrast"
images = "{images_s}"
[data]
inrs = "{inrs_s}"
batch_size = 8
eval_batch_size = 8
[model]
kind = "nft"
channels = 8
num_blocks = 1
num_heads = 2
ff_factor = 2
dropout = 0.0
[trainer]
steps = 4
eval_every = 2
log_every = 1
optim = {{ lr = 1e-3, warmup_steps = 1 }}
[paper]
metric = 0.02
source = "a test row"
"#
        ),
    )
    .unwrap();
    let runs = dir.path().join("runs");
    nfn(&["train", config.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    let run = runs.join("contrast");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["kind"], "inr_editing");
    assert_eq!(
        (summary["data"]["train"].as_i64(), summary["data"]["test"].as_i64()),
        (Some(45), Some(10))
    );
    let mse = summary["test"][0]["value"].as_f64().unwrap();
    let do_nothing = summary["baselines"][0]["value"].as_f64().unwrap();
    assert!(mse.is_finite() && do_nothing > 0.0, "{summary}");
    // The targets are three-channel CLAHE images cached beside the set.
    assert!(inrs.join("targets-contrast").is_dir());

    let png = dir.path().join("show.png");
    let run_s = run.to_str().unwrap();
    nfn(&["show", run_s, "--count", "2", "--out", png.to_str().unwrap(), "--images", images_s]);
    let img = image::open(&png).unwrap();
    assert_eq!(img.color().channel_count(), 3, "colour pictures");
    assert_eq!(img.height(), 4 * (32 * 4 + 2) + 2, "originals, targets, INRs, edits");

    let edited = dir.path().join("edited");
    nfn(&["edit", "--run", run_s, "--inrs", inrs_s, "--out", edited.to_str().unwrap()]);
    let manifest = nfn_datasets::InrSetManifest::read(&edited).unwrap();
    assert_eq!(manifest.image_shape, [3, 32, 32]);

    // Inr2Array on the 3-channel SIRENs: the additive decoder renders 32 x 32 x 3.
    let pretrain = dir.path().join("ae.toml");
    std::fs::write(&pretrain, pretrain_config("ae", &inrs, 32, "additive")).unwrap();
    nfn(&["train", pretrain.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    let classify = dir.path().join("latent.toml");
    std::fs::write(&classify, latent_config("latent", &runs.join("ae"))).unwrap();
    nfn(&["train", classify.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    let latent_run = runs.join("latent");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(latent_run.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["kind"], "inr2array_classify");
    assert_eq!(summary["data"]["test"].as_i64(), Some(10));
    let eval = nfn(&["eval", latent_run.to_str().unwrap(), "--json"]);
    let eval: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    let accuracy = |v: &serde_json::Value| {
        v["test"].as_array().unwrap().iter().find(|m| m["metric"] == "accuracy").unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    let evaluated = eval["values"]["accuracy"].as_f64().unwrap();
    assert!((evaluated - accuracy(&summary)).abs() < 1e-9, "{eval}");
    let csv = dir.path().join("predicted.csv");
    let out = nfn(&[
        "predict",
        "--run",
        latent_run.to_str().unwrap(),
        "--inrs",
        inrs_s,
        "--out",
        csv.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("accuracy {:.1}%", accuracy(&summary))), "{said}");
}
