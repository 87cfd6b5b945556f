//! Learned per-tensor output scale (REFERENCE §2.6).
