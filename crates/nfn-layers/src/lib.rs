//! Permutation-equivariant layers on weight-space features: the NFN layers (NP, HNP), the NFT
//! weight-space attention and block, invariant pooling and read-outs, and input encodings.
//!
//! Sits on `nfn-weightspace`; used by `nft-model` and `inr2array`. (Layers land with the layers issue.)
#![warn(missing_docs)]
