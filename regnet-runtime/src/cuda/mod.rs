//! The CUDA backend (cargo feature `cuda`): the same networks on an NVIDIA GPU, with the
//! project's own kernels (`kernels.cu`), compiled at run time by NVRTC for the device's
//! architecture and cached on disk, and each batch size's forward pass captured once as a CUDA
//! Graph and replayed. Building needs no CUDA toolkit: cudarc loads libcuda and libnvrtc when
//! first used, and their absence is an error, not a panic.

pub mod compile;
mod device;
pub mod instances;
pub mod source;

/// The cudarc version the backend is built on, for naming device buffers.
pub use cudarc;
pub(crate) use device::{CudaNetwork, DeviceWorkspace};

use crate::device::DeviceError;

/// The arithmetic of 1×1 convolutions on the GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precision {
    /// fp32 everywhere, as on the CPU.
    #[default]
    Fp32,
    /// Tensor cores with TF32 inputs (10-bit mantissas) and fp32 sums for the large 1×1
    /// convolutions (sm_80 and newer); everything else stays fp32.
    Tf32,
}

/// Fails with a clear message when libcuda cannot be loaded (cudarc would panic).
pub fn require_driver() -> Result<(), DeviceError> {
    // SAFETY: only tries to dlopen the library under its usual names; no symbol is called.
    if unsafe { cudarc::driver::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(DeviceError::NoDriver)
    }
}

/// How many CUDA devices there are; an error when there is no driver.
pub fn device_count() -> Result<usize, DeviceError> {
    require_driver()?;
    let count = cudarc::driver::CudaContext::device_count()
        .map_err(|e| DeviceError::driver("cuDeviceGetCount", e))?;
    Ok(usize::try_from(count).unwrap_or(0))
}
