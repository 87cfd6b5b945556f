//! NFT weight-space self-attention, NpAttention (REFERENCE §4.1, §4.2).
