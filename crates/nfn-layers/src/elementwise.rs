//! Element-wise activations and dropouts on weight-space features (REFERENCE §2.2, §2.3).
