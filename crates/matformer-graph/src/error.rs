//! The one error type of the graph crate.

use thiserror::Error;

/// Everything that can go wrong describing, loading or slicing a model.
#[derive(Debug, Error)]
pub enum GraphError {
    /// The model config is inconsistent (the message says which field and why).
    #[error("invalid model config: {0}")]
    Config(String),
    /// A submodel spec could not be parsed or does not fit the model.
    #[error("invalid submodel spec `{spec}`: {reason}")]
    Submodel {
        /// The spec as given.
        spec: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A checkpoint is malformed, truncated, or does not match its config.
    #[error("bad checkpoint {path}: {reason}")]
    Checkpoint {
        /// File or directory that was being read.
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A tensor is missing or has the wrong shape.
    #[error("tensor `{name}`: {reason}")]
    Tensor {
        /// Canonical tensor name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Filesystem error with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The path being read or written.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result alias for the graph crate.
pub type Result<T> = std::result::Result<T, GraphError>;

pub(crate) fn config_err(msg: impl Into<String>) -> GraphError {
    GraphError::Config(msg.into())
}

pub(crate) fn tensor_err(name: &str, reason: impl Into<String>) -> GraphError {
    GraphError::Tensor { name: name.to_string(), reason: reason.into() }
}
