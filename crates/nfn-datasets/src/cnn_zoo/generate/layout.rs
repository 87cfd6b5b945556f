//! The TensorFlow layout of a zoo network's flat parameter vector (`layout.csv`) and the inverse
//! of [`tf_to_wsfeat`](crate::cnn_zoo::tf_to_wsfeat).

use std::io::Write;
use std::path::Path;

use tch::Tensor;

use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};

use crate::cnn_zoo::{LayoutEntry, ZOO_NUM_PARAMS};
use crate::error::{Error, Result};

/// Keras variable names of the zoo network's layers, in order.
const LAYER_NAMES: [&str; 4] = ["conv2d", "conv2d_1", "conv2d_2", "dense"];

/// The layout our generated zoos use: per layer, `sequential/<layer>/kernel:0` (TF shape
/// `(kh, kw, in, out)` or `(in, out)`) then `sequential/<layer>/bias:0`, packed from column 0.
pub fn zoo_layout() -> Vec<LayoutEntry> {
    let spec = NetworkSpec::small_cnn_zoo();
    let mut entries = Vec::new();
    let mut start = 0;
    for (l, name) in LAYER_NAMES.iter().enumerate() {
        let layer = spec.layer(l);
        let kernel = match layer.kernel {
            Some([kh, kw]) => vec![kh, kw, layer.n_in, layer.n_out],
            None => vec![layer.n_in, layer.n_out],
        };
        for (var, shape) in [("kernel", kernel), ("bias", vec![layer.n_out])] {
            let len: i64 = shape.iter().product();
            let varname = format!("sequential/{name}/{var}:0");
            entries.push(LayoutEntry { varname, start, end: start + len, shape });
            start += len;
        }
    }
    debug_assert_eq!(start, ZOO_NUM_PARAMS);
    entries
}

/// A shape as Python prints a tuple: `(3, 3, 1, 16)`, `(16,)`.
fn python_tuple(shape: &[i64]) -> String {
    let parts: Vec<String> = shape.iter().map(i64::to_string).collect();
    match parts.len() {
        1 => format!("({},)", parts[0]),
        _ => format!("({})", parts.join(", ")),
    }
}

/// The text of `layout.csv` for `layout` (columns `varname,start_idx,end_idx,shape`).
pub(crate) fn layout_csv(layout: &[LayoutEntry]) -> String {
    let mut out = String::from("varname,start_idx,end_idx,shape\n");
    for e in layout {
        out += &format!("{},{},{},\"{}\"\n", e.varname, e.start, e.end, python_tuple(&e.shape));
    }
    out
}

/// Write [`zoo_layout`] to `path` atomically.
///
/// # Errors
/// [`Error::File`] naming the file if it cannot be written.
pub fn write_layout(path: &Path) -> Result<()> {
    let text = layout_csv(&zoo_layout());
    nfn_weightspace::io::write_atomically(path, |out| {
        out.write_all(text.as_bytes()).map_err(|e| e.to_string())
    })?;
    Ok(())
}

/// Flatten `[n, 1, ...]` features of [`NetworkSpec::small_cnn_zoo`] into TensorFlow-layout rows
/// `[n, 4970]` placed as `layout` says: the inverse of
/// [`tf_to_wsfeat`](crate::cnn_zoo::tf_to_wsfeat) (kernels and biases are paired in `start`
/// order, as there).
///
/// # Shapes
/// weights `[n, 1, 16, 1, 3, 3]`, `[n, 1, 16, 16, 3, 3]` ×2, `[n, 1, 10, 16]`; biases
/// `[n, 1, 16]` ×3, `[n, 1, 10]` → `[n, 4970]`
///
/// # Errors
/// [`Error::WeightSpace`] if `wsfeat` is not the zoo network with one channel;
/// [`Error::InvalidArgument`] if `layout` does not describe it or leaves gaps.
pub fn wsfeat_to_tf(wsfeat: &WeightSpaceFeatures, layout: &[LayoutEntry]) -> Result<Tensor> {
    let spec = NetworkSpec::small_cnn_zoo();
    wsfeat.check_spec(&spec)?;
    if wsfeat.channels() != 1 {
        return Err(Error::InvalidArgument(format!(
            "raw zoo weights have 1 channel, got {}",
            wsfeat.channels()
        )));
    }
    let mut entries: Vec<&LayoutEntry> = layout.iter().collect();
    entries.sort_by_key(|e| e.start);
    let kernels: Vec<_> = entries.iter().filter(|e| e.varname.ends_with("kernel:0")).collect();
    let biases: Vec<_> = entries.iter().filter(|e| e.varname.ends_with("bias:0")).collect();
    let contiguous = entries.windows(2).all(|w| w[0].end == w[1].start)
        && entries.first().is_some_and(|e| e.start == 0)
        && entries.last().is_some_and(|e| e.end == ZOO_NUM_PARAMS);
    if kernels.len() != spec.num_layers() || biases.len() != spec.num_layers() || !contiguous {
        return Err(Error::InvalidArgument(format!(
            "layout must pack {} kernels and biases into columns [0, {ZOO_NUM_PARAMS}) without gaps",
            spec.num_layers()
        )));
    }
    let n = wsfeat.batch_size();
    let mut pieces: Vec<(i64, Tensor)> = Vec::new();
    for (l, ((w, b), (k, bias))) in wsfeat.iter().zip(kernels.iter().zip(&biases)).enumerate() {
        let layer = spec.layer(l);
        let (w, tf_shape) = match layer.kernel {
            // [n, out, in, kh, kw] -> [n, kh, kw, in, out]
            Some([kh, kw]) => (
                w.f_squeeze_dim(1)?.f_permute([0, 3, 4, 2, 1])?,
                vec![kh, kw, layer.n_in, layer.n_out],
            ),
            // [n, out, in] -> [n, in, out]
            None => (w.f_squeeze_dim(1)?.f_permute([0, 2, 1])?, vec![layer.n_in, layer.n_out]),
        };
        if k.shape != tf_shape || bias.shape != [layer.n_out] {
            return Err(Error::InvalidArgument(format!(
                "layer {l}: layout has kernel {:?} / bias {:?}, expected {tf_shape:?} / [{}]",
                k.shape, bias.shape, layer.n_out
            )));
        }
        pieces.push((k.start, w.f_reshape([n, -1])?));
        pieces.push((bias.start, b.f_reshape([n, -1])?));
    }
    pieces.sort_by_key(|(start, _)| *start);
    let parts: Vec<Tensor> = pieces.into_iter().map(|(_, t)| t).collect();
    Ok(Tensor::f_cat(&parts, 1)?.f_contiguous()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_reference_shapes() {
        let layout = zoo_layout();
        assert_eq!(layout.len(), 8);
        assert_eq!(layout[0].varname, "sequential/conv2d/kernel:0");
        assert_eq!(layout[7].varname, "sequential/dense/bias:0");
        assert_eq!(layout[7].end, ZOO_NUM_PARAMS);
        let csv = layout_csv(&layout);
        assert!(csv.contains("sequential/conv2d/kernel:0,0,144,\"(3, 3, 1, 16)\""));
        assert!(csv.contains("sequential/dense/bias:0,4960,4970,\"(10,)\""));
    }
}
