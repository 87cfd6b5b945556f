//! Fuzz target: `nfn_fuzz::target("npz")` (see `crates/nfn-fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (nfn_fuzz::target("npz").expect("a known target").run)(data);
});
