//! matformer: MatFormer nested transformers for elastic inference.
//!
//! One set of weights holds several nested models; pick a submodel per device or per request.
pub use matformer_cpu as cpu;
pub use matformer_graph as graph;
pub use matformer_runtime as runtime;
