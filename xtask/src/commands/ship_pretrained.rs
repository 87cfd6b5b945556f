//! `cargo xtask ship-pretrained`: copy trained runs into the pretrained models shipped with the
//! project (`crates/nfn-cli/pretrained/<dataset>/`), with a `card.json` and a `MODEL.md` written
//! from the runs' own records (summary, config, the INR set's manifest). `nfn predict --pretrained
//! <dataset>` and `nfn embed --pretrained <dataset>` read them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::util::root;

/// Options of `ship-pretrained`.
#[derive(clap::Args)]
pub struct Args {
    /// The data set the models are for (the folder name under `crates/nfn-cli/pretrained/`).
    #[arg(long, default_value = "fashion-mnist")]
    pub dataset: String,
    /// The `inr2array_classify` run to ship (its encoder run comes with it).
    #[arg(long, default_value = "data/runs/inr2array_fashion_cls_12k_mixenc")]
    pub inr2array: PathBuf,
    /// Direct `inr_classification` runs to ship, each under its model kind (`nft`, `probegen`, ...).
    #[arg(long = "direct", alias = "nft", default_value = "data/runs/demo_nft_mix", num_args = 1..)]
    pub direct: Vec<PathBuf>,
    /// The model `nfn predict --pretrained` uses when none is named (default: the one with the
    /// highest test accuracy).
    #[arg(long)]
    pub default: Option<String>,
    /// Add (or replace) these direct runs' models in the data set's existing card, keeping the
    /// models already shipped (whose runs need not be on this machine), instead of shipping anew.
    #[arg(long, num_args = 1.., conflicts_with_all = ["inr2array", "direct"])]
    pub add: Vec<PathBuf>,
}

/// Most bytes of weights the repository takes (20 MB for every shipped model together, so the repository stays light).
const MAX_BYTES: u64 = 20 << 20;

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {path:?}"))
}

fn copy(from: &Path, to: &Path) -> Result<u64> {
    std::fs::copy(from, to).with_context(|| format!("copying {from:?} to {to:?}"))
}

/// The value of `key` in a run config's TOML text (`encoder_run = "..."`), unquoted.
fn toml_string(text: &str, key: &str) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    table.get(key)?.as_str().map(str::to_string)
}

/// The per-layer weight statistics of an INR set's training split, from `nfn inr-stats --json`.
fn weight_range(set: &Path) -> Result<Value> {
    let mut cmd = crate::util::cargo();
    cmd.args(["run", "--release", "--quiet", "-p", "nfn-cli", "--bin", "nfn", "--", "inr-stats"])
        .arg("--inrs")
        .arg(set)
        .arg("--json");
    let out = crate::util::output(&mut cmd)
        .with_context(|| format!("`nfn inr-stats --inrs {}` failed", set.display()))?;
    serde_json::from_str(&out).with_context(|| format!("parsing the statistics of {set:?}"))
}

/// The headline accuracy of a summary.
fn accuracy(summary: &Value) -> Option<f64> {
    summary["test"].as_array()?.iter().find(|m| m["metric"] == "accuracy")?["value"].as_f64()
}

/// One model's card entry from its run summary and its INR set's manifest.
/// The `data.extra_train` sets of a run's config (INR sets of other fitters it also trained on).
fn extra_train(run: &Path) -> Result<Vec<String>> {
    let path = run.join("config.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path:?}"))?;
    let table: toml::Table = text.parse().with_context(|| format!("parsing {path:?}"))?;
    let extra = table.get("data").and_then(|d| d.get("extra_train")).and_then(|e| e.as_array());
    Ok(extra
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default())
}

/// The weight range over a model's training sets: per layer the lowest 0.5% quantile, the main
/// set's median and the highest 99.5% quantile (a union of the sets' ranges).
fn union_range(sets: &[String]) -> Result<Value> {
    let ranges: Vec<Value> =
        sets.iter().map(|s| weight_range(&root().join(s))).collect::<Result<_>>()?;
    let column = |key: &str| -> Vec<Vec<f64>> {
        ranges
            .iter()
            .map(|r| {
                r[key].as_array().map_or(vec![], |a| a.iter().filter_map(Value::as_f64).collect())
            })
            .collect()
    };
    let (lo, hi) = (column("lo"), column("hi"));
    let fold = |cols: &[Vec<f64>], f: fn(f64, f64) -> f64| -> Vec<f64> {
        (0..cols[0].len())
            .map(|l| cols.iter().map(|c| c[l]).reduce(f).unwrap_or(f64::NAN))
            .collect()
    };
    Ok(
        json!({ "lo": fold(&lo, f64::min), "hi": fold(&hi, f64::max), "median": ranges[0]["median"] }),
    )
}

fn card_entry(summary: &Value, manifest: &Value, run: &Path, files: &[&str]) -> Result<Value> {
    let set = summary["data"]["path"].as_str().context("a summary without data.path")?;
    let extra = extra_train(run)?;
    let sets: Vec<String> = std::iter::once(set.to_string()).chain(extra.iter().cloned()).collect();
    Ok(json!({
        "experiment": summary["experiment"],
        "model": summary["model"],
        "params": summary["params"],
        "test_accuracy": accuracy(summary),
        "test_inrs": summary["data"]["test"],
        "data": summary["data"],
        "fit": manifest["fit"],
        "splits": manifest["splits"],
        "copies": manifest["copies"],
        "budget": summary["budget"],
        "hardware": summary["hardware"],
        "finished": summary["finished"],
        "paper": summary["paper"],
        "files": files,
        "extra_train": extra,
        "weight_range": union_range(&sets)?,
    }))
}

/// A data set's name in prose, for the model card.
fn title(dataset: &str) -> &str {
    match dataset {
        "fashion-mnist" => "FashionMNIST",
        "mnist" => "MNIST",
        "cifar10" => "CIFAR-10",
        "cifar10-subset" => "the CIFAR-10 subset",
        other => other,
    }
}

/// Copy one direct run into `out/<its model kind>/`; its name, card entry and bytes of weights.
fn ship_direct(run: &Path, out: &Path, spec: &Value) -> Result<(String, Value, u64)> {
    let summary = read_json(&run.join("summary.json"))?;
    let name = summary["model"].as_str().context("a summary without model")?.to_string();
    let path = summary["data"]["path"].as_str().context("a summary without data.path")?;
    let set = read_json(&root().join(path).join("manifest.json"))?;
    if set["spec"] != *spec {
        bail!("{run:?} reads other SIRENs than the card's models: {} vs {}", set["spec"], spec);
    }
    let dir = out.join(&name);
    std::fs::create_dir_all(&dir)?;
    let bytes = copy(&run.join("model.safetensors"), &dir.join("model.safetensors"))?;
    copy(&run.join("config.toml"), &dir.join("config.toml"))?;
    let entry = card_entry(&summary, &set, run, &["config.toml", "model.safetensors"])?;
    Ok((name, entry, bytes))
}

/// The model the card names when none is asked for: `asked`, else the most accurate.
fn default_model(
    models: &serde_json::Map<String, Value>,
    asked: Option<&String>,
) -> Result<String> {
    match asked {
        Some(d) if models.contains_key(d) => Ok(d.clone()),
        Some(d) => bail!("--default {d}: not among the shipped models"),
        None => models
            .iter()
            .max_by(|a, b| {
                let acc = |v: &Value| v["test_accuracy"].as_f64().unwrap_or(f64::MIN);
                acc(a.1).total_cmp(&acc(b.1))
            })
            .map(|(k, _)| k.clone())
            .context("no models"),
    }
}

/// Bytes of every weights file under `dir`.
fn weight_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {dir:?}"))? {
        let path = entry?.path();
        if path.is_dir() {
            total += weight_bytes(&path)?;
        } else if path.extension().is_some_and(|e| e == "safetensors") {
            total += std::fs::metadata(&path)?.len();
        }
    }
    Ok(total)
}

/// `--add`: put direct runs' models into an existing card, the other models kept as shipped.
fn add(args: &Args, out: &Path) -> Result<()> {
    let card_path = out.join("card.json");
    let mut card = read_json(&card_path)
        .with_context(|| format!("--add needs a shipped card: ship {} first", args.dataset))?;
    let spec = card["spec"].clone();
    let mut models = card["models"].as_object().cloned().context("a card without models")?;
    for run in &args.add {
        let (name, entry, _) = ship_direct(&root().join(run), out, &spec)?;
        eprintln!("xtask: {name} from {} into {}", run.display(), out.display());
        models.insert(name, entry);
    }
    let bytes = weight_bytes(out)?;
    if bytes > MAX_BYTES {
        bail!("the shipped weights take {bytes} bytes, over the {MAX_BYTES}-byte budget");
    }
    card["default"] = json!(default_model(&models, args.default.as_ref())?);
    card["models"] = Value::Object(models);
    let encoder = card["encoder"].clone();
    std::fs::write(&card_path, serde_json::to_string_pretty(&card)? + "\n")?;
    std::fs::write(out.join("MODEL.md"), model_md(&args.dataset, &card, &encoder)?)?;
    eprintln!(
        "xtask: {} now ships {} ({:.1} MB of weights), default {}",
        args.dataset,
        card["models"].as_object().map_or(0, |m| m.len()),
        bytes as f64 / (1 << 20) as f64,
        card["default"]
    );
    Ok(())
}

/// Copy the runs and write the card and the model card text.
pub fn run(args: &Args) -> Result<()> {
    let out = root().join("crates/nfn-cli/pretrained").join(&args.dataset);
    if !args.add.is_empty() {
        return add(args, &out);
    }
    let cls_run = root().join(&args.inr2array);
    let cls_config = std::fs::read_to_string(cls_run.join("config.toml"))
        .with_context(|| format!("reading {:?}", cls_run.join("config.toml")))?;
    let Some(encoder) = toml_string(&cls_config, "encoder_run") else {
        bail!("{cls_run:?} is not an inr2array_classify run (no encoder_run)");
    };
    let enc_run = root().join(encoder);
    let enc_config = std::fs::read_to_string(enc_run.join("config.toml"))
        .with_context(|| format!("reading {:?}", enc_run.join("config.toml")))?;
    let (cls_sum, enc_sum) =
        (read_json(&cls_run.join("summary.json"))?, read_json(&enc_run.join("summary.json"))?);
    let manifest_of = |summary: &Value| -> Result<Value> {
        let path = summary["data"]["path"].as_str().context("a summary without data.path")?;
        read_json(&root().join(path).join("manifest.json"))
    };
    let cls_set = manifest_of(&enc_sum)?;

    let inr_dir = out.join("inr2array");
    std::fs::create_dir_all(&inr_dir)?;
    let mut bytes = 0;
    bytes += copy(&enc_run.join("model.safetensors"), &inr_dir.join("encoder.safetensors"))?;
    bytes += copy(&cls_run.join("model.safetensors"), &inr_dir.join("model.safetensors"))?;
    std::fs::write(inr_dir.join("encoder.toml"), &enc_config)?;
    std::fs::write(inr_dir.join("config.toml"), &cls_config)?;
    let mut models = serde_json::Map::new();
    models.insert(
        "inr2array".into(),
        card_entry(
            &cls_sum,
            &cls_set,
            &cls_run,
            &["encoder.toml", "encoder.safetensors", "config.toml", "model.safetensors"],
        )?,
    );
    for run in &args.direct {
        let (name, entry, b) = ship_direct(&root().join(run), &out, &cls_set["spec"])?;
        if models.contains_key(&name) {
            bail!("two runs of model kind {name}: ship one");
        }
        bytes += b;
        models.insert(name, entry);
    }
    if bytes > MAX_BYTES {
        bail!("the shipped weights take {bytes} bytes, over the {MAX_BYTES}-byte budget");
    }
    let default = default_model(&models, args.default.as_ref())?;

    let card = json!({
        "dataset": args.dataset,
        "spec": cls_set["spec"],
        "image_shape": cls_set["image_shape"],
        "num_classes": 10,
        "default": default,
        "models": models,
        "encoder": card_entry(&enc_sum, &cls_set, &enc_run, &[])?,
    });
    std::fs::write(out.join("card.json"), serde_json::to_string_pretty(&card)? + "\n")?;
    std::fs::write(out.join("MODEL.md"), model_md(&args.dataset, &card, &enc_sum)?)?;
    eprintln!(
        "xtask: shipped {} ({:.1} MB of weights) into {}",
        args.dataset,
        bytes as f64 / (1 << 20) as f64,
        out.display()
    );
    Ok(())
}

/// The INR sets a card entry trained on: its data set and any `extra_train` sets.
fn trained_on(e: &Value) -> String {
    let main = e["data"]["name"].as_str().unwrap_or("?").to_string();
    let extra = e["extra_train"].as_array().into_iter().flatten().filter_map(Value::as_str);
    std::iter::once(main)
        .chain(extra.map(|p| p.rsplit('/').next().unwrap_or(p).to_string()))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// What a shipped model is, in a few words.
fn describe(name: &str) -> &'static str {
    match name {
        "inr2array" => "Inr2Array encoder + latent transformer",
        "nft" => "NFT classifier on the weights",
        "nfn-hnp" | "nfn-np" => "NFN classifier on the weights",
        "probe" => "probing: the SIREN at 64 learned points, then an MLP",
        "probegen" => "ProbeGen: the SIREN at 64 generated points, then an MLP",
        "mlp" => "MLP on the flattened weights",
        _ => "classifier on the weights",
    }
}

/// The model card, from the card's records.
fn model_md(dataset: &str, card: &Value, enc_sum: &Value) -> Result<String> {
    let mut md = String::new();
    let models = card["models"].as_object().context("a card without models")?;
    let default = card["default"].as_str().unwrap_or("inr2array");
    let others: Vec<&str> = models.keys().map(String::as_str).filter(|k| *k != default).collect();
    let fit = &models["inr2array"]["fit"];
    let _ = writeln!(
        md,
        "# Pretrained models: {dataset}\n\n\
         Written by `cargo xtask ship-pretrained` from the runs named below; do not edit by hand.\n\
         All read single-channel SIRENs of widths 2-32-32-1 (the reference's SIREN, omega0 30)\n\
         and output the 10 class probabilities:\n\n\
         ```sh\n\
         nfn predict --pretrained {dataset} --inrs <INR set | reference .pth folder | .npz> [--model {}]\n\
         nfn embed --pretrained {dataset} --inrs ... --out latents.npy   # Inr2Array latents\n\
         ```\n",
        others.join("|")
    );
    let _ = writeln!(
        md,
        "| model | test accuracy | test INRs | trained on | budget | params | paper |\n|---|---|---|---|---|---|---|"
    );
    for (key, e) in models {
        let budget = &e["budget"];
        let what = describe(key);
        let note = if key == default { " (the default)" } else { "" };
        let _ = writeln!(
            md,
            "| `{key}`: {what}{note} | **{:.1}%** | {} | {} ({} train INRs) | {} steps x {} ({:.1} min, {}) | {} | {} |",
            e["test_accuracy"].as_f64().unwrap_or(f64::NAN),
            e["test_inrs"],
            trained_on(e),
            e["data"]["train"],
            budget["steps"],
            budget["batch_size"],
            budget["train_seconds"].as_f64().unwrap_or(f64::NAN) / 60.0,
            e["hardware"].as_str().unwrap_or("?"),
            e["params"],
            e["paper"]["metric"].as_f64().map_or("–".into(), |p| format!("{p}%")),
        );
    }
    let eb = &enc_sum["budget"];
    let splits = &models["inr2array"]["splits"];
    // Augmentation copies of the Inr2Array model's INR set (cards written before this was recorded
    // shipped none).
    let copies = models["inr2array"]["copies"].as_u64().unwrap_or(0) > 0;
    let paper = models["inr2array"]["paper"]["metric"].as_f64();
    let _ = writeln!(
        md,
        "\nThe Inr2Array encoder was pretrained for {} steps x {} ({:.0} min) on `{}`; its test \
         reconstruction MSE is in its summary (`card.json`, `encoder`).\n\n\
         ## Data\n\n\
         {} images fitted here by `nfn fit-inrs` (our fitter: Adam, {} steps at most, \
         learning rate {} with cosine decay to {}x, early stop at {} dB PSNR, seed {}), split by \
         image index as in `card.json` (`splits`: train {}, validation {}, test {}). {} \
         A set named `*-ref` holds the same images fitted with the \
         reference's recipe (`nfn fit-inrs --recipe reference`: Adam 1e-3 constant, 250 steps, no \
         early stop); a model listing one also trained on those INRs (`data.extra_train`), so that \
         it has seen SIRENs of more than one fitter. Validation and test INRs are our fitter's.\n\n\
         ## How far to trust it\n\n\
         - Budgets: minutes to hours of training on a 2-core CPU (the column above), not the \
         paper's 200k GPU steps{}.\n\
         - INRs from other fitters: SIRENs fitted with the reference's PyTorch recipe have \
         differently distributed weights (for example mean |W1| 0.015 vs our 0.019, `nfn \
         fit-inrs --recipe reference` fits that way). A model trained only on our fitter's INRs \
         may score far lower on them; the models above that list a `*-ref` set also trained on such \
         INRs, which narrows the gap (`crates/nfn-cli/tests/pretrained.rs` measures both recipes \
         and prints them; docs/fitting.md records the numbers). \
         Fit your INRs with `nfn fit-inrs` for numbers like the ones above. `nfn predict` warns, \
         naming the layer, when more than 5% of the INRs it is given have a layer's mean |W| \
         outside the 0.5-99.5% range of the model's training INRs (over all its training sets; \
         `weight_range` in \
         `card.json`; `nfn inr-stats --inrs <yours>` shows your INRs' statistics).\n\
         - `crates/nfn-cli/tests/pretrained.rs` fits the first 300 test images of {} \
         (when the data set is on the machine) and checks each model's accuracy on them against this \
         card: within three binomial standard deviations of a 300-sample estimate at the card's \
         accuracy (at least 3 points).\n",
        eb["steps"],
        eb["batch_size"],
        eb["train_seconds"].as_f64().unwrap_or(f64::NAN) / 60.0,
        enc_sum["data"]["name"].as_str().unwrap_or("?"),
        title(dataset),
        fit["steps"],
        fit["lr"],
        fit["lr_final_factor"],
        fit["target_psnr"],
        fit["seed"],
        splits["train"],
        splits["val"],
        splits["test"],
        if copies {
            "The training INRs include augmentation copies (the same training images fitted again \
             from other random starts)."
        } else {
            "No augmentation copies."
        },
        paper.map_or(String::new(), |p| format!(" (the paper's Inr2Array reaches {p}%)")),
        title(dataset),
    );
    Ok(md)
}
