//! Fuzz target: `nfn_fuzz::target("checkpoint")` (see `crates/nfn-fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (nfn_fuzz::target("checkpoint").expect("a known target").run)(data);
});
