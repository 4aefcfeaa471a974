//! matformer-runtime: where a model runs.
//!
//! Executors (the multithreaded CPU path today), sessions with a KV cache, sampling, tokenizers and
//! model loading. A [`Submodel`](matformer_graph::Submodel) is a per-call argument: switching it costs
//! nothing but different widths handed to the kernels.

mod blocks;
pub mod cpu_lm;
pub mod cpu_vit;
mod dispatch;
pub mod error;
pub mod executor;
pub mod generate;
pub mod model_io;
pub mod sampling;
pub mod tokenizer;

pub use cpu_lm::CpuLm;
pub use cpu_vit::{vit_forward, VitOutput};
pub use error::{Result, RuntimeError};
pub use executor::{LmExecutor, Logits};
pub use generate::{generate, mean_loss, Generation, StopReason};
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
