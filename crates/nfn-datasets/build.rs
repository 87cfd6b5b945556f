//! Doctests are linked into temporary folders that the workspace's relative rpath cannot reach, so
//! this crate's test and doctest executables also get LibTorch's absolute lib folder as rpath
//! (`LIBTORCH` is set by `.cargo/config.toml`).
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Some(dir) = std::env::var_os("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}/lib", std::path::Path::new(&dir).display());
    }
}
