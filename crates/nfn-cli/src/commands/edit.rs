//! `nfn edit --run <editing run> --inrs <INR set | .npz> --out <path>`: apply a trained editor to
//! your own INRs and write the edited weights in the format they came in (an INR set, shard by
//! shard with the same labels and indices, or a `.npz` of weight-space features), optionally with a
//! PNG of the first INRs before and after.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nfn_datasets::inr_set::{features_from_flat, shard_path, ShardRecords};
use nfn_datasets::InrSetManifest;
use nfn_weightspace::{render_siren, WeightSpaceFeatures};
use tch::{Kind, Tensor};

use crate::driver::progress_bar;
use crate::experiments::edit::Editor;

/// Options of `edit`.
#[derive(clap::Args)]
pub struct Args {
    /// The INR editing run whose best editor to apply.
    #[arg(long)]
    pub run: PathBuf,
    /// An INR set folder (from `nfn fit-inrs` or `nfn convert-inrs`) or a `.npz` of SIRENs.
    #[arg(long)]
    pub inrs: PathBuf,
    /// Where the edited INRs go: a folder for an INR set, a `.npz` file for a `.npz`.
    #[arg(long)]
    pub out: PathBuf,
    /// Also draw the first N INRs before (top) and after (bottom) into `<out>.png`.
    #[arg(long)]
    pub png: Option<i64>,
    /// INRs edited per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch_size: i64,
}

/// Edit `sirens` in batches.
fn edit_all(
    editor: &Editor,
    sirens: &WeightSpaceFeatures,
    batch: i64,
) -> Result<WeightSpaceFeatures> {
    let n = sirens.batch_size();
    let parts = (0..n)
        .step_by(batch.max(1) as usize)
        .map(|start| {
            let idx = Tensor::arange_start(
                start,
                (start + batch).min(n),
                (Kind::Int64, tch::Device::Cpu),
            );
            editor.apply(&sirens.index_batch(&idx))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(WeightSpaceFeatures::cat_batch(&parts.iter().collect::<Vec<_>>())?)
}

/// Edit every shard of the INR set `dir` into `out` (shards already there are kept: resumable);
/// the first shard before and after.
fn edit_set(
    editor: &Editor,
    dir: &Path,
    out: &Path,
    batch: i64,
) -> Result<(WeightSpaceFeatures, WeightSpaceFeatures)> {
    let manifest = InrSetManifest::read(dir)?;
    manifest.create_or_check(out)?;
    let total: i64 = manifest.shards.iter().map(|s| s.len).sum();
    let bar = progress_bar("edit", total as u64);
    let mut first = None;
    for shard in &manifest.shards {
        let (src, dst) = (shard_path(dir, shard), shard_path(out, shard));
        let records = ShardRecords::read(&src)?;
        let edited = match ShardRecords::read(&dst) {
            Ok(done) => done,
            Err(_) => {
                let flat = Tensor::from_slice(&records.params).view([records.len() as i64, -1]);
                let sirens = features_from_flat(&flat, &manifest.spec)?;
                let flat = edit_all(editor, &sirens, batch)?.flatten().squeeze_dim(1);
                let params =
                    Vec::<f32>::try_from(flat.to_kind(Kind::Float).contiguous().view([-1]))?;
                let edited = ShardRecords {
                    params,
                    psnr: vec![f32::NAN; records.len()],
                    steps: vec![0; records.len()],
                    ..records.clone()
                };
                edited.write(&dst)?;
                edited
            }
        };
        if first.is_none() {
            let features = |r: &ShardRecords| {
                let flat = Tensor::from_slice(&r.params).view([r.len() as i64, -1]);
                features_from_flat(&flat, &manifest.spec)
            };
            first = Some((features(&records)?, features(&edited)?));
        }
        bar.inc(shard.len as u64);
    }
    bar.finish();
    eprintln!(
        "nfn: wrote {total} edited INRs to {} ({} shards)",
        out.display(),
        manifest.shards.len()
    );
    first.context("the INR set has no shards")
}

/// Apply the editor and write the result (and the picture).
pub fn run(args: &Args) -> Result<()> {
    let editor = Editor::load(&args.run)?;
    eprintln!(
        "nfn: editing {} with {} ({}, {})",
        args.inrs.display(),
        args.run.display(),
        editor.cfg.model.name(),
        editor.cfg.style.name()
    );
    let is_npz = args.inrs.extension().is_some_and(|e| e == "npz");
    let (before, after) = if is_npz {
        let sirens = WeightSpaceFeatures::read_npz(&args.inrs)?;
        let edited = edit_all(&editor, &sirens, args.batch_size)?;
        edited.write_npz(&args.out)?;
        eprintln!("nfn: wrote {} edited INRs to {}", edited.batch_size(), args.out.display());
        (sirens, edited)
    } else if args.inrs.join("manifest.json").exists() {
        edit_set(&editor, &args.inrs, &args.out, args.batch_size)?
    } else {
        bail!("{:?} is neither an INR set folder (with manifest.json) nor a .npz file", args.inrs);
    };
    if let Some(n) = args.png {
        let n = n.clamp(1, before.batch_size());
        let idx = Tensor::arange(n, (Kind::Int64, tch::Device::Cpu));
        let [h, w] = editor.image_size();
        let rows = [
            render_siren(&before.index_batch(&idx), h, w)?,
            render_siren(&after.index_batch(&idx), h, w)?,
        ];
        let png = args.out.with_extension("png");
        super::show::tile(&rows, 4)?.save(&png).with_context(|| format!("writing {png:?}"))?;
        eprintln!("nfn: drew {n} INRs before and after into {}", png.display());
    }
    Ok(())
}
