//! Process-level allocator tuning for CPU runs of LibTorch.
//!
//! LibTorch allocates its CPU tensors with the C library's `malloc`. Under glibc's defaults every
//! block above the mmap threshold (at most 32 MiB) is a fresh `mmap` that the kernel zero-fills
//! page by page, and is unmapped again on `free`. One weight-space transformer step allocates and
//! frees hundreds of such blocks (a `[b * N, 4C]` activation is 155 MB at batch 32), so much of its
//! time went to page faults: timing the Inr2Array encoder spent 38 s of a 67 s run in the kernel.
//!
//! The fix is an allocator that keeps freed memory for reuse. In order of preference:
//! 1. jemalloc (Debian's `libjemalloc2`, which `cargo xtask setup` installs), preloaded with its
//!    purging turned off: the encoder's forward + backward ran 1.6x faster and its peak memory was
//!    about the same as under glibc's defaults (see `docs/bench/inr2array.md`);
//! 2. otherwise glibc itself, told not to use mmap and not to trim (`MALLOC_TUNABLES`): about as
//!    fast, but fragmentation adds roughly a fifth to the peak resident memory.
//!
//! Both are read only at process start-up, so a binary that wants them calls
//! [`reexec_with_tuned_malloc`] first thing in `main`, and the process re-executes itself once with
//! the environment set. `NFN_MALLOC=system` keeps the C library's defaults; a `MALLOC_CONF` or
//! `GLIBC_TUNABLES` the user set is left as it is.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// glibc malloc settings used when jemalloc is missing: no mmap for large blocks, and freed
/// memory at the top of the heap is never returned to the kernel (16 GiB trim threshold).
pub const MALLOC_TUNABLES: &str = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184";

/// jemalloc settings: freed pages are kept (never purged), so they are reused without faults.
pub const JEMALLOC_CONF: &str = "dirty_decay_ms:-1,muzzy_decay_ms:-1";

/// Set in the re-executed process to the allocator chosen (`jemalloc` or `glibc-tunables`), so
/// it does not re-execute again and benchmarks can report what they ran under.
pub const APPLIED_VAR: &str = "NFN_MALLOC_APPLIED";

/// Where Debian, Ubuntu and Fedora install jemalloc's shared library.
const JEMALLOC_PATHS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
];

/// The jemalloc library to preload, if one is installed.
pub fn jemalloc_path() -> Option<PathBuf> {
    JEMALLOC_PATHS.iter().map(Path::new).find(|p| p.exists()).map(Path::to_path_buf)
}

/// The allocator the running process uses: `jemalloc`, `glibc-tunables` or `system`.
pub fn allocator() -> String {
    std::env::var(APPLIED_VAR).unwrap_or_else(|_| "system".into())
}

/// The environment variables that select the tuned allocator for a new process: jemalloc
/// preloaded when installed, glibc tunables otherwise (empty off glibc Linux).
pub fn tuned_malloc_env() -> Vec<(&'static str, OsString)> {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return Vec::new();
    }
    match jemalloc_path() {
        Some(lib) => {
            let mut preload = lib.into_os_string();
            if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
                preload.push(":");
                preload.push(old);
            }
            let mut env = vec![("LD_PRELOAD", preload), (APPLIED_VAR, "jemalloc".into())];
            if std::env::var_os("MALLOC_CONF").is_none() {
                env.push(("MALLOC_CONF", JEMALLOC_CONF.into()));
            }
            env
        }
        None => {
            let mut env = vec![(APPLIED_VAR, "glibc-tunables".into())];
            if std::env::var_os("GLIBC_TUNABLES").is_none() {
                env.push(("GLIBC_TUNABLES", MALLOC_TUNABLES.into()));
            }
            env
        }
    }
}

/// Re-execute the running binary under the tuned allocator of [`tuned_malloc_env`], unless that
/// already happened, `NFN_MALLOC=system` is set, or this is not a glibc Linux build.
///
/// Returns only when no re-execution happened; if `exec` itself fails, the process goes on with
/// the default allocator and a warning on stderr.
pub fn reexec_with_tuned_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os(APPLIED_VAR).is_some()
            || std::env::var("NFN_MALLOC").is_ok_and(|v| v == "system")
        {
            return;
        }
        let Ok(exe) = std::env::current_exe() else { return };
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
        let err =
            std::process::Command::new(&exe).arg0(arg0).args(args).envs(tuned_malloc_env()).exec();
        eprintln!("warning: could not re-execute {} with a tuned allocator: {err}", exe.display());
    }
}
