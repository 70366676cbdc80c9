//! Where a network runs, and why it could not be moved there.

/// The processor a network's forward passes run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// The SIMD CPU kernels.
    #[default]
    Cpu,
    /// CUDA device `N` (see `nvidia-smi`), fp32.
    #[cfg(feature = "cuda")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cuda")))]
    Cuda(usize),
    /// CUDA device `N`, the large 1×1 convolutions on TF32 tensor cores (sm_80 and newer).
    #[cfg(feature = "cuda")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cuda")))]
    CudaTf32(usize),
}

/// Why a network could not be moved to a device, or a device operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// Moving to another device reads the checkpoint again, and that failed (the file changed or
    /// went away since it was loaded, or the weights came as bytes, which are not kept); the
    /// reason.
    #[error("could not read the weights again for the new device: {0}")]
    Reload(String),
    /// The CUDA driver library could not be loaded on this machine.
    #[cfg(feature = "cuda")]
    #[error(
        "no CUDA driver found (libcuda.so): install the NVIDIA driver, or run on the CPU \
         (Device::Cpu)"
    )]
    NoDriver,
    /// NVRTC, the runtime compiler the CUDA kernels are built with when a network moves to a GPU,
    /// could not be loaded.
    #[cfg(feature = "cuda")]
    #[error(
        "NVRTC not found (libnvrtc.so.12): `pip install nvidia-cuda-nvrtc-cu12` and put its \
         library directory (site-packages/nvidia/cuda_nvrtc/lib) on LD_LIBRARY_PATH"
    )]
    NoNvrtc,
    /// A CUDA driver API call failed.
    #[cfg(feature = "cuda")]
    #[error("CUDA: {call} failed: {message}")]
    Driver {
        /// The driver API function that failed, such as `cuCtxCreate`.
        call: &'static str,
        /// The driver's description of the error.
        message: String,
    },
    /// An NVRTC call failed (other than a compile error in the kernels, see `Compile`).
    #[cfg(feature = "cuda")]
    #[error("NVRTC: {call} failed: {message}")]
    Nvrtc {
        /// The NVRTC function that failed.
        call: &'static str,
        /// NVRTC's error code, debug-formatted.
        message: String,
    },
    /// NVRTC rejected the generated kernel source for this GPU's architecture.
    #[cfg(feature = "cuda")]
    #[error("NVRTC could not compile the kernels for sm_{arch}:\n{log}")]
    Compile {
        /// The GPU's compute capability as a number: 80 for sm_80.
        arch: u32,
        /// NVRTC's compile log (or why the source could not be handed to NVRTC).
        log: String,
    },
    /// The operation is not available on this device or for this network, for instance a GPU
    /// call on a CPU network, TF32 below sm_80, or kernels too
    /// large for the GPU's shared memory; the message says which.
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
