//! Grouped (reference-style) parameter initialisation for the NFN layers (REFERENCE §3.2, trap 14).
