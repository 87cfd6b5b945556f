//! Pointwise channel mixing per layer (REFERENCE §2.1).
