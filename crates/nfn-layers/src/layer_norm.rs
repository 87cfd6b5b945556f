//! The weight-space LayerNorm, WsLayerNorm (REFERENCE §2.4).
