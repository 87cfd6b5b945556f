//! Spatial rendering: pixel `(r, c)` is drawn by the SIREN decoded from the latent of its grid cell
//! (design.md §5.2, §8.15).
//!
//! Cell of a coordinate `x ∈ [-1, 1]`: `round((g-1)(x+1)/2)`, half-to-even; latent index
//! `row_cell * g + col_cell`. The cells are unequal (5, 9, 9, 5 pixels for 28 px and g = 4). Each
//! latent's SIREN runs only on its own cell's pixels: the pixels of every cell are padded to the
//! largest cell, evaluated as one batched SIREN call, and the image is gathered back.

use nfn_weightspace::{evaluate_mlp, Activation, WeightSpaceFeatures};
use tch::{Device, Tensor};

use crate::error::{Error, Result};

/// The `linspace(-1, 1, n)` coordinates (as LibTorch computes them, in f64).
fn linspace(n: i64) -> Vec<f64> {
    if n == 1 {
        return vec![-1.0];
    }
    (0..n).map(|i| -1.0 + 2.0 * i as f64 / (n - 1) as f64).collect()
}

/// Grid cell of each of `n` coordinates along one axis: `round((g-1)(x+1)/2)`, half-to-even.
pub fn axis_cells(n: i64, g: i64) -> Vec<i64> {
    linspace(n)
        .into_iter()
        .map(|x| (((g - 1) as f64) * (x + 1.0) / 2.0).round_ties_even() as i64)
        .collect()
}

/// The latent index (`row_cell * g + col_cell`) of every pixel of an `h x w` image, row-major.
pub fn pixel_cells(h: i64, w: i64, g: i64) -> Vec<i64> {
    let (rows, cols) = (axis_cells(h, g), axis_cells(w, g));
    rows.iter().flat_map(|r| cols.iter().map(move |c| r * g + c)).collect()
}

/// Renders decoded SIRENs on an `h x w` grid, each on its own cell's pixels.
#[derive(Debug)]
pub struct SpatialRenderer {
    h: i64,
    w: i64,
    g: i64,
    /// Per latent, its cell's pixel coordinates padded by repeating the first one: `[M, P_max, 2]` f64.
    coords: Tensor,
    /// For every pixel (row-major), its position `m * P_max + k` in the padded outputs: `[h w]`.
    gather: Tensor,
}

impl SpatialRenderer {
    /// A renderer for `h x w` images and a `g x g` latent grid, its index tensors on `device`.
    ///
    /// # Errors
    /// [`Error::Config`] for non-positive sizes or a cell without pixels (`g` larger than the image).
    pub fn new(h: i64, w: i64, g: i64, device: Device) -> Result<Self> {
        if h < 1 || w < 1 || g < 1 {
            return Err(Error::Config(format!("bad render sizes h {h}, w {w}, g {g}")));
        }
        let cells = pixel_cells(h, w, g);
        let m = (g * g) as usize;
        let mut members: Vec<Vec<i64>> = vec![Vec::new(); m];
        for (p, &cell) in cells.iter().enumerate() {
            members[cell as usize].push(p as i64);
        }
        if members.iter().any(Vec::is_empty) {
            return Err(Error::Config(format!("a {g} x {g} grid leaves empty cells on {h} x {w}")));
        }
        let p_max = members.iter().map(Vec::len).max().expect("m >= 1") as i64;
        let (ys, xs) = (linspace(h), linspace(w));
        let mut coords = Vec::with_capacity(m * p_max as usize * 2);
        let mut gather = vec![0i64; (h * w) as usize];
        for (cell, pixels) in members.iter().enumerate() {
            for k in 0..p_max as usize {
                let p = pixels.get(k).copied().unwrap_or(pixels[0]);
                coords.extend([ys[(p / w) as usize], xs[(p % w) as usize]]);
                if k < pixels.len() {
                    gather[p as usize] = cell as i64 * p_max + k as i64;
                }
            }
        }
        let coords = Tensor::from_slice(&coords).view([m as i64, p_max, 2]).to_device(device);
        Ok(SpatialRenderer {
            h,
            w,
            g,
            coords,
            gather: Tensor::from_slice(&gather).to_device(device),
        })
    }

    /// Image height and width.
    pub fn image_size(&self) -> (i64, i64) {
        (self.h, self.w)
    }

    /// Side of the latent grid.
    pub fn grid_side(&self) -> i64 {
        self.g
    }

    /// Pixels per cell, latent-major.
    pub fn cell_counts(&self) -> Vec<i64> {
        let mut counts = vec![0; (self.g * self.g) as usize];
        for cell in pixel_cells(self.h, self.w, self.g) {
            counts[cell as usize] += 1;
        }
        counts
    }

    /// Render `b * M` SIRENs (latent-major: network `i * M + m` is latent `m` of image `i`).
    ///
    /// # Shapes
    /// features of batch `b * M`, `c` outputs → `[b, c, h, w]`
    ///
    /// # Errors
    /// [`Error::Config`] if the batch is not a multiple of `M`; [`Error::WeightSpace`] if the
    /// features are not a raw 2-input MLP.
    pub fn render(&self, sirens: &WeightSpaceFeatures) -> Result<Tensor> {
        let m = self.g * self.g;
        let n = sirens.batch_size();
        if n % m != 0 {
            return Err(Error::Config(format!("{n} SIRENs is not a multiple of {m} latents")));
        }
        let b = n / m;
        let p_max = self.coords.size()[1];
        let coords = self.coords.to_kind(sirens.kind()); // [M, P_max, 2]
        let coords = coords.unsqueeze(0).expand([b, m, p_max, 2], false).reshape([n, p_max, 2]);
        let ys = evaluate_mlp(sirens, &coords, Activation::SIREN)?; // [b M, P_max, c]
        let c = ys.size()[2];
        let ys = ys.view([b, m * p_max, c]).index_select(1, &self.gather); // [b, h w, c]
        Ok(ys.view([b, self.h, self.w, c]).permute([0, 3, 1, 2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_cell_sizes() {
        let count = |n, g| {
            let cells = axis_cells(n, g);
            (0..g).map(|c| cells.iter().filter(|&&x| x == c).count()).collect::<Vec<_>>()
        };
        assert_eq!(count(28, 4), [5, 9, 9, 5]);
        assert_eq!(count(32, 4), [6, 10, 10, 6]);
    }
}
