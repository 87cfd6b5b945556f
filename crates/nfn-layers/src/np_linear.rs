//! NP-equivariant linear layer, NpLinear (REFERENCE §3.2).
