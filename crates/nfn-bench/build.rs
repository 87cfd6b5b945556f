//! Link `libtorch_cuda` on GPU builds: rustc passes `--as-needed`, which drops it because no symbol
//! is referenced directly, and tch would then not see the GPU.
fn main() {
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_CUDA");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
