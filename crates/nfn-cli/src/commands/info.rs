//! `nfn info`: what this build of LibTorch sees, and the allocator the process runs under.

use anyhow::Result;
use tch::Cuda;

use crate::driver::{device, device_name};

/// Print device, CUDA and thread facts.
pub fn run() -> Result<()> {
    println!("nfn {}", env!("CARGO_PKG_VERSION"));
    println!("device: {} (choose with --device or NFN_DEVICE)", device_name(device()));
    println!("cuda available: {} ({} devices)", Cuda::is_available(), Cuda::device_count());
    println!("cpu threads: {}", tch::get_num_threads());
    println!("allocator: {}", nfn_weightspace::runtime::allocator());
    Ok(())
}
