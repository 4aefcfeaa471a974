//! matformer-train: joint nested MatFormer training on the CPU, data loading and checkpoints.

pub mod data;
pub mod model;
pub mod ops;
