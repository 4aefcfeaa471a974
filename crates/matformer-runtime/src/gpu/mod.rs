//! The GPU executors: a MatLM ([`GpuLm`]) and a MatViT ([`GpuVit`]) on wgpu, built from the kernels of
//! `matformer-kernels`.
//!
//! Both follow the design card (decisions 2-5):
//! - weights are uploaded once, in the dtype they are stored in (f32, f16 or bf16; kernels widen to f32);
//! - activations, the KV cache and every op instance (pipeline + bind group + uniform buffer) are created
//!   once, in the constructor;
//! - a forward step is recorded into ONE command encoder with the submodel's per-layer widths as
//!   record-time uniforms (skipped layers are simply not recorded), and only what the caller needs is
//!   read back (the logits rows asked for, or one `u32` token with [`GpuLm::forward_argmax`] /
//!   [`GpuLm::forward_sample`]).
//!
//! Switching submodel between calls therefore builds no pipeline, uploads no weight and allocates no
//! buffer. Every failure (device lost, out of memory, validation, a shape that does not fit) is a
//! [`RuntimeError::Gpu`], never a panic.
//!
//! Per-kernel GPU timings: [`GpuLm::set_profiling`] makes every step write a timestamp around each
//! dispatch (where the adapter supports timestamps inside compute passes); [`GpuLm::take_profile`]
//! returns the accumulated time per op label (`ffn.up`, `attn.core`, `head`, ...).

mod common;
mod lm;
mod profile;
mod vit;

pub use lm::{generate_on_device, GpuLm, PREFILL_CHUNK};
pub use matformer_kernels::{GpuContext, GpuOptions, KernelError};
pub use profile::{OpTiming, Profile};
pub use vit::{gpu_vit_forward, GpuVit, VIT_GROUP};

use crate::error::RuntimeError;

impl From<KernelError> for RuntimeError {
    fn from(e: KernelError) -> Self {
        RuntimeError::Gpu(e.to_string())
    }
}
