//! HNP-equivariant linear layer, HnpLinear (REFERENCE §3.3).
