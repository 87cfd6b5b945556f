//! The StatNet featurizer: per-tensor statistics (REFERENCE §3.4).
