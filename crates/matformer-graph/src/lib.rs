//! matformer-graph: what to compute, never how.
//!
//! Model configs for MatLM and MatViT, submodel specs (per-layer FFN widths + skipped layers), typed
//! weights with neuron-major FFN storage, safetensors checkpoints, Hugging Face import and extraction.

#![warn(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod extract;
pub mod hf_import;
pub mod mixnmatch;
pub mod submodel;
pub mod tensor;
pub mod weights;

pub use config::{default_granularities, Family, FfnKind, Granularity, ModelConfig, NormKind, Position};
pub use error::{GraphError, Result};
pub use submodel::Submodel;
pub use tensor::{DType, Tensor, TensorData, TensorRef};
pub use weights::{tensor_specs, Embeddings, Layer, Linear, ModelWeights, Norm};
