//! safetensors load and save (f32, f16, bf16) with the model config in the file's metadata.
//!
//! Saving is atomic: the file is written to a temporary sibling, synced, then renamed over the target,
//! so a crash or a full disk never leaves a half-written checkpoint in place of a good one.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use half::{bf16, f16};
use safetensors::tensor::{Dtype as StDtype, TensorView};
use safetensors::SafeTensors;

use crate::config::ModelConfig;
use crate::error::{GraphError, Result};
use crate::tensor::{Tensor, TensorData};
use crate::weights::ModelWeights;

/// Metadata key holding the model config JSON.
pub const CONFIG_KEY: &str = "matformer_config";
/// Metadata key holding the checkpoint format version.
pub const FORMAT_KEY: &str = "matformer_format";
/// Current checkpoint format version.
pub const FORMAT_VERSION: &str = "1";

fn ckpt_err(path: &Path, reason: impl Into<String>) -> GraphError {
    GraphError::Checkpoint { path: path.display().to_string(), reason: reason.into() }
}

/// Named tensors plus the file's string metadata.
pub type TensorsAndMeta = (BTreeMap<String, Tensor>, HashMap<String, String>);

/// Read every tensor of a safetensors file (any supported float dtype) plus its metadata.
pub fn read_safetensors(path: &Path) -> Result<TensorsAndMeta> {
    let bytes = std::fs::read(path).map_err(|source| GraphError::Io { path: path.display().to_string(), source })?;
    parse_safetensors(&bytes).map_err(|reason| ckpt_err(path, reason))
}

/// Parse safetensors bytes; errors are plain reasons (the caller adds the path).
pub fn parse_safetensors(bytes: &[u8]) -> std::result::Result<TensorsAndMeta, String> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a valid safetensors file: {e}"))?;
    let mut map = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let raw = view.data();
        let data = match view.dtype() {
            StDtype::F32 => {
                TensorData::F32(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            StDtype::F16 => TensorData::F16(raw.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]])).collect()),
            StDtype::BF16 => TensorData::Bf16(raw.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]])).collect()),
            other => return Err(format!("tensor `{name}` has dtype {other:?}; only F32, F16 and BF16 are supported")),
        };
        let t = Tensor { shape, data };
        if t.numel() != t.as_ref().len() {
            return Err(format!("tensor `{name}` data does not match its shape"));
        }
        map.insert(name, t);
    }
    Ok((map, meta.metadata().clone().unwrap_or_default()))
}

/// Load a matformer checkpoint (config in metadata) and check every tensor against the config.
pub fn load(path: &Path) -> Result<ModelWeights> {
    let (map, meta) = read_safetensors(path)?;
    let cfg_json = meta.get(CONFIG_KEY).ok_or_else(|| {
        ckpt_err(
            path,
            format!(
                "metadata has no `{CONFIG_KEY}`; is this a matformer checkpoint? (HF directories: use the importer)"
            ),
        )
    })?;
    let config = ModelConfig::from_json(cfg_json).map_err(|e| ckpt_err(path, e.to_string()))?;
    ModelWeights::from_tensors(config, map).map_err(|e| ckpt_err(path, e.to_string()))
}

/// Serialize weights to safetensors bytes with the config and any extra metadata.
pub fn to_bytes(weights: &ModelWeights, extra_meta: &BTreeMap<String, String>) -> Vec<u8> {
    let named = weights.named_tensors();
    let bytes: Vec<Vec<u8>> = named.iter().map(|(_, t)| t.to_le_bytes()).collect();
    let views: Vec<(String, TensorView<'_>)> = named
        .iter()
        .zip(&bytes)
        .map(|((n, t), b)| {
            let dt = match t.dtype() {
                crate::tensor::DType::F32 => StDtype::F32,
                crate::tensor::DType::F16 => StDtype::F16,
                crate::tensor::DType::Bf16 => StDtype::BF16,
            };
            (n.clone(), TensorView::new(dt, t.shape.clone(), b).expect("shape matches data"))
        })
        .collect();
    let mut meta: HashMap<String, String> = extra_meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    meta.insert(CONFIG_KEY.into(), serde_json::to_string(&weights.config).expect("config serializes"));
    meta.insert(FORMAT_KEY.into(), FORMAT_VERSION.into());
    safetensors::serialize(views, Some(meta)).expect("valid views serialize")
}

/// Save weights atomically to `path` (write temp, fsync, rename).
pub fn save(weights: &ModelWeights, path: &Path) -> Result<()> {
    save_with_meta(weights, path, &BTreeMap::new())
}

/// Save with extra metadata entries (e.g. training state).
pub fn save_with_meta(weights: &ModelWeights, path: &Path, extra_meta: &BTreeMap<String, String>) -> Result<()> {
    write_atomic(path, &to_bytes(weights, extra_meta))
}

/// Write bytes to `path` atomically: on any error the previous file (if any) is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| GraphError::Io { path: path.display().to_string(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}
