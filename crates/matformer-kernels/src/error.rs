//! Error type of the kernel layer.

use thiserror::Error;

/// Everything that can go wrong while creating a device, building a pipeline,
/// recording or running a kernel. GPU-side failures (validation, out of memory,
/// device loss) are captured through error scopes and the uncaptured-error
/// handler of [`crate::GpuContext`] and reported here instead of panicking.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum KernelError {
    /// No native (Vulkan/Metal/DX12) adapter was found.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("failed to create GPU device: {0}")]
    RequestDevice(String),
    /// wgpu or the shader compiler rejected something (a bug in this crate or its caller).
    #[error("GPU validation error: {0}")]
    Validation(String),
    /// The device ran out of memory.
    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),
    /// An internal error of the driver or of wgpu.
    #[error("GPU internal error: {0}")]
    Internal(String),
    /// The device was lost (driver reset, destroyed, ...). The context is unusable.
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// Waiting for the device or mapping a buffer failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// A shape, length or argument does not fit the bound buffers or the kernel.
    #[error("invalid kernel arguments: {0}")]
    Shape(String),
    /// A resource exceeds what the adapter's limits allow.
    #[error("exceeds adapter limits: {0}")]
    Limit(String),
    /// A shader failed to parse or validate in naga (no device involved).
    #[error("shader {name} is invalid: {message}")]
    Shader {
        /// Variant label of the shader.
        name: String,
        /// The naga diagnostic.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, KernelError>;

impl KernelError {
    /// Converts a wgpu error (from an error scope or the uncaptured handler).
    pub fn from_wgpu(e: &wgpu::Error) -> Self {
        match e {
            wgpu::Error::OutOfMemory { .. } => KernelError::OutOfMemory(e.to_string()),
            wgpu::Error::Validation { description, .. } => KernelError::Validation(description.clone()),
            wgpu::Error::Internal { description, .. } => KernelError::Internal(description.clone()),
        }
    }
}

/// Returns `Err(KernelError::Shape)` with the message when `cond` is false.
pub(crate) fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(KernelError::Shape(msg()))
    }
}
