//! `nfn show <run>`: a PNG of a run's work on its first test INRs. For an Inr2Array pretraining run:
//! original images, the input SIRENs' renderings and the reconstructions; for an editing run:
//! original images, the edited targets, the input SIRENs and the edited SIRENs; for a CNN
//! generalisation run: predicted against true test accuracy of every test network (a scatter).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nfn_datasets::Split;
use nft_model::Run;
use tch::{Device, Kind, Tensor};

use crate::data::original_images;
use crate::driver::device;
use crate::experiments::inr2array_pretrain::load_pretrained;
use crate::experiments::{edit, zoo, ExperimentKind};

/// Options of `show`.
#[derive(clap::Args)]
pub struct Args {
    /// An Inr2Array pretraining, INR editing or CNN generalisation run folder, or a CNN zoo folder
    /// (a histogram of its networks' final test accuracies).
    pub run: PathBuf,
    /// The PNG to write (default `<run>/show.png`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How many test INRs to draw.
    #[arg(long, default_value_t = 8)]
    pub count: i64,
    /// The image data set folder for the top row (default: the INR set's data set at its usual
    /// place).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Pixels per image pixel.
    #[arg(long, default_value_t = 4)]
    pub scale: u32,
}

/// Rows of `[n, c, h, w]` images in `[-1, 1]` as one RGB picture.
pub fn tile(rows: &[Tensor], scale: u32) -> Result<image::RgbImage> {
    let (n, c, h, w) = rows[0].size4()?;
    let gap = 2u32;
    let (th, tw) = (h as u32 * scale, w as u32 * scale);
    let width = n as u32 * (tw + gap) + gap;
    let height = rows.len() as u32 * (th + gap) + gap;
    let mut img = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    for (r, row) in rows.iter().enumerate() {
        let px = ((row.to_kind(Kind::Float).clamp(-1.0, 1.0) + 1.0) * 127.5)
            .round()
            .to_kind(Kind::Uint8);
        let px = px.to_device(Device::Cpu).contiguous();
        let data = Vec::<u8>::try_from(&px.view([-1]))?;
        for i in 0..n as u32 {
            for y in 0..th {
                for x in 0..tw {
                    let at = |ch: i64| {
                        let ch = ch.min(c - 1);
                        data[(((i as i64 * c + ch) * h + (y / scale) as i64) * w
                            + (x / scale) as i64) as usize]
                    };
                    let (ox, oy) = (gap + i * (tw + gap) + x, gap + r as u32 * (th + gap) + y);
                    img.put_pixel(ox, oy, image::Rgb([at(0), at(1), at(2)]));
                }
            }
        }
    }
    Ok(img)
}

/// `nfn show <run>`: a PNG with, per test INR, the original image (if available), the input
/// SIREN's rendering and the reconstruction.
pub fn run(args: &Args) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(|| args.run.join("show.png"));
    if args.run.join("metrics.csv.gz").exists() && args.run.join("weights.npy").exists() {
        // a zoo folder: the spread of its networks' accuracies
        let line = crate::commands::make_zoo::accuracy_histogram(&args.run, &out)?;
        println!("{line}");
        return Ok(());
    }
    let run = Run::open(&args.run)?;
    let (rows, what) = match ExperimentKind::of_config(&run.config())? {
        ExperimentKind::Zoo => return zoo_scatter(&run, &out),
        ExperimentKind::Inr2ArrayPretrain => reconstruction_rows(args)?,
        ExperimentKind::Edit => {
            let (rows, mse) = edit::show_rows(&run, args.count, args.images.as_deref())?;
            (rows, format!("original, target, input INR, edited INR; edited MSE {mse:.6}"))
        }
        other => bail!(
            "{:?} is a {other:?} run; nfn show draws Inr2Array pretraining, INR editing and CNN \
             generalisation runs",
            args.run
        ),
    };
    tile(&rows, args.scale.max(1))?.save(&out).with_context(|| format!("writing {out:?}"))?;
    let n = rows[0].size()[0];
    println!(
        "{}: wrote {} ({} rows x {n} test INRs: {what})",
        args.run.display(),
        out.display(),
        rows.len()
    );
    Ok(())
}

/// Original images (if readable), input SIRENs and reconstructions of an Inr2Array pretraining run.
fn reconstruction_rows(args: &Args) -> Result<(Vec<Tensor>, String)> {
    let device = device();
    let (_cfg, set, _vs, model) = load_pretrained(&args.run, device)?;
    let test = set.load(Split::Test, false)?;
    let n = args.count.clamp(1, test.len().max(1));
    let idx = Tensor::arange(n, (Kind::Int64, Device::Cpu));
    let sirens = test.features(&idx)?.to_device(device);
    let (target, recon) = tch::no_grad(|| -> Result<_> {
        Ok((model.target(&sirens)?, model.reconstruct(&sirens, false)))
    })?;
    let mse = (&recon - &target).square().mean(Kind::Double).double_value(&[]);
    let mut rows = Vec::new();
    let index = test.image_index.narrow(0, 0, n);
    if let Some(images) = original_images(&set, &index, args.images.as_deref()) {
        rows.push(images);
    }
    rows.extend([target, recon]);
    Ok((rows, format!("original, input INR, reconstruction; reconstruction MSE {mse:.6}")))
}

/// Predicted against true test accuracy of the test networks of a zoo run, with τ in the title.
fn zoo_scatter(run: &Run, out: &std::path::Path) -> Result<()> {
    let (pred, truth) = zoo::test_predictions(run)?;
    let (pred, truth) = (
        Vec::<f64>::try_from(&pred.to_kind(Kind::Double))?,
        Vec::<f64>::try_from(&truth.to_kind(Kind::Double))?,
    );
    let tau = nft_model::train::kendall_tau_b(&truth, &pred);
    let name = run.path().file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let title = format!("{name}: tau {tau:.3}");
    let img = crate::plot::scatter(&title, "true test accuracy", "predicted", &truth, &pred);
    img.save(out).with_context(|| format!("writing {out:?}"))?;
    println!(
        "{}: wrote {} (predicted vs true test accuracy of {} test networks; Kendall tau {tau:.4})",
        run.path().display(),
        out.display(),
        truth.len()
    );
    Ok(())
}
