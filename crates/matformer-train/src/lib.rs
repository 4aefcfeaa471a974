//! matformer-train: joint nested MatFormer training on the CPU, data loading and checkpoints.

pub mod data;
