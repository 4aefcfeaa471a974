//! Training and evaluation data: byte-level Shakespeare, Fashion-MNIST (IDX), and the seeded batch
//! samplers that turn them into [`crate::model::Batch`]es.

pub mod idx;
pub mod images;
pub mod text;
