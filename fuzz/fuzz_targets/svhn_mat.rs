//! Fuzz target: `nfn_fuzz::target("svhn_mat")` (see `crates/nfn-fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (nfn_fuzz::target("svhn_mat").expect("a known target").run)(data);
});
