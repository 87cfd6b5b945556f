//! Invariant pooling: NpPool and HnpPool (REFERENCE §3.4).
