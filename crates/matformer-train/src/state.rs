//! Resumable training state: weights, AdamW moments and the step, in one safetensors file written
//! atomically (temporary file, fsync, rename). The data order and every random draw are functions of
//! `(seed, step)` (see [`crate::rng`]), so the step is the whole generator state.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use matformer_graph::checkpoint::{read_safetensors, write_atomic, CONFIG_KEY};
use matformer_graph::{ModelConfig, ModelWeights, Tensor};
use safetensors::tensor::{Dtype, TensorView};

use crate::optim::AdamW;

/// Metadata key of the number of completed steps.
pub const STEP_KEY: &str = "train_step";
/// Metadata key of the training config JSON.
pub const TRAIN_CONFIG_KEY: &str = "train_config";

/// Everything needed to continue a run exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// Completed optimizer steps.
    pub step: usize,
    /// Current weights (f32).
    pub weights: ModelWeights,
    /// AdamW moments.
    pub opt: AdamW,
    /// Training seconds spent so far, over every resume (bookkeeping only).
    pub elapsed_s: f64,
}

/// Save `state` to `path` atomically, with `train_config` (JSON) in the metadata.
pub fn save_state(path: &Path, state: &TrainState, train_config: &str) -> Result<()> {
    let mut named: Vec<(String, &Tensor)> = Vec::new();
    for (prefix, w) in [("w.", &state.weights), ("m.", &state.opt.m), ("v.", &state.opt.v)] {
        named.extend(w.named_tensors().into_iter().map(|(n, t)| (format!("{prefix}{n}"), t)));
    }
    let bytes: Vec<Vec<u8>> = named.iter().map(|(_, t)| t.to_le_bytes()).collect();
    let views: Vec<(String, TensorView<'_>)> = named
        .iter()
        .zip(&bytes)
        .map(|((n, t), b)| (n.clone(), TensorView::new(Dtype::F32, t.shape.clone(), b).expect("f32 training tensors")))
        .collect();
    let mut meta = HashMap::new();
    meta.insert(CONFIG_KEY.to_string(), serde_json::to_string(&state.weights.config)?);
    meta.insert(STEP_KEY.to_string(), state.step.to_string());
    meta.insert("train_elapsed_s".to_string(), format!("{}", state.elapsed_s));
    meta.insert(TRAIN_CONFIG_KEY.to_string(), train_config.to_string());
    meta.insert("rng".to_string(), "counter-based: every draw is keyed by (seed, stream, step)".to_string());
    let data = safetensors::serialize(views, Some(meta))?;
    write_atomic(path, &data).with_context(|| format!("saving training state to {}", path.display()))
}

/// Load a state written by [`save_state`]; returns it with the saved training config JSON.
pub fn load_state(path: &Path) -> Result<(TrainState, String)> {
    let (map, meta) = read_safetensors(path)?;
    let get = |k: &str| meta.get(k).ok_or_else(|| anyhow!("{}: not a training state (no `{k}`)", path.display()));
    let config = ModelConfig::from_json(get(CONFIG_KEY)?)?;
    let step: usize = get(STEP_KEY)?.parse().context("bad step")?;
    let mut parts: [BTreeMap<String, Tensor>; 3] = Default::default();
    for (name, t) in map {
        let (i, rest) = match name.split_at(2) {
            ("w.", r) => (0, r),
            ("m.", r) => (1, r),
            ("v.", r) => (2, r),
            _ => return Err(anyhow!("{}: unexpected tensor `{name}` in training state", path.display())),
        };
        parts[i].insert(rest.to_string(), t);
    }
    let [w, m, v] = parts;
    let build = |p| ModelWeights::from_tensors(config.clone(), p).with_context(|| format!("{}", path.display()));
    let elapsed_s = meta.get("train_elapsed_s").and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let state = TrainState { step, weights: build(w)?, opt: AdamW { m: build(m)?, v: build(v)? }, elapsed_s };
    Ok((state, get(TRAIN_CONFIG_KEY)?.clone()))
}
