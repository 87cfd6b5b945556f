//! Grouped (reference-style) parameter initialisation for the NFN layers (design.md §3.2, §8.14).
//!
//! Every map inside an NFN layer is an affine map over the channel axis, [`ChannelAffine`]. The
//! reference treats all maps that write into the same output as one linear map: one bound
//! `1/sqrt(sum of their fan-ins)`, weights and biases drawn `U(-bound, bound)`. A group of one map
//! is PyTorch's default `nn.Linear` / 1x1-conv init.

use tch::nn::{self, Init};
use tch::Tensor;

/// An affine map `x -> W x + bias` over the channel axis (axis 1) of a tensor.
///
/// Parameters: `weight` `[c_out, c_in]` and `bias` `[c_out]`, the layout of `nn.Linear` (and of a
/// 1x1 `nn.Conv1d`/`nn.Conv2d` with its kernel axes dropped).
#[derive(Debug)]
pub struct ChannelAffine {
    /// `[c_out, c_in]`.
    pub weight: Tensor,
    /// `[c_out]`.
    pub bias: Tensor,
}

/// The shape of one map of a group: its parameter path name, input and output widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapShape<'a> {
    /// Name of the map's sub-path (holding `weight` and `bias`).
    pub name: &'a str,
    /// Input width (fan-in).
    pub c_in: i64,
    /// Output width.
    pub c_out: i64,
}

/// Create a group of maps under `vs / shape.name` sharing one uniform bound
/// `1/sqrt(sum of fan-ins)`, in the order given (design.md §3.2 "pytorch_default" grouped init).
pub fn grouped_maps(vs: &nn::Path, shapes: &[MapShape]) -> Vec<ChannelAffine> {
    let fan_in: i64 = shapes.iter().map(|s| s.c_in).sum();
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    let init = Init::Uniform { lo: -bound, up: bound };
    shapes
        .iter()
        .map(|s| {
            let p = vs / s.name;
            ChannelAffine {
                weight: p.var("weight", &[s.c_out, s.c_in], init),
                bias: p.var("bias", &[s.c_out], init),
            }
        })
        .collect()
}

/// One map with PyTorch's default init (a group of one).
pub fn default_map(vs: &nn::Path, name: &str, c_in: i64, c_out: i64) -> ChannelAffine {
    let mut maps = grouped_maps(vs, &[MapShape { name, c_in, c_out }]);
    maps.pop().expect("grouped_maps returns one map per shape")
}

/// Sequences up to this length go through [`ChannelAffine::forward_seq_add`]'s convolution path.
const SHORT_SEQ: i64 = 64;
/// ... when the map has at least this many weights (below it the batched product's lower overhead
/// wins; both measured on the CPU bench machine, fwd+bwd).
const WIDE_MAP: i64 = 16384;

impl ChannelAffine {
    /// Input width `c_in`.
    pub fn c_in(&self) -> i64 {
        self.weight.size()[1]
    }

    /// Output width `c_out`.
    pub fn c_out(&self) -> i64 {
        self.weight.size()[0]
    }

    /// Apply to a batch of vectors.
    ///
    /// # Shapes
    /// `[b, c_in]` → `[b, c_out]`
    pub fn forward_vec(&self, xs: &Tensor) -> Tensor {
        xs.linear(&self.weight, Some(&self.bias))
    }

    /// Apply along the channel axis of a sequence, adding `extra` (broadcastable to the output,
    /// e.g. `[b, c_out, 1]`) in the same pass.
    ///
    /// # Shapes
    /// `xs` `[b, c_in, n]` → `[b, c_out, n]`
    pub fn forward_seq_add(&self, xs: &Tensor, extra: Option<&Tensor>) -> Tensor {
        let (b, n) = (xs.size()[0], xs.size()[2]);
        if n <= SHORT_SEQ && self.c_in() * self.c_out() >= WIDE_MAP {
            // One GEMM over all `b n` positions (a 1x1 convolution): the batched form's weight
            // gradient would be `b` products with an inner dimension of only `n`.
            let ys = xs.conv1d(&self.weight.unsqueeze(2), Some(&self.bias), [1], [0], [1], 1);
            return match extra {
                Some(extra) => ys + extra,
                None => ys,
            };
        }
        let shift = self.bias.view([1, -1, 1]); // [1, c_out, 1]
        let shift = match extra {
            Some(extra) => extra + shift,
            None => shift,
        };
        let weight = self.weight.expand([b, self.c_out(), self.c_in()], false); // [b, c_out, c_in]
        shift.expand([b, self.c_out(), n], false).baddbmm(&weight, xs, 1.0, 1.0)
    }

    /// Apply along the channel axis of a sequence.
    ///
    /// # Shapes
    /// `[b, c_in, n]` → `[b, c_out, n]`
    pub fn forward_seq(&self, xs: &Tensor) -> Tensor {
        self.forward_seq_add(xs, None)
    }

    /// Apply two maps to the same sequence as one map of the stacked outputs (one product over
    /// the input instead of two), each output with its own `extra` as in [`Self::forward_seq_add`].
    ///
    /// # Shapes
    /// `xs` `[b, c_in, n]` → (`[b, c_out_1, n]`, `[b, c_out_2, n]`)
    pub fn forward_seq_pair(
        first: &Self,
        second: &Self,
        xs: &Tensor,
        extras: [Option<&Tensor>; 2],
    ) -> (Tensor, Tensor) {
        let (b, o1, o2) = (xs.size()[0], first.c_out(), second.c_out());
        let both = ChannelAffine {
            weight: Tensor::cat(&[&first.weight, &second.weight], 0),
            bias: Tensor::cat(&[&first.bias, &second.bias], 0),
        };
        let extra = match extras {
            [None, None] => None,
            [a, c] => {
                let fill = |e: Option<&Tensor>, o| match e {
                    Some(e) => e.expand([b, o, 1], false),
                    None => {
                        Tensor::zeros([1, 1, 1], (xs.kind(), xs.device())).expand([b, o, 1], false)
                    }
                };
                Some(Tensor::cat(&[fill(a, o1), fill(c, o2)], 1))
            }
        };
        let ys = both.forward_seq_add(xs, extra.as_ref());
        let mut parts = ys.split_with_sizes([o1, o2], 1).into_iter();
        (parts.next().expect("two parts"), parts.next().expect("two parts"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn grouped_bound_uses_summed_fan_in() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let shapes = [
            MapShape { name: "a", c_in: 30, c_out: 40 },
            MapShape { name: "b", c_in: 70, c_out: 40 },
        ];
        let maps = grouped_maps(&vs.root(), &shapes);
        let bound = 0.1; // 1/sqrt(30 + 70)
        for m in &maps {
            for t in [&m.weight, &m.bias] {
                let max = t.abs().max().double_value(&[]);
                assert!(max <= bound && max > 0.8 * bound, "max {max} vs bound {bound}");
            }
        }
        assert_eq!(vs.variables().len(), 4);
    }

    #[test]
    fn seq_matches_vec() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let map = default_map(&vs.root(), "m", 3, 5);
        let xs = Tensor::randn([2, 3, 4], (Kind::Float, Device::Cpu));
        let seq = map.forward_seq(&xs);
        let vec = map.forward_vec(&xs.transpose(1, 2).reshape([8, 3])).reshape([2, 4, 5]);
        assert!(seq.allclose(&vec.transpose(1, 2), 1e-5, 1e-5, false));
    }

    #[test]
    fn a_pair_of_maps_gives_what_each_map_gives_alone() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let opts = (Kind::Double, Device::Cpu);
        let double = |m: ChannelAffine| ChannelAffine {
            weight: m.weight.to_kind(Kind::Double),
            bias: m.bias.to_kind(Kind::Double),
        };
        // wide maps (the convolution path at n = 32) and narrow ones (the batched product)
        for (c_in, outs) in [(160, [128, 64]), (6, [4, 3])] {
            let first = double(default_map(&vs.root(), "a", c_in, outs[0]));
            let second = double(default_map(&vs.root(), "b", c_in, outs[1]));
            let xs = Tensor::randn([2, c_in, 32], opts);
            let extra = Tensor::randn([2, outs[1], 1], opts);
            for extras in [[None, Some(&extra)], [None, None]] {
                let (y1, y2) = ChannelAffine::forward_seq_pair(&first, &second, &xs, extras);
                assert!(y1.allclose(&first.forward_seq_add(&xs, extras[0]), 1e-10, 1e-10, false));
                assert!(y2.allclose(&second.forward_seq_add(&xs, extras[1]), 1e-10, 1e-10, false));
            }
        }
    }

    #[test]
    fn the_convolution_and_batched_paths_agree_with_their_gradients() {
        // a map wide enough for the convolution path at short lengths, the batched path beyond
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let map = default_map(&vs.root(), "m", 160, 128);
        assert!(map.c_in() * map.c_out() >= WIDE_MAP);
        let opts = (Kind::Double, Device::Cpu);
        let (weight, bias) = (map.weight.to_kind(Kind::Double), map.bias.to_kind(Kind::Double));
        let map = ChannelAffine { weight: weight.set_requires_grad(true), bias: bias.detach() };
        for n in [SHORT_SEQ, SHORT_SEQ + 1] {
            let xs = Tensor::randn([3, 160, n], opts).set_requires_grad(true);
            let extra = Tensor::randn([3, 128, 1], opts);
            let ys = map.forward_seq_add(&xs, Some(&extra));
            let want = map.weight.matmul(&xs) + map.bias.view([1, -1, 1]) + &extra;
            assert!(ys.allclose(&want, 1e-10, 1e-10, false), "n = {n}");
            let probe = Tensor::randn([3, 128, n], opts);
            let grads = |ys: &Tensor| {
                Tensor::run_backward(
                    &[(ys * &probe).sum(Kind::Double)],
                    &[&xs, &map.weight],
                    false,
                    false,
                )
            };
            let (got, want) = (grads(&ys), grads(&want));
            for (g, w) in got.iter().zip(&want) {
                assert!(g.allclose(w, 1e-10, 1e-10, false), "gradients differ at n = {n}");
            }
        }
    }
}
