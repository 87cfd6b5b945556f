//! Plans of `cargo xtask reproduce`: the steps of a handful of configs, a plan for every config in
//! `xtask/configs/`, and the errors for data the plan cannot make. Nothing here runs a step.

use std::fs;
use std::path::Path;

use super::*;
use crate::util::root;

/// The plan of `config` on this workspace, as command lines.
fn lines(config: &str, fashion_mnist_installed: bool) -> Vec<String> {
    let env = PlanEnv { root: root(), fashion_mnist_installed };
    let steps = plan(&config_path(config), &env).unwrap();
    steps.iter().map(Step::command_line).collect()
}

/// A workspace in a temporary folder holding only `configs` (`(file name, text)`).
fn workspace(configs: &[(&str, &str)]) -> (tempfile::TempDir, PlanEnv) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("xtask/configs")).unwrap();
    for (name, text) in configs {
        fs::write(dir.path().join("xtask/configs").join(name), text).unwrap();
    }
    let env = PlanEnv { root: dir.path().to_path_buf(), fashion_mnist_installed: true };
    (dir, env)
}

/// The error of planning `config` in `env`, with its causes.
fn plan_error(config: &str, env: &PlanEnv) -> String {
    format!("{:#}", plan(&config_path(config), env).unwrap_err())
}

#[test]
fn config_names_resolve_to_the_configs_folder() {
    assert_eq!(config_path("fmnist_nft_small"), Path::new("xtask/configs/fmnist_nft_small.toml"));
    assert_eq!(config_path("fmnist_nft_small.toml"), config_path("fmnist_nft_small"));
    assert_eq!(config_path("xtask/configs/a.toml"), Path::new("xtask/configs/a.toml"));
    assert_eq!(config_path("/tmp/a.toml"), Path::new("/tmp/a.toml"));
}

#[test]
fn latent_classifier_trains_its_encoder_run_first() {
    assert_eq!(
        lines("inr2array_mnist_cls", true),
        [
            "cargo xtask download siren-mnist",
            "cargo xtask convert-inrs --from data/siren/siren_mnist_wts --dataset mnist --copies 10",
            "cargo xtask train xtask/configs/inr2array_mnist.toml",
            "cargo xtask eval data/runs/inr2array_mnist",
            "cargo xtask train xtask/configs/inr2array_mnist_cls.toml",
            "cargo xtask eval data/runs/inr2array_mnist_cls",
        ]
    );
}

#[test]
fn cifar10_classification_converts_twenty_copies() {
    assert_eq!(
        lines("cifar10_nfn_hnp", true),
        [
            "cargo xtask download siren-cifar",
            "cargo xtask convert-inrs --from data/siren/siren_cifar_wts --dataset cifar10 --copies 20",
            "cargo xtask train xtask/configs/cifar10_nfn_hnp.toml",
            "cargo xtask eval data/runs/cifar10_nfn_hnp",
        ]
    );
}

#[test]
fn inr2array_cifar10_has_a_ten_copy_set_of_its_own() {
    assert_eq!(
        lines("inr2array_cifar10", true)[1],
        "cargo xtask convert-inrs --from data/siren/siren_cifar_wts --dataset cifar10 --copies 10 \
         --out data/inrs/cifar10-reference-aug10"
    );
}

#[test]
fn demo_sized_set_is_fitted_and_fashion_mnist_downloaded_only_when_missing() {
    let fit = "cargo xtask fit-inrs --dataset fashion-mnist --limit 3000 --out \
               data/inrs/fashion-mnist-demo";
    let tail = [
        fit,
        "cargo xtask train xtask/configs/fmnist_nft_small.toml",
        "cargo xtask eval data/runs/fmnist_nft_small",
    ];
    assert_eq!(lines("fmnist_nft_small", true), tail);
    let mut with_download = vec!["cargo xtask download fashion-mnist"];
    with_download.extend(tail);
    assert_eq!(lines("fmnist_nft_small", false), with_download);
}

#[test]
fn full_and_12k_sets_are_fitted() {
    assert_eq!(
        lines("fmnist_nft", true)[0],
        "cargo xtask fit-inrs --dataset fashion-mnist --copies 10 --out data/inrs/fashion-mnist"
    );
    assert_eq!(
        lines("inr2array_fashion_12k", true)[0],
        "cargo xtask fit-inrs --dataset fashion-mnist --limit 12000 --out data/inrs/fashion-mnist-12k"
    );
}

#[test]
fn editing_needs_the_images_and_shares_the_sets_copies() {
    // mnist_nft reads data/inrs/mnist-reference with its copies, and convert-inrs would refuse to
    // resume the set with other options, so the editing plan converts the same set.
    assert_eq!(
        lines("edit_mnist_dilate_nft", true),
        [
            "cargo xtask download siren-mnist",
            "cargo xtask convert-inrs --from data/siren/siren_mnist_wts --dataset mnist --copies 10",
            "cargo xtask download mnist",
            "cargo xtask train xtask/configs/edit_mnist_dilate_nft.toml",
            "cargo xtask eval data/runs/edit_mnist_dilate_nft",
        ]
    );
    assert_eq!(
        lines("edit_fmnist_gradient_nft", false)[1..3],
        [
            "cargo xtask convert-inrs --from data/siren/siren_fashion_wts --dataset fashion-mnist",
            "cargo xtask download fashion-mnist",
        ]
    );
}

#[test]
fn downloaded_zoo_comes_with_the_split_files() {
    assert_eq!(
        lines("zoo_svhn_nft", true),
        [
            "cargo xtask download cnn-zoo-svhn",
            "cargo xtask download cnn-zoo-splits",
            "cargo xtask train xtask/configs/zoo_svhn_nft.toml",
            "cargo xtask eval data/runs/zoo_svhn_nft",
        ]
    );
}

#[test]
fn generated_zoo_is_made_with_its_recorded_options() {
    assert_eq!(
        lines("zoo_fmnist2k_nft", true),
        [
            "nfn make-zoo --dataset fashion-mnist --networks 2000 --epochs 0,1,2,4 \
             --steps-per-epoch 100 --eval-images 2000 --train-eval-images 500 \
             --out data/zoo/fashion-mnist-2k",
            "cargo xtask train xtask/configs/zoo_fmnist2k_nft.toml",
            "cargo xtask eval data/runs/zoo_fmnist2k_nft",
        ]
    );
}

#[test]
fn every_config_has_a_plan_of_valid_xtask_command_lines() {
    let env = PlanEnv { root: root(), fashion_mnist_installed: false };
    let mut count = 0;
    for entry in fs::read_dir(root().join(config::CONFIGS_DIR)).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".toml") else { continue };
        let steps = plan(&config_path(stem), &env).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        for step in steps.iter().filter(|s| s.runner == Runner::Xtask) {
            let words = std::iter::once("cargo xtask").chain(step.argv.iter().map(String::as_str));
            crate::Cli::try_parse_from(words)
                .unwrap_or_else(|e| panic!("{name}: `{}`: {e}", step.command_line()));
        }
        let [.., train, eval] = steps.as_slice() else { panic!("{name}: {steps:?}") };
        assert_eq!(train.argv, ["train", &format!("xtask/configs/{name}")], "{name}");
        assert_eq!(eval.argv[0], "eval", "{name}");
        count += 1;
    }
    assert!(count >= 60, "only {count} configs");
}

#[test]
fn unknown_data_paths_are_errors_naming_them() {
    let (_dir, env) = workspace(&[
        ("svhn.toml", "name = \"svhn\"\n[data]\ninrs = \"data/inrs/svhn\"\n"),
        ("zoo.toml", "name = \"zoo\"\n[data]\nzoo = \"data/zoo/mine\"\n"),
        (
            "split.toml",
            "name = \"split\"\n[data]\nzoo = \"data/cnn_zoo/mnist\"\nsplit = \"x.csv\"\n",
        ),
        (
            "edit.toml",
            "name = \"edit\"\ntask = \"inr_editing\"\nimages = \"/srv/mnist\"\n\
             [data]\ninrs = \"data/inrs/mnist-demo\"\n",
        ),
        ("none.toml", "name = \"none\"\n[data]\nbatch_size = 8\n"),
    ]);
    for (config, path) in [
        ("svhn", "data/inrs/svhn"),
        ("zoo", "data/zoo/mine"),
        ("split", "x.csv"),
        ("edit", "/srv/mnist"),
    ] {
        let err = plan_error(config, &env);
        assert!(err.contains("does not know how to make"), "{err}");
        assert!(err.contains(&format!("{path:?}")), "{err}");
    }
    assert!(plan_error("none", &env).contains("names no data"));
}

#[test]
fn configs_that_disagree_on_a_sets_copies_are_an_error() {
    let (_dir, env) = workspace(&[
        (
            "a.toml",
            "name = \"a\"\ntask = \"inr2array_pretrain\"\n\
             [data]\ninrs = \"data/inrs/cifar10-reference\"\nuse_copies = true\n",
        ),
        (
            "b.toml",
            "name = \"b\"\n[data]\ninrs = \"data/inrs/cifar10-reference\"\nuse_copies = true\n",
        ),
    ]);
    let err = plan_error("b", &env);
    assert!(err.contains("wants 20") && err.contains("cifar10-reference-aug20"), "{err}");
}

#[test]
fn a_set_named_aug_k_is_made_and_read_with_k_copies() {
    // the full FashionMNIST encoder reads 2 copies where the Inr2Array protocol has 10
    assert_eq!(
        lines("inr2array_fashion_full", true)[0],
        "cargo xtask fit-inrs --dataset fashion-mnist --copies 2 --out data/inrs/fashion-mnist-aug2"
    );
    let plan = lines("inr2array_fashion_cls_full", true);
    assert_eq!(plan[0], lines("inr2array_fashion_full", true)[0], "the encoder's set first");
    assert!(plan.iter().any(|l| l.ends_with("inr2array_fashion_cls_full.toml")), "{plan:?}");
}

#[test]
fn encoder_run_needs_its_pretraining_config() {
    let (_dir, env) = workspace(&[(
        "cls.toml",
        "name = \"cls\"\ntask = \"inr2array_classify\"\nencoder_run = \"data/runs/gone\"\n",
    )]);
    let err = plan_error("cls", &env);
    assert!(err.contains("no config") && err.contains("\"gone\""), "{err}");
}

#[test]
fn dry_run_lists_numbered_steps_with_quoted_command_lines() {
    let step = Step {
        what: "train".into(),
        runner: Runner::Xtask,
        argv: vec!["train".into(), "my configs/a b.toml".into()],
    };
    assert_eq!(step.command_line(), "cargo xtask train 'my configs/a b.toml'");
    let text = format_plan(Path::new("x.toml"), &[step]);
    assert_eq!(
        text,
        "reproduce x.toml: 1 steps (each resumable: rerun to continue after a stop)\n  1. train\n     \
         cargo xtask train 'my configs/a b.toml'\n"
    );
}

#[test]
fn extra_training_sets_are_made_too_with_their_recipe() {
    assert_eq!(
        lines("demo_nft_mix", true),
        [
            "cargo xtask fit-inrs --dataset fashion-mnist --limit 3000 --out data/inrs/fashion-mnist-demo",
            "cargo xtask fit-inrs --dataset fashion-mnist --limit 3000 --recipe reference --out data/inrs/fashion-mnist-demo-ref",
            "cargo xtask train xtask/configs/demo_nft_mix.toml",
            "cargo xtask eval data/runs/demo_nft_mix",
        ]
    );
}
