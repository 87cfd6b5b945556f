//! HNP-equivariant linear layer, HnpLinear (design.md §3.3; NFN paper, Sec. 3, HNP layer).
//!
//! Only hidden neurons are permutable: the first layer treats each row (hidden neuron of layer 1)
//! as one token carrying all its input columns, the last layer each column, and the middle layers
//! are NP layers whose global vector also holds the fixed input/output statistics.

use nfn_weightspace::{unfold, NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::error::{Error, Result};
use crate::init::{default_map, grouped_maps, ChannelAffine, MapShape};
use crate::module::{ChannelScaledT, WsModuleT};
use crate::np_linear::{
    cat_last, channel_scaled_layer, check_channels, scale_output, NpMaps, NpWidths, Summary,
};

/// Configuration of [`HnpLinear`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HnpLinearConfig {
    /// Input channels `c_in`.
    pub c_in: i64,
    /// Output channels `c_out`.
    pub c_out: i64,
}

impl Default for HnpLinearConfig {
    fn default() -> Self {
        // One raw-weight channel in and out.
        HnpLinearConfig { c_in: 1, c_out: 1 }
    }
}

/// First layer (`l = 0`): maps of the per-row token `f_i` and of the global vector `h`.
#[derive(Debug)]
struct FirstMaps {
    /// `M_0`: `f_i` -> `k_0 c_out n_in` (PyTorch default init).
    row: ChannelAffine,
    /// `N_0`: `h` -> `k_0 c_out n_in` (PyTorch default init).
    row_global: ChannelAffine,
    /// `Q_0`: `f_i` -> `c_out` (grouped with `Q'_0`).
    bias_row: ChannelAffine,
    /// `Q'_0`: `h` -> `c_out`.
    bias_global: ChannelAffine,
}

/// Last layer (`l = L-1`): maps of the per-column token `e_j` and of `h`.
#[derive(Debug)]
struct LastMaps {
    /// `M_L`: `e_j` -> `k_{L-1} c_out n_out` (grouped with `N_L`).
    col: ChannelAffine,
    /// `N_L`: `h` -> `k_{L-1} c_out n_out`.
    col_global: ChannelAffine,
    /// `Q_L`: `h` -> `c_out n_out` (PyTorch default init).
    bias_global: ChannelAffine,
}

#[derive(Debug)]
enum HnpLayer {
    First(FirstMaps),
    Middle(NpMaps),
    Last(LastMaps),
}

/// What the HNP maps read: the design.md §3.1 statistics, the global vector `h`, and the first
/// layer's rows and the last layer's columns as one token per hidden neuron.
struct HnpInputs {
    s: Summary,
    /// `h`: `[b, H]`.
    h: Tensor,
    /// Row `i` of `W_0` (hidden neuron `i` of layer 1): `[b, C_0 n_in, d_1]`, index `c*n_in + j`,
    /// laid out channels last (a transposed view) so that [`cat_last`] reads it in order.
    w0_rows: Tensor,
    /// Column `j` of `W_{L-1}`: `[b, C_{L-1} n_out, d_{L-1}]`, index `c*n_out + i`, laid out
    /// channels last.
    wl_cols: Tensor,
}

impl HnpInputs {
    fn new(wsfeat: &WeightSpaceFeatures) -> Self {
        let s = Summary::of(wsfeat);
        let last = s.num_layers() - 1;
        let h = Tensor::cat(
            &[
                s.g.shallow_clone(),     // G_l, β_l
                s.a[0].flatten(1, 2),    // vec(A_0), channel-major
                s.e[last].flatten(1, 2), // vec(E_{L-1})
                s.b[last].flatten(1, 2), // vec(b_{L-1})
            ],
            1,
        ); // [b, H]
        let (b, d_1, d_l) = (s.g.size()[0], s.w[0].size()[2], s.w[last].size()[3]);
        // [b, d_1, C_0, n_in] -> [b, d_1, C_0 n_in] -> [b, C_0 n_in, d_1]
        let w0_rows = s.w[0].permute([0, 2, 1, 3]).reshape([b, d_1, -1]).transpose(1, 2);
        // [b, d_{L-1}, C_{L-1}, n_out] -> [b, d_{L-1}, C_{L-1} n_out]
        // -> [b, C_{L-1} n_out, d_{L-1}]
        let wl_cols = s.w[last].permute([0, 3, 1, 2]).reshape([b, d_l, -1]).transpose(1, 2);
        HnpInputs { s, h, w0_rows, wl_cols }
    }

    fn last(&self) -> usize {
        self.s.num_layers() - 1
    }
}

impl FirstMaps {
    /// # Shapes
    /// weight `[b, k_0 c_out, d_1, n_in]`, bias `[b, c_out, d_1]`
    fn forward(&self, x: &HnpInputs) -> (Tensor, Tensor) {
        let s = &x.s;
        let mut f = vec![&x.w0_rows, &s.a[1], &s.b[0]];
        if x.last() == 1 {
            f.push(&x.wl_cols);
        }
        let f = cat_last(&f); // [b, d_1, F]
        let (b, d1, n_in) = (f.size()[0], f.size()[1], s.w[0].size()[3]);
        let shift = self.row_global.forward_vec(&x.h).unsqueeze(1); // [b, 1, k_0 c_out n_in]
        let b_shift = self.bias_global.forward_vec(&x.h).unsqueeze(1); // [b, 1, c_out]

        // z [b, d_1, k_0 c_out n_in], b_out [b, d_1, c_out]
        let (z, b_out) = ChannelAffine::forward_vec_pair(&self.row, &self.bias_row, &f);
        // [b, d_1, k_0 c_out, n_in] -> [b, k_0 c_out, d_1, n_in]
        let w_out = (z + shift).reshape([b, d1, -1, n_in]).transpose(1, 2);
        (w_out, (b_out + b_shift).transpose(1, 2))
    }
}

impl LastMaps {
    /// # Shapes
    /// weight `[b, k_{L-1} c_out, n_out, d_{L-1}]`, bias `[b, c_out, n_out]`
    fn forward(&self, x: &HnpInputs) -> (Tensor, Tensor) {
        let (s, last) = (&x.s, x.last());
        let mut e = vec![&x.wl_cols, &s.e[last - 1]]; // no b_{L-2} here (design.md §8.18)
        if last == 1 {
            e.push(&x.w0_rows);
        }
        let e = cat_last(&e); // [b, d_{L-1}, F]
        let (b, d, n_out) = (e.size()[0], e.size()[1], s.w[last].size()[2]);
        let shift = self.col_global.forward_vec(&x.h).unsqueeze(1); // [b, 1, k c_out n_out]
        let z = self.col.forward_vec(&e) + shift; // [b, d_{L-1}, k c_out n_out]

        // [b, d_{L-1}, k c_out, n_out] -> [b, k c_out, n_out, d_{L-1}]
        let w_out = z.reshape([b, d, -1, n_out]).permute([0, 2, 3, 1]);
        let b_out = self.bias_global.forward_vec(&x.h).reshape([b, -1, n_out]); // [b, c_out, n_out]
        (w_out, b_out)
    }
}

/// A middle layer `0 < l < L-1`: the NP update with `h`, plus the first layer's rows (`l == 1`)
/// and the last layer's columns (`l == L-2`) as extra per-neuron features.
///
/// # Shapes
/// weight `[b, k_l c_out, d_{l+1}, d_l]`, bias `[b, c_out, d_{l+1}]`
fn middle_forward(
    maps: &NpMaps,
    l: usize,
    x: &HnpInputs,
    out_scale: Option<&Tensor>,
) -> (Tensor, Tensor) {
    let s = &x.s;
    let mut rowfeat = vec![&s.a[l], &s.e[l - 1], &s.b[l - 1]];
    if l == 1 {
        rowfeat.push(&x.w0_rows);
    }
    let mut colfeat = vec![&s.e[l], &s.b[l], &s.a[l + 1]];
    if l + 2 == s.num_layers() {
        colfeat.push(&x.wl_cols);
    }
    // [b, d_l, R], [b, d_{l+1}, S]
    let (rowfeat, colfeat) = (cat_last(&rowfeat), cat_last(&colfeat));
    maps.forward(&s.w[l], &x.h, &rowfeat, &colfeat, out_scale)
}

/// Hidden-neuron-permutation-equivariant linear map on weight-space features, `c_in -> c_out`
/// channels (NFN paper's HNP layer, design.md §3.3). Needs `L >= 2` layers.
#[derive(Debug)]
pub struct HnpLinear {
    spec: NetworkSpec,
    cfg: HnpLinearConfig,
    layers: Vec<HnpLayer>,
}

impl HnpLinear {
    /// Build the layer for `spec`; parameters live under `vs / "layers" / l / <map>`.
    ///
    /// # Errors
    /// [`Error::Config`] if the spec has fewer than two layers or a channel count is not positive.
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &HnpLinearConfig) -> Result<Self> {
        check_channels(cfg.c_in, cfg.c_out)?;
        let n_layers = spec.num_layers();
        if n_layers < 2 {
            return Err(Error::Config(format!(
                "HnpLinear needs at least 2 layers, got {n_layers}"
            )));
        }
        let k = spec.filter_factors();
        let last = n_layers - 1;
        let (c, c_out, n_in, n_out) = (cfg.c_in, cfg.c_out, spec.n_in(), spec.n_out());
        let w0_row = c * k[0] * n_in; // one row of W_0, all channels
        let wl_col = c * k[last] * n_out; // one column of W_{L-1}, all channels
        let global = c * (k.iter().sum::<i64>() + n_layers as i64) + w0_row + wl_col + c * n_out;
        let layers = (0..n_layers)
            .map(|l| {
                let p = vs / "layers" / l;
                if l == 0 {
                    let f = w0_row + c * k[1] + c + if last == 1 { c * k[1] * n_out } else { 0 };
                    let out = k[0] * c_out * n_in;
                    let mut bias = grouped_maps(
                        &p,
                        &[
                            MapShape { name: "bias_row", c_in: f, c_out },
                            MapShape { name: "bias_global", c_in: global, c_out },
                        ],
                    );
                    let bias_global = bias.pop().expect("two maps");
                    let bias_row = bias.pop().expect("two maps");
                    HnpLayer::First(FirstMaps {
                        row: default_map(&p, "row", f, out),
                        row_global: default_map(&p, "row_global", global, out),
                        bias_row,
                        bias_global,
                    })
                } else if l == last {
                    let e = wl_col + c * k[last - 1] + if last == 1 { w0_row } else { 0 };
                    let out = k[last] * c_out * n_out;
                    let mut maps = grouped_maps(
                        &p,
                        &[
                            MapShape { name: "col", c_in: e, c_out: out },
                            MapShape { name: "col_global", c_in: global, c_out: out },
                        ],
                    );
                    let col_global = maps.pop().expect("two maps");
                    let col = maps.pop().expect("two maps");
                    let bias_global = default_map(&p, "bias_global", global, c_out * n_out);
                    HnpLayer::Last(LastMaps { col, col_global, bias_global })
                } else {
                    let row = c * (k[l] + k[l - 1] + 1) + if l == 1 { w0_row } else { 0 };
                    let col = c * (k[l] + 1 + k[l + 1]) + if l == last - 1 { wl_col } else { 0 };
                    let widths = NpWidths { weight: c * k[l], global, row, col };
                    HnpLayer::Middle(NpMaps::new(&p, widths, k[l], c_out))
                }
            })
            .collect();
        Ok(HnpLinear { spec: spec.clone(), cfg: cfg.clone(), layers })
    }

    /// The layer's config.
    pub fn config(&self) -> &HnpLinearConfig {
        &self.cfg
    }

    /// The spec the layer was built for.
    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }
}

impl HnpLinear {
    /// The layer's update, weight output `l` scaled by `scales[l]` when given.
    fn forward_with(
        &self,
        wsfeat: &WeightSpaceFeatures,
        scales: Option<&[Tensor]>,
    ) -> WeightSpaceFeatures {
        debug_assert_eq!(wsfeat.channels(), self.cfg.c_in);
        debug_assert!(
            wsfeat.check_spec(&self.spec).is_ok(),
            "features do not fit the layer's spec"
        );
        let x = HnpInputs::new(wsfeat);
        let (weights, biases) = self
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let scale = scales.map(|scales| &scales[l]);
                let (w_out, b_out) = match layer {
                    HnpLayer::Middle(maps) => middle_forward(maps, l, &x, scale),
                    // the first and last weights are small: scale them directly
                    HnpLayer::First(maps) => scale_output(maps.forward(&x), scale),
                    HnpLayer::Last(maps) => scale_output(maps.forward(&x), scale),
                };
                (unfold(&w_out, self.spec.layer(l).kernel), b_out) // [b, c_out, n_out, n_in(, k..)]
            })
            .unzip();
        WeightSpaceFeatures::from_parts_unchecked(weights, biases)
    }
}

channel_scaled_layer!(HnpLinear);
