//! `nfn embed --run <inr2array_pretrain run> --inrs <INR set | reference .pth folder | .npz> --out
//! latents.npy`: the Inr2Array latent array of every INR, `[n, M, D]` f32, for use in any tool,
//! with `<out>.csv` beside it naming each row (index, split, image index, label where known).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nfn_datasets::Split;
use nfn_weightspace::WeightSpaceFeatures;
use tch::{Device, Kind};

use crate::driver::device;
use crate::experiments::inr2array_pretrain::load_pretrained;
use crate::inrs_input::{in_batches, read_inrs, InrFn};
use crate::pretrained;

/// Options of `embed`.
#[derive(clap::Args)]
pub struct Args {
    /// A trained Inr2Array pretraining run (its best encoder is used).
    #[arg(long, required_unless_present = "pretrained")]
    pub run: Option<PathBuf>,
    /// The encoder of a pretrained model shipped with nfn instead of a run, by data set
    /// (`fashion-mnist`).
    #[arg(long, conflicts_with = "run")]
    pub pretrained: Option<String>,
    /// An INR set folder, a reference SIREN folder (`randinit_smaller_<d>s/net<i>.pth`) or a `.npz`.
    #[arg(long)]
    pub inrs: PathBuf,
    /// The splits of an INR set to encode (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "train,val,test",
          value_parser = super::predict::parse_split)]
    pub splits: Vec<Split>,
    /// The `.npy` to write (`[n, M, D]` f32); the rows are named in `<out>.csv`.
    #[arg(long, default_value = "latents.npy")]
    pub out: PathBuf,
    /// INRs encoded per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch_size: i64,
}

/// Encode and write the latents and their row names.
///
/// # Errors
/// Not a pretraining run, INRs that do not fit its encoder, an unwritable output, each named.
pub fn run(args: &Args) -> Result<()> {
    let device = device();
    let (spec, encode): (_, Box<InrFn<'_>>) = match (&args.pretrained, &args.run) {
        (Some(name), _) => {
            let m = pretrained::load_inr2array(name)?.0;
            (m.spec.clone(), Box::new(move |x| m.latents(x)))
        }
        (None, Some(run)) => {
            let (_, set, _vs, autoencoder) = load_pretrained(run, device)?;
            let encode = move |x: &WeightSpaceFeatures| {
                let z =
                    tch::no_grad(|| autoencoder.encoder().forward_t(&x.to_device(device), false));
                z.to_kind(Kind::Float).to_device(Device::Cpu)
            };
            (set.manifest.spec.clone(), Box::new(encode))
        }
        (None, None) => bail!("--run or --pretrained"),
    };
    let inputs = read_inrs(&args.inrs, &spec, &args.splits)?;
    let n = inputs.wsfeat.batch_size();
    let latents = in_batches(&inputs.wsfeat, args.batch_size, "embed", &encode);
    nfn_weightspace::io::write_npy(&args.out, &latents)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let csv = args.out.with_extension("csv");
    nfn_weightspace::io::write_atomically(&csv, |file| {
        let mut w = |line: String| writeln!(file, "{line}").map_err(|e| e.to_string());
        w("index,split,image_index,label".into())?;
        for r in &inputs.rows {
            let label = r.label.map_or(String::new(), |l| l.to_string());
            w(format!("{},{},{},{label}", r.index, r.split, r.image_index))?;
        }
        Ok(())
    })?;
    println!(
        "embed: {n} INRs -> {} {:?} (rows named in {})",
        args.out.display(),
        latents.size(),
        csv.display()
    );
    Ok(())
}
