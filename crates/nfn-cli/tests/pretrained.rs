//! The pretrained FashionMNIST models shipped with nfn score on fresh INRs what their card says.
//! The test fits SIRENs to the first 300 FashionMNIST test images (our fitter's default recipe,
//! the one the models were trained on), asks `nfn predict --pretrained fashion-mnist` for each
//! model, and compares the accuracy with the card's (measured on the full test split of the
//! model's INR set) within 9 points: three binomial standard deviations of a 300-INR estimate at
//! these accuracies (sqrt(0.5 x 0.5 / 300) = 2.9 points). The same images are also fitted with the
//! reference's recipe: a model trained only on our fitter's INRs sees them outside its training
//! range and `nfn predict` warns; a model that also trained on reference-recipe INRs must score on
//! them within the same tolerance of its score on ours.

use std::path::{Path, PathBuf};
use std::process::Command;

use nfn_datasets::images::ImageSet;
use nfn_datasets::siren_fit::{fit_sirens, SirenFitConfig};

/// Test images fitted.
const N: i64 = 300;
/// Test images also fitted with the reference's recipe (the same first images).
const N_REFERENCE: i64 = N;
/// Allowed distance from the card, in accuracy points (see the module docs).
const TOLERANCE: f64 = 9.0;
/// Where `cargo xtask setup` installs FashionMNIST (Debian's `dataset-fashion-mnist`).
const FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

#[test]
fn shipped_models_match_their_cards_on_300_fresh_test_inrs() {
    let data = Path::new(FASHION_MNIST);
    assert!(
        data.join("t10k-images-idx3-ubyte.gz").exists(),
        "FashionMNIST is missing from {FASHION_MNIST}: `cargo xtask setup` installs it"
    );
    let images = ImageSet::fashion_mnist(data).unwrap();
    let (start, n) = (images.n_train, N);
    let labels = Vec::<i64>::try_from(&images.labels.narrow(0, start, n)).unwrap();
    let fit =
        fit_sirens(&images.images.narrow(0, start, n), &SirenFitConfig::default(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("test300.npz");
    fit.wsfeat.write_npz(&npz).unwrap();
    // The same images fitted with the reference's recipe (250 constant-lr steps each).
    let reference = fit_sirens(
        &images.images.narrow(0, start, N_REFERENCE),
        &SirenFitConfig::reference(),
        None,
    )
    .unwrap();
    let reference_npz = dir.path().join("reference100.npz");
    reference.wsfeat.write_npz(&reference_npz).unwrap();

    let card_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pretrained/fashion-mnist/card.json");
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(card_path).unwrap()).unwrap();
    let predict = |model: &str, inrs: &Path, n: i64| -> (f64, String) {
        let csv = dir.path().join(format!("{model}.csv"));
        let out = Command::new(env!("CARGO_BIN_EXE_nfn"))
            .args(["predict", "--pretrained", "fashion-mnist", "--model", model, "--inrs"])
            .arg(inrs)
            .arg("--out")
            .arg(&csv)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let predicted: Vec<i64> = std::fs::read_to_string(&csv)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(4).unwrap().parse().unwrap())
            .collect();
        assert_eq!(predicted.len(), n as usize);
        let right = predicted.iter().zip(&labels).filter(|(p, l)| p == l).count();
        (100.0 * right as f64 / n as f64, stderr)
    };
    for model in ["inr2array", "nft"] {
        let (accuracy, stderr) = predict(model, &npz, n);
        let card_accuracy = card["models"][model]["test_accuracy"].as_f64().unwrap();
        assert!(
            (accuracy - card_accuracy).abs() <= TOLERANCE,
            "{model}: {accuracy:.1}% on {n} fresh test INRs, the card says {card_accuracy:.1}%"
        );
        assert!(!stderr.contains("warning"), "our fitter's INRs are in range: {stderr}");
        // The same images fitted with the reference's recipe. A model trained on our fitter's
        // INRs only sees them outside its training range, and predict says so, naming the layer; a
        // model that also trained on reference-recipe INRs (`extra_train`, a `*-ref` set) does not
        // warn, and scores on them within the same 9 points of what it scores on ours.
        let (other, warned) = predict(model, &reference_npz, N_REFERENCE);
        let mixed = card["models"][model]["extra_train"].as_array().is_some_and(|sets| {
            sets.iter().any(|s| s.as_str().is_some_and(|s| s.ends_with("-ref")))
        });
        if mixed {
            assert!(!warned.contains("warning"), "{model} trained on reference INRs: {warned}");
            assert!(
                (accuracy - other).abs() <= TOLERANCE,
                "{model}: {accuracy:.1}% on our fitter's INRs, {other:.1}% on the reference's"
            );
        } else {
            assert!(warned.contains("warning") && warned.contains("mean |W"), "{warned}");
        }
        eprintln!(
            "{model}: {accuracy:.1}% on {n} fresh test INRs (card {card_accuracy:.1}%); \
             {other:.1}% on them fitted with the reference's recipe{}",
            if warned.is_empty() { String::new() } else { format!("; {warned}") }
        );
    }
}
