//! matformer-train
