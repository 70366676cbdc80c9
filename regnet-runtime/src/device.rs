//! Where a network runs, and why it could not be moved there.

/// The processor a network's forward passes run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// The SIMD CPU kernels.
    #[default]
    Cpu,
    /// CUDA device `N` (see `nvidia-smi`), fp32.
    #[cfg(feature = "cuda")]
    Cuda(usize),
    /// CUDA device `N`, the large 1×1 convolutions on TF32 tensor cores (sm_80 and newer).
    #[cfg(feature = "cuda")]
    CudaTf32(usize),
}

/// Why a network could not be moved to a device, or a device operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("could not read the weights again for the new device: {0}")]
    Reload(String),
    #[cfg(feature = "cuda")]
    #[error(
        "no CUDA driver found (libcuda.so): install the NVIDIA driver, or run on the CPU \
         (Device::Cpu)"
    )]
    NoDriver,
    #[cfg(feature = "cuda")]
    #[error(
        "NVRTC not found (libnvrtc.so.12): `pip install nvidia-cuda-nvrtc-cu12` and put its \
         library directory (site-packages/nvidia/cuda_nvrtc/lib) on LD_LIBRARY_PATH"
    )]
    NoNvrtc,
    #[cfg(feature = "cuda")]
    #[error("CUDA: {call} failed: {message}")]
    Driver { call: &'static str, message: String },
    #[cfg(feature = "cuda")]
    #[error("NVRTC: {call} failed: {message}")]
    Nvrtc { call: &'static str, message: String },
    #[cfg(feature = "cuda")]
    #[error("NVRTC could not compile the kernels for sm_{arch}:\n{log}")]
    Compile { arch: u32, log: String },
    #[error("{0}")]
    Unsupported(String),
}

#[cfg(feature = "cuda")]
impl DeviceError {
    pub(crate) fn driver(call: &'static str, error: cudarc::driver::DriverError) -> Self {
        DeviceError::Driver {
            call,
            message: error.to_string(),
        }
    }

    pub(crate) fn nvrtc(call: &'static str, error: cudarc::nvrtc::result::NvrtcError) -> Self {
        DeviceError::Nvrtc {
            call,
            message: format!("{error:?}"),
        }
    }
}
