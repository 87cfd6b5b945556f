//! Input encodings: Gaussian Fourier features, IO sinusoidal encoding, learned positional embeddings (REFERENCE §2.5).
