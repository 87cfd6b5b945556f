//! The weight-space core of nfn-rs: network specs, batched multi-channel weight-space features as
//! LibTorch tensors, the hidden-neuron permutation group and its action, evaluation of the networks
//! a weight space describes, SIRENs (init, pixel grid, rendering), and `.npy`/`.npz` I/O.
//!
//! Every other nfn-rs crate sits on this one: `nfn-layers` builds equivariant layers on
//! [`WeightSpaceFeatures`], `nfn-datasets` produces them from files. With the `testing` feature it
//! also provides the property-test helpers (module `testing`) that every layer's symmetry tests use.
//! Conventions follow the NFN/NFT reference: weights are `(out, in)` with batch and channel axes first.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod error;
pub mod features;
pub mod function;
pub mod io;
pub mod permutation;
pub mod runtime;
pub mod shard;
pub mod siren;
pub mod spec;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Error, Result};
pub use features::{fold, unfold, WeightSpaceFeatures};
pub use function::{evaluate, evaluate_cnn, evaluate_mlp, Activation};
pub use permutation::NeuronPermutation;
pub use shard::Shard;
pub use siren::{
    pixel_grid, render_siren, siren_init, siren_init_tch_rng, transform_input, SIREN_HIDDEN,
    SIREN_OMEGA0,
};
pub use spec::{LayerSpec, NetworkSpec};
