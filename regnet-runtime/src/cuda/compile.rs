//! Kernel sources to CUBIN with NVRTC, for one GPU architecture, cached on disk.
//!
//! CUBIN (not PTX) is what we load: a driver older than the NVRTC that wrote PTX refuses it,
//! while CUBIN for the device's own architecture loads on any driver that supports the device.

use std::ffi::{CStr, CString, c_char, c_int};
use std::path::PathBuf;

use cudarc::nvrtc::{result, sys};

use super::DeviceError;

/// What NVRTC made of a module: the CUBIN and ptxas's report (registers, spills per kernel).
#[derive(Debug)]
pub struct Compiled {
    /// The module's machine code for `sm_{arch}`, as `cuModuleLoadData` takes it.
    pub cubin: Vec<u8>,
    /// NVRTC's program log: warnings, and ptxas's per-kernel report (`--ptxas-options=-v`),
    /// which [`spills`] reads.
    pub log: String,
}

/// A kernel's spill traffic as ptxas reports it.
#[derive(Debug, PartialEq, Eq)]
pub struct Spill {
    /// The kernel's symbol (an instance's `extern "C"` name); empty when the report named none.
    pub kernel: String,
    /// Bytes of registers the kernel stores to local memory (0 when it fits its registers).
    pub store_bytes: u64,
    /// Bytes of spilled registers the kernel loads back from local memory.
    pub load_bytes: u64,
}

/// Fails with a message saying how to install NVRTC when the library cannot be loaded (cudarc
/// would panic on the first call).
pub fn require_nvrtc() -> Result<(), DeviceError> {
    // SAFETY: only tries to dlopen the library under its usual names; no symbol is called.
    if unsafe { sys::is_culib_present() } {
        Ok(())
    } else {
        Err(DeviceError::NoNvrtc)
    }
}

/// NVRTC's (major, minor) version.
pub fn nvrtc_version() -> Result<(i32, i32), DeviceError> {
    require_nvrtc()?;
    let (mut major, mut minor): (c_int, c_int) = (0, 0);
    // SAFETY: the library is present; both pointers are valid for writes.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| DeviceError::nvrtc("nvrtcVersion", e))?;
    Ok((major, minor))
}

/// The options every module is compiled with for `sm_{arch}`.
pub fn options(arch: u32) -> Vec<String> {
    vec![
        format!("--gpu-architecture=sm_{arch}"),
        "--std=c++17".to_owned(),
        // ptxas's per-kernel report (registers, spills) goes into the program log.
        "--ptxas-options=-v".to_owned(),
    ]
}

/// Compiles `source` to CUBIN for `sm_{arch}`, without the cache.
pub fn compile(source: &str, arch: u32) -> Result<Compiled, DeviceError> {
    require_nvrtc()?;
    let source = CString::new(source).map_err(|_| DeviceError::Compile {
        arch,
        log: "the kernel source contains a NUL byte".to_owned(),
    })?;
    let program = Program(
        result::create_program(&source, None).map_err(|e| DeviceError::nvrtc("create", e))?,
    );
    let options = options(arch);
    // SAFETY: `program` is a live program; the options are plain strings NVRTC copies.
    let compiled = unsafe { result::compile_program(program.0, &options) };
    let log = program.log()?;
    if compiled.is_err() {
        return Err(DeviceError::Compile { arch, log });
    }
    let mut size = 0usize;
    // SAFETY: the program compiled; `size` is valid for writes.
    unsafe { sys::nvrtcGetCUBINSize(program.0, &mut size) }
        .result()
        .map_err(|e| DeviceError::nvrtc("nvrtcGetCUBINSize", e))?;
    let mut cubin = vec![0u8; size];
    // SAFETY: `cubin` has the `size` bytes NVRTC reported for this program.
    unsafe { sys::nvrtcGetCUBIN(program.0, cubin.as_mut_ptr().cast::<c_char>()) }
        .result()
        .map_err(|e| DeviceError::nvrtc("nvrtcGetCUBIN", e))?;
    Ok(Compiled { cubin, log })
}

/// An NVRTC program, destroyed when dropped.
struct Program(sys::nvrtcProgram);

impl Program {
    fn log(&self) -> Result<String, DeviceError> {
        // SAFETY: the program is live; NVRTC returns a NUL-terminated buffer.
        let raw = unsafe { result::get_program_log(self.0) }
            .map_err(|e| DeviceError::nvrtc("nvrtcGetProgramLog", e))?;
        // SAFETY: `raw` is NUL-terminated (NVRTC sizes the log with its terminator).
        let log = unsafe { CStr::from_ptr(raw.as_ptr()) };
        Ok(log.to_string_lossy().into_owned())
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program was created by NVRTC and is destroyed once, here. A failure to
        // free it leaks a little host memory; there is nothing better to do in a drop.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

/// The spills ptxas reported, per kernel (`Function properties for NAME` followed by
/// `N bytes stack frame, S bytes spill stores, L bytes spill loads`).
pub fn spills(log: &str) -> Vec<Spill> {
    let mut kernel = None;
    let mut spills = Vec::new();
    for line in log.lines() {
        if let Some((_, name)) = line.split_once("Function properties for ") {
            kernel = Some(name.trim().to_owned());
        } else if line.contains("bytes spill stores") {
            let number = |label: &str| {
                line.split(',')
                    .find(|part| part.contains(label))
                    .and_then(|part| part.split_whitespace().next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            spills.push(Spill {
                kernel: kernel.take().unwrap_or_default(),
                store_bytes: number("spill stores"),
                load_bytes: number("spill loads"),
            });
        }
    }
    spills
}

/// Where CUBINs are cached: `$REGNET_CUDA_CACHE`, else `$XDG_CACHE_HOME/regnet/cubin`, else
/// `$HOME/.cache/regnet/cubin`.
fn cache_dir() -> Option<PathBuf> {
    let env = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("REGNET_CUDA_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("regnet/cubin")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/regnet/cubin")))
}

/// FNV-1a, 64 bits: a stable hash (std's hasher may change between Rust releases, which would
/// only cost recompiles, but a stable key also lets users ship a warmed cache).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for &byte in part.iter().chain(&(part.len() as u64).to_le_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The cache key of a module: its source, options, NVRTC version and architecture.
pub fn cache_key(source: &str, arch: u32, nvrtc: (i32, i32)) -> String {
    let options = options(arch).join(" ");
    let version = format!("{}.{}", nvrtc.0, nvrtc.1);
    let arch = arch.to_string();
    let parts: [&[u8]; 4] = [
        source.as_bytes(),
        options.as_bytes(),
        version.as_bytes(),
        arch.as_bytes(),
    ];
    // Two different seeds' worth of bits: the source itself, then everything, so that a
    // collision needs both to collide.
    format!("sm{arch}-{:016x}{:016x}", fnv1a(&parts[..1]), fnv1a(&parts))
}

/// The CUBIN of `source` for `sm_{arch}`: from the cache when there, else compiled and stored.
/// A cache that cannot be read or written only costs a compile.
pub fn cached(source: &str, arch: u32) -> Result<Vec<u8>, DeviceError> {
    let path = cache_path(source, arch)?;
    if let Some(cubin) = path.as_ref().and_then(|p| std::fs::read(p).ok()) {
        return Ok(cubin);
    }
    refresh(source, arch)
}

/// Compiles `source` and replaces its cache entry (for a cached CUBIN the driver refused).
pub fn refresh(source: &str, arch: u32) -> Result<Vec<u8>, DeviceError> {
    let compiled = compile(source, arch)?;
    if let Some(path) = cache_path(source, arch)? {
        store(&path, &compiled.cubin);
    }
    Ok(compiled.cubin)
}

fn cache_path(source: &str, arch: u32) -> Result<Option<PathBuf>, DeviceError> {
    let key = cache_key(source, arch, nvrtc_version()?);
    Ok(cache_dir().map(|dir| dir.join(format!("{key}.cubin"))))
}

/// Runs `compile` on every source, on as many threads as there are cores (NVRTC compiles
/// separate programs concurrently); the results in the order of `sources`.
pub fn in_parallel<T: Send>(
    sources: &[&str],
    compile: impl Fn(&str) -> Result<T, DeviceError> + Sync,
) -> Result<Vec<T>, DeviceError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Result<T, DeviceError>>> = sources.iter().map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(sources.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(source) = sources.get(i) else { break };
                    let result = compile(source);
                    slots.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every index was taken by a thread"))
        .collect()
}

/// Writes through a temporary file and a rename, so a concurrent reader never sees half a file;
/// each write has its own temporary file (threads of one process may store the same entry).
fn store(path: &std::path::Path, bytes: &[u8]) {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Some(dir) = path.parent() else { return };
    let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = path.with_extension(format!("tmp{}-{write}", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&temporary, bytes))
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_are_read_per_kernel_from_the_ptxas_report() {
        let log = "ptxas info    : Compiling entry function 'a' for 'sm_80'\n\
                   ptxas info    : Function properties for a\n    \
                   0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
                   ptxas info    : Used 40 registers\n\
                   ptxas info    : Function properties for b\n    \
                   24 bytes stack frame, 16 bytes spill stores, 8 bytes spill loads\n";
        assert_eq!(
            spills(log),
            [
                Spill {
                    kernel: "a".into(),
                    store_bytes: 0,
                    load_bytes: 0
                },
                Spill {
                    kernel: "b".into(),
                    store_bytes: 16,
                    load_bytes: 8
                },
            ]
        );
    }

    #[test]
    fn cache_keys_change_with_every_input() {
        let base = cache_key("src", 80, (12, 9));
        assert_eq!(base, cache_key("src", 80, (12, 9)));
        for other in [
            cache_key("src2", 80, (12, 9)),
            cache_key("src", 90, (12, 9)),
            cache_key("src", 80, (12, 8)),
        ] {
            assert_ne!(base, other);
        }
    }
}
