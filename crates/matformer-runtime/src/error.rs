//! Runtime errors: every bad input becomes one of these, never a panic.

use matformer_graph::GraphError;
use thiserror::Error;

/// Everything that can go wrong running a model.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// Config, checkpoint or submodel problem.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A token id is not in the model's vocabulary.
    #[error("token id {id} at position {position} is outside the vocabulary (0..{vocab})")]
    TokenOutOfVocab {
        /// The offending id.
        id: u32,
        /// Its index in the input.
        position: usize,
        /// Vocabulary size.
        vocab: usize,
    },
    /// The prompt plus what is already cached does not fit the context.
    #[error("sequence of {len} tokens exceeds the model's context length of {max}")]
    ContextOverflow {
        /// Tokens requested in total.
        len: usize,
        /// The model's `max_seq_len`.
        max: usize,
    },
    /// Nothing to run on.
    #[error("the prompt is empty: give at least one token")]
    EmptyPrompt,
    /// Input of the wrong size or kind (the message says what was expected).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Tokenizer failed to load or encode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The operation needs the other model family.
    #[error("this operation needs a {expected} model, but the model is a {actual}")]
    WrongFamily {
        /// Family the operation needs.
        expected: &'static str,
        /// Family of the model.
        actual: &'static str,
    },
    /// A GPU error (device lost, out of memory, validation, no adapter).
    #[error("GPU: {0}")]
    Gpu(String),
}

/// Result alias for the runtime.
pub type Result<T> = std::result::Result<T, RuntimeError>;
