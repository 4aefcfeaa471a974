//! matformer-train: joint nested MatFormer training on the CPU.
//!
//! - [`model`]: forward (keeping activations) and backward of MatLM (GPT-2 and Llama style) and MatViT,
//!   for any submodel, on `matformer_cpu`'s `fast` forward kernels and hand-written `backward` ops;
//! - [`optim`]: AdamW, warmup + cosine schedule, global-norm clipping;
//! - [`data`]: byte-level Shakespeare and Fashion-MNIST with seeded, counter-based data order;
//! - [`state`]: atomic, resumable checkpoints (a resumed run is bit-identical to an uninterrupted one);
//! - [`train()`]: the loop (joint, sampled or baseline objective), CSV logs, PNG plots, progress bar;
//! - [`report`]: the paper-style comparison with independently trained baselines (`cargo xtask report`).

#![warn(missing_docs)]

pub mod config;
pub mod data;
pub mod log;
pub mod model;
pub mod optim;
pub mod report;
pub mod rng;
pub mod state;
pub mod train;

pub use config::{Objective, Task, TrainConfig};
pub use train::{
    bench, eval_batches, evaluate, evaluate_with, granularity_submodels, plot_run, train, BenchResult, GranEval,
    StepLog, TrainSummary,
};
