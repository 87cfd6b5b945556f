//! Cross-attention read-out to a permutation-invariant latent array (REFERENCE §4.5).
