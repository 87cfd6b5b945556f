//! Which accelerator the `nfn` and bench binaries are built for: CUDA when the machine has an NVIDIA
//! GPU (or `NFN_DEVICE` asks for one), the CPU otherwise. A CUDA build is the `cuda` feature of
//! `nfn-cli` / `nfn-bench`, which links `libtorch_cuda`; the binaries then pick their device
//! themselves, from `--device` or `NFN_DEVICE`, which xtask passes through unchanged.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

/// The environment variable `nfn` reads its default device from (`cpu`, `cuda`, `cuda:N`).
pub const DEVICE_ENV: &str = "NFN_DEVICE";

/// The accelerator chosen for a build, with why.
#[derive(Debug, Clone, PartialEq)]
pub enum Accel {
    /// A CPU build.
    Cpu {
        /// Why not CUDA, e.g. `no NVIDIA driver found` or `NFN_DEVICE=cpu`.
        reason: String,
    },
    /// A CUDA build.
    Cuda {
        /// The device the binaries will use: `cuda` (the first GPU) or `NFN_DEVICE`'s `cuda:N`.
        device: String,
        /// `NFN_DEVICE` when it asked for CUDA, `None` when CUDA was chosen because a GPU is there.
        forced_by: Option<String>,
        /// The GPUs found, one name each (nvidia-smi's), or a note on the driver when only it was seen.
        gpus: Vec<String>,
    },
}

impl Accel {
    /// Whether this is a CUDA build.
    pub fn is_cuda(&self) -> bool {
        matches!(self, Accel::Cuda { .. })
    }

    /// The device string for PyTorch and `--device`: `cpu`, `cuda` or `cuda:N`.
    pub fn device(&self) -> &str {
        match self {
            Accel::Cpu { .. } => "cpu",
            Accel::Cuda { device, .. } => device,
        }
    }

    /// The GPUs in one phrase, identical names counted: `NVIDIA H200 x1`, `NVIDIA A100 x2, NVIDIA T4 x1`.
    pub fn gpu_summary(&self) -> String {
        match self {
            Accel::Cpu { .. } => "no GPU".into(),
            Accel::Cuda { gpus, .. } => summarize(gpus),
        }
    }

    /// The line xtask prints before running `what` (e.g. `nfn`): `device cuda (NVIDIA H200 x1; nfn
    /// built with --features cuda)` or `device cpu (no NVIDIA driver found)`.
    pub fn line(&self, what: &str) -> String {
        match self {
            Accel::Cpu { reason } => format!("device cpu ({reason})"),
            Accel::Cuda { device, forced_by, gpus } => {
                let forced = forced_by.as_ref().map_or(String::new(), |v| format!("{v}; "));
                format!(
                    "device {device} ({forced}{}; {what} built with --features cuda)",
                    summarize(gpus)
                )
            }
        }
    }
}

/// The cargo arguments selecting the build for `accel` in a single-package command:
/// `["--features", "cuda"]` for CUDA, nothing for the CPU.
pub fn cargo_features(accel: &Accel) -> Vec<&'static str> {
    if accel.is_cuda() {
        vec!["--features", "cuda"]
    } else {
        Vec::new()
    }
}

/// What the machine showed of NVIDIA GPUs.
#[derive(Debug, Clone, PartialEq)]
pub enum Detection {
    /// GPUs were found (names, or a note on the driver when nvidia-smi could not list them).
    Gpus(Vec<String>),
    /// None, and why.
    None(String),
}

/// Look for NVIDIA GPUs: the names `nvidia-smi` lists; when it cannot run, the driver's
/// `/proc/driver/nvidia/version`.
pub fn detect() -> Detection {
    let smi =
        Command::new("nvidia-smi").args(["--query-gpu=name", "--format=csv,noheader"]).output();
    if let Ok(out) = &smi {
        if out.status.success() {
            let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            return if names.is_empty() {
                Detection::None("nvidia-smi lists no GPU".into())
            } else {
                Detection::Gpus(names)
            };
        }
    }
    if Path::new("/proc/driver/nvidia/version").exists() {
        return Detection::Gpus(vec![
            "NVIDIA GPU (driver loaded; nvidia-smi could not list it)".into()
        ]);
    }
    Detection::None("no NVIDIA driver found".into())
}

/// The accelerator for this machine and `NFN_DEVICE`.
///
/// # Errors
/// When `NFN_DEVICE` is not `cpu`, `cuda` or `cuda:N`, or asks for CUDA and no GPU is found.
pub fn accel() -> Result<Accel> {
    choose(std::env::var(DEVICE_ENV).ok().as_deref(), detect)
}

/// [`accel`] with the variable's value and the detection given (for tests).
fn choose(nfn_device: Option<&str>, detect: impl FnOnce() -> Detection) -> Result<Accel> {
    let value = nfn_device.map(str::trim).filter(|v| !v.is_empty());
    match value {
        Some("cpu") => Ok(Accel::Cpu { reason: format!("{DEVICE_ENV}=cpu") }),
        Some(v) if is_cuda_device(v) => match detect() {
            Detection::Gpus(gpus) => Ok(Accel::Cuda {
                device: v.to_string(),
                forced_by: Some(format!("{DEVICE_ENV}={v}")),
                gpus,
            }),
            Detection::None(why) => bail!("{DEVICE_ENV}={v} asks for CUDA, but {why}"),
        },
        Some(v) => bail!("{DEVICE_ENV}={v:?} is not one of cpu, cuda, cuda:N"),
        None => Ok(match detect() {
            Detection::Gpus(gpus) => Accel::Cuda { device: "cuda".into(), forced_by: None, gpus },
            Detection::None(reason) => Accel::Cpu { reason },
        }),
    }
}

/// `cuda` or `cuda:N`.
fn is_cuda_device(v: &str) -> bool {
    v == "cuda"
        || v.strip_prefix("cuda:")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Names with identical ones counted, in order of first appearance.
fn summarize(gpus: &[String]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for name in gpus {
        match counts.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    counts.iter().map(|(n, c)| format!("{n} x{c}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h200s(n: usize) -> impl FnOnce() -> Detection {
        move || Detection::Gpus(vec!["NVIDIA H200".into(); n])
    }

    fn none() -> Detection {
        Detection::None("no NVIDIA driver found".into())
    }

    #[test]
    fn auto_picks_cuda_when_a_gpu_is_there() {
        let accel = choose(None, h200s(1)).unwrap();
        assert_eq!(accel.device(), "cuda");
        assert_eq!(
            accel.line("nfn"),
            "device cuda (NVIDIA H200 x1; nfn built with --features cuda)"
        );
        assert_eq!(cargo_features(&accel), ["--features", "cuda"]);
    }

    #[test]
    fn auto_falls_back_to_cpu_with_the_reason() {
        let accel = choose(Some(""), none).unwrap();
        assert_eq!(accel.line("nfn"), "device cpu (no NVIDIA driver found)");
        assert!(cargo_features(&accel).is_empty());
    }

    #[test]
    fn nfn_device_cpu_needs_no_detection() {
        let accel = choose(Some("cpu"), || panic!("must not detect")).unwrap();
        assert_eq!(accel.line("nfn"), "device cpu (NFN_DEVICE=cpu)");
    }

    #[test]
    fn nfn_device_cuda_forces_a_cuda_build_or_fails() {
        let accel = choose(Some("cuda:1"), h200s(2)).unwrap();
        assert_eq!(
            accel.line("nfn"),
            "device cuda:1 (NFN_DEVICE=cuda:1; NVIDIA H200 x2; nfn built with --features cuda)"
        );
        let err = choose(Some("cuda"), none).unwrap_err().to_string();
        assert_eq!(err, "NFN_DEVICE=cuda asks for CUDA, but no NVIDIA driver found");
        assert!(choose(Some("gpu"), none).is_err());
        assert!(choose(Some("cuda:"), none).is_err());
    }

    #[test]
    fn summary_counts_identical_names() {
        let gpus = ["A100", "T4", "A100"].map(String::from);
        assert_eq!(summarize(&gpus), "A100 x2, T4 x1");
    }
}
