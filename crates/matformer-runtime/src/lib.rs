//! matformer-runtime: where a model runs.
//!
//! Executors (the multithreaded CPU path and the wgpu GPU path in [`gpu`], chosen by [`device`]), sessions
//! with a KV cache, sampling, tokenizers and model loading. A [`Submodel`](matformer_graph::Submodel) is a
//! per-call argument: switching it costs nothing but different widths handed to the kernels.

#![warn(missing_docs)]

mod blocks;
pub mod cpu_lm;
pub mod cpu_vit;
pub mod device;
mod dispatch;
pub mod error;
pub mod executor;
pub mod generate;
pub mod gpu;
pub mod model_io;
pub mod sampling;
pub mod tokenizer;

pub use cpu_lm::CpuLm;
pub use cpu_vit::{vit_forward, VitOutput};
pub use device::{lm_executor, lm_executor_with_fallback, select_device, vit_runner, Device, DeviceKind, VitRunner};
pub use error::{Result, RuntimeError};
pub use executor::{LmExecutor, Logits};
pub use generate::{generate, mean_loss, Generation, StopReason};
pub use gpu::{generate_on_device, gpu_vit_forward, GpuContext, GpuLm, GpuVit};
pub use model_io::{load_model, LoadedModel};
pub use sampling::{Sampler, SamplingParams};
pub use tokenizer::Tokenizer;
pub mod speculative;
pub use speculative::{speculative_generate, SpecGeneration, SpecStats};
pub mod governor;
pub use governor::{generate_governed, Governor, Rung, StepTrace};
pub mod planner;
pub use planner::{plan, profile_latency, LatencyProfile, PlanRow};
pub mod consistency;
pub use consistency::{consistency, Consistency};
