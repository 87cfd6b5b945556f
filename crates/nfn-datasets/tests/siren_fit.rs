//! Batched SIREN fitting on small synthetic images: PSNR rises, early stopping works, and the
//! returned weights, rendered with `render_siren`, reproduce the reported PSNR.

use anyhow::Result;
use nfn_datasets::siren_fit::{fit_sirens, psnr_from_mse, FitProgress, SirenFitConfig};
use nfn_weightspace::{pixel_grid, render_siren, NetworkSpec};
use tch::{Device, Kind, Tensor};

/// Four 28x28 FashionMNIST-like images in [-1, 1]: a dark background with a bright smooth blob,
/// a bar and a ring (garment-like shapes without fine texture).
fn synthetic_images() -> Tensor {
    let opts = (Kind::Float, Device::Cpu);
    let grid = pixel_grid(28, 28, opts); // [784, 2]
    let (r, c) = (grid.select(1, 0), grid.select(1, 1));
    let blob = (-((&r - 0.1).square() + (&c + 0.2).square()) * 6.0).exp();
    let bar = ((&c * 4.0).cos().relu()) * (-r.square() * 2.0).exp();
    let ring = (-(((r.square() + c.square()).sqrt() - 0.5).square() * 40.0)).exp();
    let shirt = (r.abs().lt(0.7).to_kind(Kind::Float) * c.abs().lt(0.4).to_kind(Kind::Float)) * 0.8;
    let images = Tensor::stack(&[blob, bar, ring, shirt], 0).clamp(0.0, 1.0) * 2.0 - 1.0;
    images.reshape([4, 1, 28, 28])
}

fn rendered_psnr(
    wsfeat: &nfn_weightspace::WeightSpaceFeatures,
    images: &Tensor,
) -> Result<Vec<f64>> {
    let ys = render_siren(wsfeat, 28, 28)?; // [4, 1, 28, 28]
    let mse = (ys - images).square().mean_dim(&[1i64, 2, 3][..], false, Kind::Double);
    Ok(Vec::<f64>::try_from(mse)?.into_iter().map(psnr_from_mse).collect())
}

#[test]
fn fitting_raises_psnr_and_weights_reproduce_it() -> Result<()> {
    let images = synthetic_images();
    let start =
        fit_sirens(&images, &SirenFitConfig { steps: 0, seed: 3, ..Default::default() }, None)?;
    let cfg = SirenFitConfig {
        steps: 150,
        lr: 5e-3,
        lr_final_factor: 0.1,
        target_psnr: None,
        seed: 3,
        ..Default::default()
    };
    let mut calls = 0;
    let mut cb = |p: &FitProgress| {
        assert_eq!(p.total, 4);
        calls += 1;
    };
    let fit = fit_sirens(&images, &cfg, Some(&mut cb))?;
    assert_eq!(calls, 151);
    assert_eq!(fit.wsfeat.spec()?, NetworkSpec::siren(1));
    assert_eq!(fit.wsfeat.batch_size(), 4);
    assert_eq!(fit.steps, vec![150; 4]);
    for (i, (&p0, &p1)) in start.psnr.iter().zip(&fit.psnr).enumerate() {
        assert!(p1 > 28.0 && p1 > p0 + 15.0, "image {i}: PSNR {p0:.1} -> {p1:.1} dB");
    }
    for (reported, rendered) in fit.psnr.iter().zip(rendered_psnr(&fit.wsfeat, &images)?) {
        assert!((reported - rendered).abs() < 0.05, "reported {reported} vs rendered {rendered}");
    }
    Ok(())
}

#[test]
fn early_stopping_freezes_each_siren_at_its_target() -> Result<()> {
    let images = synthetic_images();
    let cfg = SirenFitConfig {
        steps: 150,
        lr: 5e-3,
        target_psnr: Some(22.0),
        seed: 1,
        ..Default::default()
    };
    let fit = fit_sirens(&images, &cfg, None)?;
    assert!(fit.steps.iter().all(|&s| s < 150), "steps {:?}", fit.steps);
    assert!(fit.psnr.iter().all(|&p| p >= 22.0), "psnr {:?}", fit.psnr);
    // The stored weights are the ones that met the target, not later ones.
    for (reported, rendered) in fit.psnr.iter().zip(rendered_psnr(&fit.wsfeat, &images)?) {
        assert!((reported - rendered).abs() < 0.05, "reported {reported} vs rendered {rendered}");
    }
    // Same seed, same result.
    let again = fit_sirens(&images, &cfg, None)?;
    assert_eq!(again.steps, fit.steps);
    assert!(again.wsfeat.weight(1).allclose(fit.wsfeat.weight(1), 1e-6, 1e-6, false));
    Ok(())
}

#[test]
fn bad_image_shape_is_an_error() {
    let cfg = SirenFitConfig::default();
    assert!(
        fit_sirens(&Tensor::zeros([4, 28, 28], (Kind::Float, Device::Cpu)), &cfg, None).is_err()
    );
}

#[test]
#[ignore = "slow: fits 64 FashionMNIST images with the default config (~10 s release)"]
fn defaults_reach_40_db_on_fashion_mnist() -> Result<()> {
    let set = nfn_datasets::ImageSet::fashion_mnist(nfn_datasets::DEFAULT_FASHION_MNIST_DIR)?;
    let fit = fit_sirens(&set.images.narrow(0, 0, 64), &SirenFitConfig::default(), None)?;
    let mean = fit.psnr.iter().sum::<f64>() / 64.0;
    let min = fit.psnr.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(mean >= 40.0 && min >= 30.0, "mean {mean:.2} dB, min {min:.2} dB");
    Ok(())
}
