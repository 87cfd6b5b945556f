//! The experiment configs in `xtask/configs/inr2array_*.toml` parse and validate, and the paper
//! config equals the crate defaults.

use std::path::PathBuf;

use inr2array::{
    reference_trainer, AutoencoderConfig, ClassifierConfig, ClassifyConfig, PretrainConfig,
};

fn config(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../xtask/configs").join(name)
}

#[test]
fn pretrain_configs_parse() {
    let paper = PretrainConfig::read(&config("inr2array_fashion.toml")).expect("paper config");
    assert_eq!(paper.model, AutoencoderConfig::default());
    let reference = reference_trainer();
    assert_eq!(paper.trainer.optim, reference.optim);
    assert_eq!((paper.trainer.steps, paper.trainer.eval_every), (200_000, 1000));
    PretrainConfig::read(&config("inr2array_fashion_small.toml")).expect("small config");
}

#[test]
fn classify_configs_parse() {
    let paper = ClassifyConfig::read(&config("inr2array_fashion_cls.toml")).expect("paper config");
    assert_eq!(paper.model, ClassifierConfig::default());
    let trainer = paper.trainer_for(55_000 / 128);
    assert_eq!((trainer.steps, trainer.eval_every), (42_900, 429));
    let small = ClassifyConfig::read(&config("inr2array_fashion_cls_small.toml")).expect("small");
    assert_eq!(small.model, ClassifierConfig::small());
}

#[test]
fn wrong_task_and_unknown_fields_are_rejected() {
    let dir = std::env::temp_dir().join(format!("inr2array-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let text = std::fs::read_to_string(config("inr2array_fashion_small.toml")).expect("config");
    let bad_task = dir.join("task.toml");
    std::fs::write(&bad_task, text.replace("inr2array_pretrain", "inr2array_classify"))
        .expect("write");
    assert!(PretrainConfig::read(&bad_task).is_err());
    let unknown = dir.join("unknown.toml");
    std::fs::write(&unknown, text.replace("hidden_dim = 64", "hidden_dim = 64\nwidth = 3"))
        .expect("write");
    assert!(PretrainConfig::read(&unknown).is_err());
    std::fs::remove_dir_all(&dir).expect("temp dir");
}
