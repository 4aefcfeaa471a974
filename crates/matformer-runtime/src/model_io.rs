//! Loading a model from a path: a matformer `.safetensors` file, a directory holding one
//! (`model.safetensors` with matformer metadata), or a Hugging Face checkpoint directory.

use std::path::{Path, PathBuf};

use matformer_graph::checkpoint::{self, CONFIG_KEY};
use matformer_graph::hf_import::import_hf_dir;
use matformer_graph::{GraphError, ModelWeights};

use crate::error::{Result, RuntimeError};
use crate::tokenizer::Tokenizer;

/// A model and the tokenizer that goes with it.
pub struct LoadedModel {
    /// The weights and config.
    pub weights: ModelWeights,
    /// The tokenizer (byte-level unless the directory has a `tokenizer.json`).
    pub tokenizer: Tokenizer,
    /// Where it came from.
    pub path: PathBuf,
}

/// Load a model from a file or directory (see the module docs), with its tokenizer.
pub fn load_model(path: &Path) -> Result<LoadedModel> {
    let not_found = || {
        RuntimeError::Graph(GraphError::Checkpoint {
            path: path.display().to_string(),
            reason: "no such file or directory".into(),
        })
    };
    let meta = std::fs::metadata(path).map_err(|_| not_found())?;
    let (weights, dir) = if meta.is_dir() {
        let file = path.join("model.safetensors");
        if !file.is_file() {
            return Err(RuntimeError::Graph(GraphError::Checkpoint {
                path: path.display().to_string(),
                reason: "directory has no model.safetensors".into(),
            }));
        }
        let (_, meta) = checkpoint::read_safetensors(&file)?;
        let w = if meta.contains_key(CONFIG_KEY) { checkpoint::load(&file)? } else { import_hf_dir(path)? };
        (w, path.to_path_buf())
    } else {
        (checkpoint::load(path)?, path.parent().map(Path::to_path_buf).unwrap_or_default())
    };
    let tok_file = if meta.is_dir() { dir.join("tokenizer.json") } else { path.with_extension("tokenizer.json") };
    let tokenizer = if tok_file.is_file() { Tokenizer::from_file(&tok_file)? } else { Tokenizer::Bytes };
    if weights.config.is_lm() && tokenizer.vocab_size() > weights.config.n_outputs() {
        return Err(RuntimeError::Tokenizer(format!(
            "tokenizer has {} ids but the model's vocabulary is {}",
            tokenizer.vocab_size(),
            weights.config.n_outputs()
        )));
    }
    Ok(LoadedModel { weights, tokenizer, path: path.to_path_buf() })
}
