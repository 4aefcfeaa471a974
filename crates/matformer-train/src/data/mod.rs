//! Training and evaluation data.

pub mod idx;
