//! OpenCV's CLAHE on 8-bit images (`cv2.createCLAHE(clipLimit, tileGridSize).apply`), bit for bit.
//!
//! A port of `modules/imgproc/src/clahe.cpp` (CPU path, `bitShift = 0`): if the tiles do not
//! divide the image, it is padded at the bottom and right with `BORDER_REFLECT_101` by
//! `tiles - size % tiles` (a whole tile when the other axis is the one that does not divide); each
//! tile's 256-bin histogram is clipped at `max(int(clip * tile_area / 256), 1)`, the excess spread
//! evenly plus a residual every `256 / residual` bins, and its cumulative sum scaled by
//! `255 / tile_area` (single precision, rounded half to even); every pixel of the unpadded image
//! then interpolates bilinearly between the four nearest tiles' tables, in single precision.

/// Histogram bins for 8-bit input.
const BINS: usize = 256;

/// OpenCV's `borderInterpolate` for `BORDER_REFLECT_101` (`gfedcb|abcdefgh|gfedcba`).
fn reflect_101(mut p: i64, len: i64) -> usize {
    if len == 1 {
        return 0;
    }
    while p < 0 || p >= len {
        p = if p < 0 { -p } else { 2 * (len - 1) - p };
    }
    p as usize
}

/// CLAHE of one `h x w` 8-bit plane (row-major) with `tiles = (tiles_x, tiles_y)`.
///
/// # Panics
/// If `plane.len() != h * w`, a size is 0 or `clip_limit` is not finite.
pub fn clahe(plane: &[u8], h: usize, w: usize, clip_limit: f64, tiles: (usize, usize)) -> Vec<u8> {
    let (tiles_x, tiles_y) = tiles;
    assert!(h > 0 && w > 0 && tiles_x > 0 && tiles_y > 0 && plane.len() == h * w);
    assert!(clip_limit.is_finite(), "clip limit must be finite");
    // Padded size: OpenCV pads both axes as soon as one of them does not divide.
    let (eh, ew) = if h % tiles_y == 0 && w % tiles_x == 0 {
        (h, w)
    } else {
        (h + tiles_y - h % tiles_y, w + tiles_x - w % tiles_x)
    };
    let at = |y: usize, x: usize| {
        plane[reflect_101(y as i64, h as i64) * w + reflect_101(x as i64, w as i64)]
    };
    let (th, tw) = (eh / tiles_y, ew / tiles_x);
    let area = th * tw;
    let lut_scale = (BINS - 1) as f32 / area as f32;
    let clip =
        if clip_limit > 0.0 { ((clip_limit * area as f64 / BINS as f64) as i64).max(1) } else { 0 };

    // One table per tile, row-major over the tile grid.
    let mut luts = vec![[0u8; BINS]; tiles_x * tiles_y];
    for (k, lut) in luts.iter_mut().enumerate() {
        let (ty, tx) = (k / tiles_x, k % tiles_x);
        let mut hist = [0i64; BINS];
        for y in ty * th..(ty + 1) * th {
            for x in tx * tw..(tx + 1) * tw {
                hist[at(y, x) as usize] += 1;
            }
        }
        if clip > 0 {
            let mut clipped = 0;
            for v in hist.iter_mut().filter(|v| **v > clip) {
                clipped += *v - clip;
                *v = clip;
            }
            let batch = clipped / BINS as i64;
            let mut residual = clipped - batch * BINS as i64;
            hist.iter_mut().for_each(|v| *v += batch);
            if residual != 0 {
                let step = (BINS / residual as usize).max(1);
                for v in hist.iter_mut().step_by(step) {
                    if residual == 0 {
                        break;
                    }
                    *v += 1;
                    residual -= 1;
                }
            }
        }
        let mut sum = 0;
        for (out, v) in lut.iter_mut().zip(hist) {
            sum += v;
            *out = saturate_u8(sum as f32 * lut_scale);
        }
    }

    // Bilinear interpolation between tile centres, on the unpadded image.
    let weights = |i: usize, tile: usize, n_tiles: usize| {
        let f = i as f32 * (1.0f32 / tile as f32) - 0.5;
        let t1 = f.floor() as i64;
        let a = f - t1 as f32;
        (t1.max(0) as usize, ((t1 + 1) as usize).min(n_tiles - 1), a, 1.0 - a)
    };
    let cols: Vec<_> = (0..w).map(|x| weights(x, tw, tiles_x)).collect();
    let mut out = vec![0u8; h * w];
    for y in 0..h {
        let (ty1, ty2, ya, ya1) = weights(y, th, tiles_y);
        for (x, &(tx1, tx2, xa, xa1)) in cols.iter().enumerate() {
            let v = plane[y * w + x] as usize;
            let l = |ty: usize, tx: usize| luts[ty * tiles_x + tx][v] as f32;
            let res = (l(ty1, tx1) * xa1 + l(ty1, tx2) * xa) * ya1
                + (l(ty2, tx1) * xa1 + l(ty2, tx2) * xa) * ya;
            out[y * w + x] = saturate_u8(res);
        }
    }
    out
}

/// `saturate_cast<uchar>(float)`: round half to even, clamp to `[0, 255]`.
fn saturate_u8(x: f32) -> u8 {
    x.round_ties_even().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_101_mirrors_without_repeating_the_edge() {
        let got: Vec<_> = (-3..8).map(|p| reflect_101(p, 5)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
        assert_eq!(reflect_101(2, 1), 0);
    }

    #[test]
    fn a_constant_plane_stays_constant() {
        let out = clahe(&[77; 32 * 32], 32, 32, 1.0, (3, 3));
        assert!(out.iter().all(|&v| v == out[0]));
    }
}
