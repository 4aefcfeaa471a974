//! matformer-kernels: the WGSL kernel catalogue of MatFormer.
//!
//! One kernel = one `shaders/<op>.wgsl` template + one module in [`ops`] with
//! its uniform struct, binding numbers, dispatch math and a bound op type that
//! records itself into a `wgpu::ComputePass`. [`GpuContext`] owns the device
//! (native backends only), a pipeline cache keyed by [`ShaderVariant`], a
//! buffer pool and upload/readback helpers; every failure is a [`KernelError`].
//!
//! Shapes, positions and the active FFN width are uniforms: switching submodel
//! never builds a pipeline, uploads weights or allocates. FFN kernels only read
//! the active prefix of the neuron-major `[d_ff, d_model]` weights.
//!
//! Weights may be f32, f16 or bf16 ([`WeightType`]); kernels widen them to f32
//! and accumulate in f32. f16 uses `shader-f16` where available, otherwise a
//! packed-u32 path ([`WeightLoad`]). Matrices larger than the adapter's
//! `max_storage_buffer_binding_size` are split by rows over up to
//! [`MAX_WEIGHT_CHUNKS`] bindings ([`WeightBuffer`]).

#![warn(missing_docs)]

mod context;
mod dispatch;
mod error;
mod kernel;
pub mod ops;
mod pipeline;
mod pool;
mod template;
mod transfer;
mod variant;
mod weight;

pub use context::{GpuContext, GpuOptions, NATIVE_BACKENDS};
pub use dispatch::{elementwise, fold, to_u32};
pub use error::{KernelError, Result};
pub use kernel::BufSlice;
pub use pipeline::Pipeline;
pub use transfer::STORAGE_USAGE;
pub use variant::{all_variants, BindingKind, OpKind, ShaderVariant, FLAG_BETA, FLAG_BIAS, MAX_WEIGHT_CHUNKS};
pub use weight::{plan_weight_split, GpuWeight, WeightBuffer, WeightLoad, WeightSplit, WeightType};

pub use ops::add::AddOp;
pub use ops::argmax::ArgmaxOp;
pub use ops::attention::{AttentionArgs, AttentionMask, AttentionOp};
pub use ops::bias_add::BiasAddOp;
pub use ops::embedding::{EmbeddingArgs, EmbeddingOp};
pub use ops::gelu::{GeluMode, GeluOp};
pub use ops::kv_write::KvWriteOp;
pub use ops::layernorm::{LayerNormOp, NormArgs};
pub use ops::linear::{MatmulBindings, MatmulPath, MatmulShape, MATVEC_MAX_N};
pub use ops::matmul_nn::MatmulNnOp;
pub use ops::matmul_nt::MatmulNtOp;
pub use ops::rmsnorm::RmsNormOp;
pub use ops::rope::{RopeArgs, RopeOp};
pub use ops::sample::{SampleArgs, SampleOp};
pub use ops::silu_mul::{GateAct, SiluMulOp};
pub use ops::softmax::SoftmaxOp;

/// Re-export of the wgpu version the kernels are built against.
pub use wgpu;
