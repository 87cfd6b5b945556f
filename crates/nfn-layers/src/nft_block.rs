//! The pre-LN NFT block (REFERENCE §4.3).
