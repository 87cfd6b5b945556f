//! Edited images for the INR-editing task (NFT paper; design.md §6.2), matching OpenCV bit for bit.
//!
//! Targets come from the ground-truth image (uint8, before scaling), edited as the reference does
//! with OpenCV, then scaled to `[-1, 1]` as [`ImageSet`] scales its images:
//!
//! | style | OpenCV call |
//! | --- | --- |
//! | dilate | `cv2.dilate(img, np.ones((3, 3)), iterations=1)` |
//! | erode | `cv2.erode(img, np.ones((2, 2)))` |
//! | gradient | `cv2.morphologyEx(img, cv2.MORPH_GRADIENT, np.ones((2, 2)))` |
//! | contrast | RGB read as BGR → `COLOR_BGR2LAB`, CLAHE on L (clip 1.0, 3 × 3 tiles), `COLOR_LAB2BGR` |
//!
//! Morphology uses OpenCV's default anchor, the kernel centre `ksize / 2`: output pixel `p` is the
//! max (min) of input pixels `p + d`, `d ∈ {-1, 0}²` for the 2 × 2 kernel and `{-1, 0, 1}²` for
//! 3 × 3, and pixels outside the image are ignored (OpenCV's default border never wins).
//! `imageproc`'s grayscale morphology with a [`Mask`] centred at `(1, 1)` has exactly these rules.
//! The Lab conversion ([`bgr_to_lab`], [`lab_to_bgr`]) and [`clahe()`] are ports of OpenCV's code.
//! Fixtures written by OpenCV (`tests/fixtures/edit/gen.py`) check every style exactly.
//!
//! [`EditTargets`] caches the edited images of an INR set beside it.

mod clahe;
mod lab;
mod targets;

pub use clahe::clahe;
pub use lab::{bgr_to_lab, lab_to_bgr};
pub use targets::{EditTargets, TARGETS_MAGIC};

use imageproc::image::{GrayImage, Luma};
use imageproc::morphology::{grayscale_dilate, grayscale_erode, Mask};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::images::ImageSet;

/// CLAHE clip limit of the contrast style.
pub const CLAHE_CLIP_LIMIT: f64 = 1.0;
/// CLAHE tile grid `(tiles_x, tiles_y)` of the contrast style.
pub const CLAHE_TILES: (usize, usize) = (3, 3);

/// How a target image is made from its ground truth (design.md §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditStyle {
    /// Grey dilation, 3 × 3 ones, one iteration.
    Dilate,
    /// Grey erosion, 2 × 2 ones.
    Erode,
    /// Morphological gradient (dilation minus erosion), 2 × 2 ones.
    Gradient,
    /// CLAHE on the L channel of CIE Lab (3-channel images only).
    Contrast,
}

impl EditStyle {
    /// Every style.
    pub const ALL: [EditStyle; 4] =
        [EditStyle::Dilate, EditStyle::Erode, EditStyle::Gradient, EditStyle::Contrast];

    /// `"dilate"`, `"erode"`, `"gradient"` or `"contrast"` (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            EditStyle::Dilate => "dilate",
            EditStyle::Erode => "erode",
            EditStyle::Gradient => "gradient",
            EditStyle::Contrast => "contrast",
        }
    }

    /// Whether the style applies to images of `shape` `[c, h, w]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty shape, one wider or taller than `u32`, or a
    /// contrast edit of an image that does not have 3 channels.
    pub fn check_shape(self, shape: [i64; 3]) -> Result<()> {
        if shape.iter().any(|&d| d <= 0 || d > u32::MAX as i64) {
            return Err(Error::InvalidArgument(format!("bad image shape {shape:?}")));
        }
        if self == EditStyle::Contrast && shape[0] != 3 {
            return Err(Error::InvalidArgument(format!(
                "the contrast edit needs 3-channel images, got shape {shape:?}"
            )));
        }
        Ok(())
    }
}

/// A `k x k` all-ones mask anchored at OpenCV's default, the kernel centre `(k / 2, k / 2)`.
fn ones_mask(k: u32) -> Mask {
    Mask::from_image(&GrayImage::from_pixel(k, k, Luma([1])), (k / 2) as u8, (k / 2) as u8)
}

/// Edit one image, uint8 `[c, h, w]` row-major; returns uint8 of the same shape.
///
/// # Errors
/// [`Error::InvalidArgument`] if `pixels` does not hold `c * h * w` bytes or as
/// [`EditStyle::check_shape`].
pub fn edit_image(pixels: &[u8], shape: [i64; 3], style: EditStyle) -> Result<Vec<u8>> {
    style.check_shape(shape)?;
    let [c, h, w] = shape.map(|d| d as usize);
    if pixels.len() != c * h * w {
        return Err(Error::InvalidArgument(format!(
            "{} bytes are not an image of shape {shape:?}",
            pixels.len()
        )));
    }
    if style == EditStyle::Contrast {
        return Ok(contrast(pixels, h, w));
    }
    let mut out = Vec::with_capacity(pixels.len());
    for plane in pixels.chunks_exact(h * w) {
        let img = GrayImage::from_raw(w as u32, h as u32, plane.to_vec())
            .expect("the plane holds h * w bytes");
        let edited = match style {
            EditStyle::Dilate => grayscale_dilate(&img, &ones_mask(3)),
            EditStyle::Erode => grayscale_erode(&img, &ones_mask(2)),
            EditStyle::Gradient => {
                let (dilated, eroded) =
                    (grayscale_dilate(&img, &ones_mask(2)), grayscale_erode(&img, &ones_mask(2)));
                let diff = dilated.iter().zip(eroded.iter()).map(|(d, e)| d.saturating_sub(*e));
                GrayImage::from_raw(w as u32, h as u32, diff.collect()).expect("same size")
            }
            EditStyle::Contrast => unreachable!("handled above"),
        };
        out.extend_from_slice(edited.as_raw());
    }
    Ok(out)
}

/// The contrast edit of a 3-channel `[3, h, w]` image whose channels are read as B, G, R.
fn contrast(pixels: &[u8], h: usize, w: usize) -> Vec<u8> {
    let n = h * w;
    let pixel = |i: usize| [pixels[i], pixels[n + i], pixels[2 * n + i]];
    let lab: Vec<[u8; 3]> = (0..n).map(|i| bgr_to_lab(pixel(i))).collect();
    let l: Vec<u8> = lab.iter().map(|p| p[0]).collect();
    let l = clahe(&l, h, w, CLAHE_CLIP_LIMIT, CLAHE_TILES);
    let mut out = vec![0; 3 * n];
    for (i, (&l, [_, a, b])) in l.iter().zip(lab).enumerate() {
        let [c0, c1, c2] = lab_to_bgr([l, a, b]);
        (out[i], out[n + i], out[2 * n + i]) = (c0, c1, c2);
    }
    out
}

/// Edit a batch, uint8 `[n, c, h, w]` row-major, in parallel; returns uint8 of the same shape.
///
/// # Errors
/// As [`edit_image`], for `pixels` that are not `n` images of `shape`.
pub fn edit_images(pixels: &[u8], shape: [i64; 3], style: EditStyle) -> Result<Vec<u8>> {
    style.check_shape(shape)?;
    let numel = shape.iter().product::<i64>() as usize;
    if pixels.len() % numel != 0 {
        return Err(Error::InvalidArgument(format!(
            "{} bytes are not a whole number of images of shape {shape:?}",
            pixels.len()
        )));
    }
    let edited: Vec<Vec<u8>> =
        pixels.par_chunks(numel).map(|img| edit_image(img, shape, style)).collect::<Result<_>>()?;
    Ok(edited.concat())
}

/// The uint8 pixels of the images at `indices`, `[n, c, h, w]` row-major: [`ImageSet`]'s scaling
/// undone (`round((x + 1) / 2 * 255)`, exact for every byte).
///
/// # Errors
/// [`Error::Tch`] for an index out of range.
pub fn image_bytes(images: &ImageSet, indices: &[i64]) -> Result<Vec<u8>> {
    let xs = images.images.f_index_select(0, &Tensor::from_slice(indices))?;
    let bytes = ((xs * 0.5 + 0.5) * 255.0).f_round()?.f_clamp(0.0, 255.0)?;
    Ok(Vec::<u8>::try_from(bytes.f_to_kind(Kind::Uint8)?.f_reshape([-1])?)?)
}

/// uint8 images `[n, c, h, w]` scaled to `[-1, 1]` exactly as [`ImageSet::from_bytes`] does.
///
/// # Errors
/// [`Error::InvalidArgument`] if the sizes disagree.
pub fn scale_bytes(pixels: &[u8], shape: [i64; 3]) -> Result<Tensor> {
    let numel = shape.iter().product::<i64>().max(1);
    let n = pixels.len() as i64 / numel;
    let full_shape = [n, shape[0], shape[1], shape[2]];
    if pixels.is_empty() && shape.iter().all(|&d| d > 0) {
        return Ok(Tensor::zeros(full_shape, (Kind::Float, tch::Device::Cpu)));
    }
    Ok(ImageSet::from_bytes(pixels, &vec![0; n as usize], full_shape, 0)?.images)
}

/// Edited targets of the images at `indices`: f32 `[n, c, h, w]` in `[-1, 1]`.
///
/// # Errors
/// As [`image_bytes`] and [`edit_images`].
pub fn edit_targets(images: &ImageSet, indices: &[i64], style: EditStyle) -> Result<Tensor> {
    let shape = images.image_shape();
    let edited = edit_images(&image_bytes(images, indices)?, shape, style)?;
    scale_bytes(&edited, shape)
}
