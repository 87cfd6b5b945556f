//! The hidden-neuron permutation group `S_{d_1} x .. x S_{d_{L-1}}` and its action (design.md §1.5).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::error::{Error, Result};
use crate::features::WeightSpaceFeatures;
use crate::spec::NetworkSpec;

/// One permutation per hidden neuron layer `m = 1 .. L-1`; input and output neurons stay fixed.
///
/// Acting on features, neuron layer `m`'s permutation `π` reorders the rows of `W_{m-1}` and `b_{m-1}`
/// and the columns of `W_m` (the out/in channel axes of conv filters, never the taps):
/// `W_l -> P_{l+1} W_l P_l^T`, `b_l -> P_{l+1} b_l`, with `(P x)[i] = x[π[i]]`.
///
/// ```
/// use nfn_weightspace::{NetworkSpec, NeuronPermutation, WeightSpaceFeatures};
/// use tch::{Device, Kind};
/// let spec = NetworkSpec::mlp(&[2, 8, 8, 1]).unwrap();
/// let ws = WeightSpaceFeatures::randn(&spec, 2, 1, (Kind::Double, Device::Cpu));
/// let p = NeuronPermutation::random(&spec, 7);
/// let back = p.inverse().apply(&p.apply(&ws).unwrap()).unwrap();
/// assert!(back.flatten().allclose(&ws.flatten(), 0.0, 0.0, false));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeuronPermutation {
    dims: Vec<i64>,
    perms: Vec<Vec<i64>>,
}

fn is_permutation(p: &[i64]) -> bool {
    let mut seen = vec![false; p.len()];
    p.iter().all(|&i| {
        let ok = i >= 0 && (i as usize) < p.len() && !seen[i as usize];
        if ok {
            seen[i as usize] = true;
        }
        ok
    })
}

impl NeuronPermutation {
    /// A permutation from explicit per-hidden-layer index lists (`perms[m-1]` for neuron layer `m`).
    ///
    /// # Errors
    /// [`Error::InvalidPermutation`] if the count or a length does not fit `spec` or a list is not a
    /// permutation of `0..d_m`.
    pub fn new(spec: &NetworkSpec, perms: Vec<Vec<i64>>) -> Result<Self> {
        let dims = spec.dims();
        let hidden = &dims[1..dims.len() - 1];
        if perms.len() != hidden.len() {
            return Err(Error::InvalidPermutation(format!(
                "spec has {} hidden layers, got {} permutations",
                hidden.len(),
                perms.len()
            )));
        }
        for (m, (p, &d)) in perms.iter().zip(hidden).enumerate() {
            if p.len() as i64 != d || !is_permutation(p) {
                return Err(Error::InvalidPermutation(format!(
                    "neuron layer {}: {p:?} is not a permutation of 0..{d}",
                    m + 1
                )));
            }
        }
        Ok(NeuronPermutation { dims, perms })
    }

    /// The identity of `spec`'s group.
    pub fn identity(spec: &NetworkSpec) -> Self {
        let dims = spec.dims();
        let perms = dims[1..dims.len() - 1].iter().map(|&d| (0..d).collect()).collect();
        NeuronPermutation { dims, perms }
    }

    /// A uniformly random element, reproducible from `seed`.
    pub fn random(spec: &NetworkSpec, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut out = Self::identity(spec);
        for p in &mut out.perms {
            p.shuffle(&mut rng);
        }
        out
    }

    /// The permutation of neuron layer `m`, or `None` for the fixed input/output layers.
    pub fn layer(&self, m: usize) -> Option<&[i64]> {
        (m > 0 && m < self.dims.len() - 1).then(|| self.perms[m - 1].as_slice())
    }

    /// Whether this is the identity.
    pub fn is_identity(&self) -> bool {
        self.perms.iter().all(|p| p.iter().enumerate().all(|(i, &j)| i as i64 == j))
    }

    /// The composition with `self.compose(other).apply(x) == self.apply(other.apply(x))`.
    ///
    /// # Panics
    /// If the two belong to different specs.
    pub fn compose(&self, other: &Self) -> Self {
        assert_eq!(self.dims, other.dims, "composing permutations of different specs");
        let perms = self
            .perms
            .iter()
            .zip(&other.perms)
            .map(|(p, q)| p.iter().map(|&i| q[i as usize]).collect())
            .collect();
        NeuronPermutation { dims: self.dims.clone(), perms }
    }

    /// The inverse element.
    pub fn inverse(&self) -> Self {
        let perms = self
            .perms
            .iter()
            .map(|p| {
                let mut inv = vec![0; p.len()];
                for (i, &j) in p.iter().enumerate() {
                    inv[j as usize] = i as i64;
                }
                inv
            })
            .collect();
        NeuronPermutation { dims: self.dims.clone(), perms }
    }

    fn index(&self, m: usize, device: Device) -> Option<Tensor> {
        self.layer(m).map(|p| Tensor::from_slice(p).to_device(device))
    }

    /// Act on features: permute every channel (and every filter tap) identically.
    ///
    /// # Errors
    /// [`Error::SpecMismatch`] if the features' neuron counts differ from this permutation's spec.
    pub fn apply(&self, wsfeat: &WeightSpaceFeatures) -> Result<WeightSpaceFeatures> {
        let dims = wsfeat.spec()?.dims();
        if dims != self.dims {
            return Err(Error::SpecMismatch(format!(
                "permutation is for neuron counts {:?}, features have {dims:?}",
                self.dims
            )));
        }
        let device = wsfeat.device();
        let (weights, biases) = wsfeat
            .iter()
            .enumerate()
            .map(|(l, (w, b))| {
                let rows = self.index(l + 1, device);
                let cols = self.index(l, device);
                let w = rows.as_ref().map_or_else(|| w.shallow_clone(), |r| w.index_select(2, r));
                let w = cols.as_ref().map_or(w.shallow_clone(), |c| w.index_select(3, c));
                let b = rows.as_ref().map_or_else(|| b.shallow_clone(), |r| b.index_select(2, r));
                (w, b)
            })
            .unzip();
        Ok(WeightSpaceFeatures::from_parts_unchecked(weights, biases))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_permutations() {
        let spec = NetworkSpec::mlp(&[2, 3, 1]).expect("valid");
        assert!(NeuronPermutation::new(&spec, vec![vec![0, 0, 1]]).is_err());
        assert!(NeuronPermutation::new(&spec, vec![vec![0, 1]]).is_err());
        assert!(NeuronPermutation::new(&spec, vec![]).is_err());
        assert!(NeuronPermutation::new(&spec, vec![vec![2, 0, 1]]).is_ok());
    }

    #[test]
    fn fixed_layers_have_no_permutation() {
        let spec = NetworkSpec::mlp(&[2, 3, 4, 1]).expect("valid");
        let p = NeuronPermutation::random(&spec, 1);
        assert!(p.layer(0).is_none() && p.layer(3).is_none());
        assert_eq!(p.layer(2).map(<[i64]>::len), Some(4));
    }
}
