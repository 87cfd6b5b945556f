//! Fuzz target: `nfn_fuzz::target("inr_shard_payload")` (see `crates/nfn-fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (nfn_fuzz::target("inr_shard_payload").expect("a known target").run)(data);
});
