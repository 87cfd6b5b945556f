//! Inr2Array: an NFT encoder that turns a SIREN's weights into a permutation-invariant array of
//! latent vectors, a spatial hypernetwork decoder, and a classifier over the latent array.
//!
//! Sits on `nft-model`, `nfn-layers` and `nfn-weightspace`. (Lands with the Inr2Array issue.)
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]
