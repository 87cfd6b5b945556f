//! Fuzz target: `nfn_fuzz::target("zoo_metrics")` (see `crates/nfn-fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (nfn_fuzz::target("zoo_metrics").expect("a known target").run)(data);
});
