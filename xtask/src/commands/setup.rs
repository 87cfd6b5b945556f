//! `cargo xtask setup`: LibTorch and data, idempotently.
//!
//! LibTorch comes from the PyPI `torch==2.11.0` wheel (the version tch 0.24.0 is generated for),
//! installed into the project-local virtual environment `.venv/` so the user's Python is left alone.
//! `.libtorch` is linked to the wheel's `torch/` folder, which `.cargo/config.toml` hands to torch-sys
//! as `LIBTORCH`; binaries find `.libtorch/lib` through a relative rpath.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::{self, root};

/// The PyTorch release matching `tch = "=0.24.0"`.
pub const TORCH_VERSION: &str = "2.11.0";
/// Debian's FashionMNIST package.
pub const FASHION_MNIST_PACKAGE: &str = "dataset-fashion-mnist";
/// Where Debian's `dataset-fashion-mnist` puts the IDX files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Where `cargo xtask download fashion-mnist` puts them (under the workspace), which `nfn` reads
/// when the Debian folder lacks them.
pub const FASHION_MNIST_DOWNLOAD_DIR: &str = "data/fashion-mnist";

/// Options of `setup`.
#[derive(clap::Args)]
pub struct Args {
    /// Also install the PyTorch reference package (`nfn==0.1.2`) and OpenCV, used by fixture scripts
    /// and benches.
    #[arg(long)]
    pub reference: bool,
}

fn venv_python() -> std::path::PathBuf {
    root().join(".venv/bin/python")
}

fn torch_dir() -> Option<String> {
    let code = format!(
        "import torch, os; assert torch.__version__.startswith('{TORCH_VERSION}'), torch.__version__; \
         print(os.path.dirname(torch.__file__))"
    );
    util::output(Command::new(venv_python()).args(["-c", &code]))
}

fn ensure_torch() -> Result<String> {
    if let Some(dir) = torch_dir() {
        return Ok(dir);
    }
    if !venv_python().exists() {
        util::run(Command::new("python3").args(["-m", "venv", ".venv"]))
            .context("creating the virtual environment .venv (needs python3 with venv)")?;
    }
    eprintln!("xtask: installing torch=={TORCH_VERSION} into .venv (about 2.6 GB download)");
    util::run(Command::new(venv_python()).args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-cache-dir",
        &format!("torch=={TORCH_VERSION}"),
        "numpy",
    ]))?;
    torch_dir().context("torch was installed but `import torch` still fails in .venv")
}

fn ensure_link(torch: &str) -> Result<()> {
    let link = root().join(".libtorch");
    if std::fs::read_link(&link).is_ok_and(|t| t == Path::new(torch)) {
        return Ok(());
    }
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(&link).with_context(|| format!("removing stale {link:?}"))?;
    }
    std::os::unix::fs::symlink(torch, &link).with_context(|| format!("linking {link:?} -> {torch}"))
}

/// Where Debian, Ubuntu and Fedora put jemalloc, which our binaries preload when it is there (the
/// same list as `nfn_weightspace::runtime`; xtask links no LibTorch, so it keeps this copy).
const JEMALLOC_PATHS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
];

/// The installed jemalloc library, if any.
pub fn jemalloc_path() -> Option<&'static str> {
    JEMALLOC_PATHS.into_iter().find(|p| Path::new(p).exists())
}

/// Install the Debian packages that are missing: FashionMNIST (the demo's data, unless
/// `cargo xtask download fashion-mnist` already put it in `data/`) and jemalloc
/// (the faster allocator for LibTorch on CPU). Both are optional, so a failure only warns.
fn ensure_debian_packages() -> Result<()> {
    // Debian's package, or a finished `cargo xtask download fashion-mnist` (its last file is there).
    let fashion_mnist = Path::new(FASHION_MNIST_DIR).join("train-images-idx3-ubyte.gz").exists()
        || root().join(FASHION_MNIST_DOWNLOAD_DIR).join("t10k-labels-idx1-ubyte.gz").exists();
    let missing: Vec<(&str, &str)> = [
        (fashion_mnist, FASHION_MNIST_PACKAGE, "the demo and the FashionMNIST commands need it"),
        (
            jemalloc_path().is_some(),
            "libjemalloc2",
            "without it, CPU runs use glibc malloc tuned, with a higher peak memory",
        ),
    ]
    .into_iter()
    .filter(|(present, _, _)| !present)
    .map(|(_, package, why)| (package, why))
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = util::output(Command::new("id").arg("-u")).as_deref() == Some("0");
    for (package, why) in missing {
        // FashionMNIST can also come from Zalando's repository, where apt cannot help.
        let or_else = if package == FASHION_MNIST_PACKAGE {
            format!(
                "; or download it without apt: `cargo xtask download fashion-mnist` (into \
                 {FASHION_MNIST_DOWNLOAD_DIR})"
            )
        } else {
            String::new()
        };
        if !is_root {
            eprintln!(
                "xtask: {package} is missing ({why}); install it with \
                 `sudo apt-get install -y {package}`{or_else}"
            );
            continue;
        }
        let install = || util::run(Command::new("apt-get").args(["install", "-y", package]));
        let installed = install().is_ok()
            || (util::run(Command::new("apt-get").arg("update")).is_ok() && install().is_ok());
        if !installed {
            // Nothing else depends on it; the commands that do report the missing files themselves.
            eprintln!("xtask: could not install {package} with apt-get ({why}){or_else}");
        }
    }
    Ok(())
}

fn ensure_reference() -> Result<()> {
    let ok =
        util::output(Command::new(venv_python()).args(["-c", "import nfn, cv2, scipy"])).is_some();
    if !ok {
        util::run(Command::new(venv_python()).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "nfn==0.1.2",
            "einops",
            // OpenCV for the INR-editing fixtures (crates/nfn-datasets/tests/fixtures/edit/gen.py).
            "opencv-python-headless==5.0.0.93",
            // SciPy for the SVHN .mat fixtures (crates/nfn-datasets/tests/fixtures/svhn/gen.py).
            "scipy==1.17.1",
        ]))?;
    }
    Ok(())
}

/// Run the set-up; cheap when everything is in place.
pub fn run(args: &Args) -> Result<()> {
    if !cfg!(target_os = "linux") {
        bail!(
            "set-up supports Linux only (the PyPI torch wheel and rpath layout are Linux-specific)"
        );
    }
    let torch = ensure_torch()?;
    ensure_link(&torch)?;
    ensure_debian_packages()?;
    if args.reference {
        ensure_reference()?;
    }
    Ok(())
}
