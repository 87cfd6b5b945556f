//! Keras kernel initializers (TF 2 semantics) drawn per network from its own random stream, in
//! the TensorFlow layout of `weights.npy`; biases start at zero (`config.b_init = zeros`).

use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;

use super::hyper::{stream_rng, Stream, WeightInit, ZooHyper};
use super::layout::zoo_layout;
use crate::cnn_zoo::ZOO_NUM_PARAMS;

/// Std of a unit normal truncated at ±2 (Keras `VarianceScaling` divides by it).
const TRUNCATED_STD: f64 = 0.879_625_661_034_239_8;

fn normal(rng: &mut StdRng) -> f64 {
    rng.sample(StandardNormal)
}

/// A unit normal redrawn until it lies within ±2 (TF `truncated_normal`).
fn truncated(rng: &mut StdRng) -> f64 {
    loop {
        let x = normal(rng);
        if x.abs() <= 2.0 {
            return x;
        }
    }
}

/// A `rows x cols` row-major matrix with orthonormal columns (`rows >= cols`) or rows, as Keras'
/// `Orthogonal`: QR of a normal matrix with `sign(diag(R))` folded into `Q`, which is exactly what
/// Gram-Schmidt returns (its `R` has a positive diagonal).
fn orthogonal(rng: &mut StdRng, rows: usize, cols: usize) -> Vec<f64> {
    let (m, k) = (rows.max(cols), rows.min(cols));
    // a is m x k, row-major; orthonormalise its columns in order (modified Gram-Schmidt).
    let mut a: Vec<f64> = (0..m * k).map(|_| normal(rng)).collect();
    for j in 0..k {
        for i in 0..j {
            let dot: f64 = (0..m).map(|r| a[r * k + i] * a[r * k + j]).sum();
            for r in 0..m {
                a[r * k + j] -= dot * a[r * k + i];
            }
        }
        let norm = (0..m).map(|r| a[r * k + j].powi(2)).sum::<f64>().sqrt();
        for r in 0..m {
            a[r * k + j] /= norm;
        }
    }
    if rows >= cols {
        a
    } else {
        // Transpose the m x k matrix into rows x cols = k x m.
        (0..k).flat_map(|i| (0..m).map(move |r| (r, i))).map(|(r, i)| a[r * k + i]).collect()
    }
}

/// The kernel entries of TF shape `shape` (`(kh, kw, in, out)` or `(in, out)`) for `init`.
fn kernel(rng: &mut StdRng, init: WeightInit, init_std: f64, shape: &[i64]) -> Vec<f64> {
    let len = shape.iter().product::<i64>() as usize;
    let receptive: i64 = shape[..shape.len() - 2].iter().product();
    let fan_in = (receptive * shape[shape.len() - 2]) as f64;
    let fan_out = (receptive * shape[shape.len() - 1]) as f64;
    let mut draw = |f: &mut dyn FnMut(&mut StdRng) -> f64| (0..len).map(|_| f(rng)).collect();
    match init {
        WeightInit::RandomNormal => draw(&mut |r| init_std * normal(r)),
        WeightInit::TruncatedNormal => draw(&mut |r| init_std * truncated(r)),
        WeightInit::GlorotNormal => {
            let std = (2.0 / (fan_in + fan_out)).sqrt() / TRUNCATED_STD;
            draw(&mut |r| std * truncated(r))
        }
        WeightInit::HeNormal => {
            let std = (2.0 / fan_in).sqrt() / TRUNCATED_STD;
            draw(&mut |r| std * truncated(r))
        }
        WeightInit::GlorotUniform => {
            let limit = (6.0 / (fan_in + fan_out)).sqrt();
            draw(&mut |r| r.gen_range(-limit..limit))
        }
        WeightInit::Orthogonal => {
            let cols = shape[shape.len() - 1] as usize;
            orthogonal(rng, len / cols, cols)
        }
    }
}

/// The initial flat parameters (TF layout, [`zoo_layout`]) of network `hyper.index` of the zoo
/// with seed `seed`: a function of (`seed`, `hyper`) only.
pub(crate) fn init_tf_row(seed: u64, hyper: &ZooHyper) -> Vec<f32> {
    let mut rng = stream_rng(seed, hyper.index, Stream::Weights);
    let mut row = vec![0f32; ZOO_NUM_PARAMS as usize];
    for entry in zoo_layout().iter().filter(|e| e.varname.ends_with("kernel:0")) {
        let values = kernel(&mut rng, hyper.w_init, hyper.init_std, &entry.shape);
        for (dst, v) in row[entry.start as usize..entry.end as usize].iter_mut().zip(values) {
            *dst = v as f32;
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn orthogonal_has_orthonormal_rows_or_columns() {
        let mut rng = StdRng::seed_from_u64(0);
        for (rows, cols) in [(144, 16), (9, 16), (16, 10)] {
            let q = orthogonal(&mut rng, rows, cols);
            let (outer, inner) = if rows >= cols { (cols, rows) } else { (rows, cols) };
            let at =
                |i: usize, r: usize| if rows >= cols { q[r * cols + i] } else { q[i * cols + r] };
            for i in 0..outer {
                for j in 0..outer {
                    let dot: f64 = (0..inner).map(|r| at(i, r) * at(j, r)).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-9, "{rows}x{cols}: <{i},{j}> = {dot}");
                }
            }
        }
    }

    #[test]
    fn initializer_scales_are_the_keras_ones() {
        let mut rng = StdRng::seed_from_u64(1);
        let std = |xs: &[f64]| (xs.iter().map(|x| x * x).sum::<f64>() / xs.len() as f64).sqrt();
        let shape = [3, 3, 16, 16];
        let he = kernel(&mut rng, WeightInit::HeNormal, 0.1, &shape);
        assert!((std(&he) / (2.0f64 / 144.0).sqrt() - 1.0).abs() < 0.1);
        let glorot = kernel(&mut rng, WeightInit::GlorotUniform, 0.1, &shape);
        assert!(glorot.iter().all(|x| x.abs() <= (6.0f64 / 288.0).sqrt()));
        let normal = kernel(&mut rng, WeightInit::RandomNormal, 0.1, &shape);
        assert!((std(&normal) / 0.1 - 1.0).abs() < 0.1);
        let trunc = kernel(&mut rng, WeightInit::TruncatedNormal, 0.1, &shape);
        assert!(trunc.iter().all(|x| x.abs() <= 0.2));
    }
}
