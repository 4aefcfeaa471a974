//! Tokenizers: byte-level (the default for our own small models) and Hugging Face `tokenizer.json`.

use std::path::Path;

use crate::error::{Result, RuntimeError};

/// Turns text into token ids and back.
pub enum Tokenizer {
    /// One token per UTF-8 byte (ids 0..256).
    Bytes,
    /// A Hugging Face `tokenizer.json` (BPE, WordPiece, Unigram...).
    Hf(Box<tokenizers::Tokenizer>),
}

impl Tokenizer {
    /// Load a Hugging Face `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        tokenizers::Tokenizer::from_file(path)
            .map(|t| Tokenizer::Hf(Box::new(t)))
            .map_err(|e| RuntimeError::Tokenizer(format!("{}: {e}", path.display())))
    }

    /// Encode text without adding special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Bytes => Ok(text.bytes().map(u32::from).collect()),
            Tokenizer::Hf(t) => {
                t.encode(text, false).map(|e| e.get_ids().to_vec()).map_err(|e| RuntimeError::Tokenizer(e.to_string()))
            }
        }
    }

    /// Decode ids to text; invalid UTF-8 (a partial multi-byte character) is replaced, not an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match self {
            Tokenizer::Bytes => {
                let bytes: Vec<u8> = ids
                    .iter()
                    .map(|&i| u8::try_from(i))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|_| RuntimeError::Tokenizer("byte tokenizer got an id above 255".into()))?;
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            Tokenizer::Hf(t) => t.decode(ids, false).map_err(|e| RuntimeError::Tokenizer(e.to_string())),
        }
    }

    /// Vocabulary size the tokenizer can produce.
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Bytes => 256,
            Tokenizer::Hf(t) => t.get_vocab_size(true),
        }
    }

    /// Short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Tokenizer::Bytes => "byte-level",
            Tokenizer::Hf(_) => "tokenizer.json",
        }
    }
}
