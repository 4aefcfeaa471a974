//! Import of Hugging Face checkpoint directories (`config.json` + `model.safetensors`, HF tensor names)
//! for the Llama, GPT-2 and ViT architectures. FFN matrices are transposed to neuron-major at load time.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::checkpoint::read_safetensors;
use crate::config::{default_granularities, Family, FfnKind, Granularity, ModelConfig, NormKind, Position};
use crate::error::{GraphError, Result};
use crate::tensor::{DType, Tensor};
use crate::weights::ModelWeights;

fn hf_err(dir: &Path, reason: impl Into<String>) -> GraphError {
    GraphError::Checkpoint { path: dir.display().to_string(), reason: reason.into() }
}

/// The architectures the importer understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HfArch {
    /// `LlamaForCausalLM`.
    Llama,
    /// `GPT2LMHeadModel`.
    Gpt2,
    /// `ViTForImageClassification`.
    Vit,
}

/// True when `dir` looks like a Hugging Face checkpoint directory.
pub fn is_hf_dir(dir: &Path) -> bool {
    dir.join("config.json").is_file() && dir.join("model.safetensors").is_file()
}

/// Import a Hugging Face checkpoint directory as matformer weights (same dtype as the file).
pub fn import_hf_dir(dir: &Path) -> Result<ModelWeights> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path)
        .map_err(|source| GraphError::Io { path: cfg_path.display().to_string(), source })?;
    let hf: Value = serde_json::from_str(&text).map_err(|e| hf_err(&cfg_path, format!("config.json: {e}")))?;
    let (tensors, _) = read_safetensors(&dir.join("model.safetensors"))?;
    import_hf(&hf, tensors).map_err(|e| match e {
        GraphError::Checkpoint { reason, .. } | GraphError::Config(reason) => hf_err(dir, reason),
        other => other,
    })
}

/// Detect the architecture from `config.json`'s `model_type` / `architectures`.
pub fn detect_arch(hf: &Value) -> Result<HfArch> {
    let model_type = hf.get("model_type").and_then(Value::as_str).unwrap_or("");
    match model_type {
        "llama" | "mistral" => Ok(HfArch::Llama),
        "gpt2" => Ok(HfArch::Gpt2),
        "vit" => Ok(HfArch::Vit),
        other => Err(GraphError::Config(format!(
            "unsupported Hugging Face model_type `{other}` (supported: llama, gpt2, vit)"
        ))),
    }
}

/// Build weights from a parsed HF config and its tensors.
pub fn import_hf(hf: &Value, tensors: BTreeMap<String, Tensor>) -> Result<ModelWeights> {
    let arch = detect_arch(hf)?;
    let dtype = tensors.values().next().map(Tensor::dtype).unwrap_or(DType::F32);
    let mut src = Source { tensors };
    let (config, map) = match arch {
        HfArch::Llama => llama(hf, &mut src)?,
        HfArch::Gpt2 => gpt2(hf, &mut src)?,
        HfArch::Vit => vit(hf, &mut src)?,
    };
    let map = map.into_iter().map(|(n, t)| (n, t.to_dtype(dtype))).collect();
    ModelWeights::from_tensors(config, map)
}

struct Source {
    tensors: BTreeMap<String, Tensor>,
}

impl Source {
    /// Take a tensor by any of its accepted names, as an f32 matrix, checking its shape.
    fn take(&mut self, names: &[String], shape: &[usize]) -> Result<Mat> {
        let name = names.iter().find(|n| self.tensors.contains_key(*n)).ok_or_else(|| GraphError::Tensor {
            name: names[0].clone(),
            reason: "missing from model.safetensors".into(),
        })?;
        let t = self.tensors.remove(name).expect("found");
        if t.numel() != shape.iter().product::<usize>() {
            return Err(GraphError::Tensor {
                name: name.clone(),
                reason: format!("has shape {:?}, config.json implies {:?}", t.shape, shape),
            });
        }
        let (rows, cols) = if shape.len() == 1 { (1, shape[0]) } else { (shape[0], shape[1..].iter().product()) };
        Ok(Mat { rows, cols, data: t.to_f32_vec() })
    }
}

/// A row-major f32 matrix used only while rearranging imported tensors.
struct Mat {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Mat {
    fn t(&self) -> Mat {
        let mut data = vec![0.0; self.data.len()];
        for r in 0..self.rows {
            for c in 0..self.cols {
                data[c * self.rows + r] = self.data[r * self.cols + c];
            }
        }
        Mat { rows: self.cols, cols: self.rows, data }
    }
    fn cols(&self, start: usize, end: usize) -> Mat {
        let data =
            (0..self.rows).flat_map(|r| self.data[r * self.cols + start..r * self.cols + end].to_vec()).collect();
        Mat { rows: self.rows, cols: end - start, data }
    }
    fn tensor(self, shape: Vec<usize>) -> Tensor {
        Tensor::from_f32(shape, self.data)
    }
    fn vector(self) -> Tensor {
        let n = self.data.len();
        Tensor::from_f32(vec![n], self.data)
    }
    fn matrix(self) -> Tensor {
        let shape = vec![self.rows, self.cols];
        self.tensor(shape)
    }
}

fn get_usize(hf: &Value, keys: &[&str]) -> Result<usize> {
    keys.iter()
        .find_map(|k| hf.get(*k).and_then(Value::as_u64))
        .map(|v| v as usize)
        .ok_or_else(|| GraphError::Config(format!("config.json lacks `{}`", keys[0])))
}

fn get_f32(hf: &Value, key: &str, default: f32) -> f32 {
    hf.get(key).and_then(Value::as_f64).map(|v| v as f32).unwrap_or(default)
}

/// transformers 4.x writes `rope_theta`; 5.x nests it in `rope_parameters`.
fn rope_theta(hf: &Value) -> f32 {
    let nested = hf.get("rope_parameters").and_then(|p| p.get("rope_theta")).and_then(Value::as_f64);
    nested.map(|v| v as f32).unwrap_or_else(|| get_f32(hf, "rope_theta", 10000.0))
}

fn get_bool(hf: &Value, key: &str, default: bool) -> bool {
    hf.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// Optional `matformer_granularities: [w1, w2, ...]` in config.json, else the paper's default four.
fn granularities(hf: &Value, d_ff: usize) -> Vec<Granularity> {
    match hf.get("matformer_granularities").and_then(Value::as_array) {
        Some(ws) => {
            let names = ["s", "m", "l", "xl", "xxl"];
            ws.iter()
                .filter_map(Value::as_u64)
                .enumerate()
                .map(|(i, w)| Granularity {
                    name: names.get(i).map_or(format!("g{i}"), |s| s.to_string()),
                    width: w as usize,
                })
                .collect()
        }
        None => default_granularities(d_ff),
    }
}

fn names(options: &[&str]) -> Vec<String> {
    options.iter().map(|s| s.to_string()).collect()
}

type Imported = (ModelConfig, BTreeMap<String, Tensor>);

fn llama(hf: &Value, src: &mut Source) -> Result<Imported> {
    let d = get_usize(hf, &["hidden_size"])?;
    let n_layers = get_usize(hf, &["num_hidden_layers"])?;
    let n_heads = get_usize(hf, &["num_attention_heads"])?;
    let n_kv = get_usize(hf, &["num_key_value_heads"]).unwrap_or(n_heads);
    let d_ff = get_usize(hf, &["intermediate_size"])?;
    let vocab = get_usize(hf, &["vocab_size"])?;
    let max_seq = get_usize(hf, &["max_position_embeddings"])?;
    if let Some(act) = hf.get("hidden_act").and_then(Value::as_str) {
        if act != "silu" {
            return Err(GraphError::Config(format!("Llama import supports hidden_act `silu`, got `{act}`")));
        }
    }
    if let Some(hd) = hf.get("head_dim").and_then(Value::as_u64) {
        if hd as usize * n_heads != d {
            return Err(GraphError::Config(format!(
                "head_dim {hd} x {n_heads} heads != hidden_size {d} is not supported"
            )));
        }
    }
    let tie = get_bool(hf, "tie_word_embeddings", false);
    let attn_bias = get_bool(hf, "attention_bias", false);
    let ffn_bias = get_bool(hf, "mlp_bias", false);
    let config = ModelConfig {
        family: Family::Lm {
            vocab_size: vocab,
            max_seq_len: max_seq,
            position: Position::Rope { theta: rope_theta(hf) },
            tie_embeddings: tie,
        },
        d_model: d,
        n_layers,
        n_heads,
        n_kv_heads: n_kv,
        d_ff,
        layer_d_ff: None,
        norm: NormKind::RmsNorm,
        norm_eps: get_f32(hf, "rms_norm_eps", 1e-6),
        ffn: FfnKind::SwiGlu,
        attn_bias,
        ffn_bias,
        granularities: granularities(hf, d_ff),
    };
    config.validate()?;
    let hd = d / n_heads;
    let mut m = BTreeMap::new();
    m.insert("tok_embed.weight".into(), src.take(&names(&["model.embed_tokens.weight"]), &[vocab, d])?.matrix());
    for l in 0..n_layers {
        let p = format!("model.layers.{l}");
        let o = format!("layers.{l}");
        let put = |m: &mut BTreeMap<String, Tensor>, src: &mut Source, from: String, to: String, shape: &[usize]| {
            let mat = src.take(&[from], shape)?;
            m.insert(to, if shape.len() == 1 { mat.vector() } else { mat.matrix() });
            Ok::<(), GraphError>(())
        };
        put(&mut m, src, format!("{p}.input_layernorm.weight"), format!("{o}.attn_norm.weight"), &[d])?;
        put(&mut m, src, format!("{p}.post_attention_layernorm.weight"), format!("{o}.ffn_norm.weight"), &[d])?;
        for (hfn, ours, out, inp) in [
            ("q_proj", "q", n_heads * hd, d),
            ("k_proj", "k", n_kv * hd, d),
            ("v_proj", "v", n_kv * hd, d),
            ("o_proj", "o", d, n_heads * hd),
        ] {
            put(&mut m, src, format!("{p}.self_attn.{hfn}.weight"), format!("{o}.attn.{ours}.weight"), &[out, inp])?;
            if attn_bias {
                put(&mut m, src, format!("{p}.self_attn.{hfn}.bias"), format!("{o}.attn.{ours}.bias"), &[out])?;
            }
        }
        put(&mut m, src, format!("{p}.mlp.gate_proj.weight"), format!("{o}.ffn.gate.weight"), &[d_ff, d])?;
        put(&mut m, src, format!("{p}.mlp.up_proj.weight"), format!("{o}.ffn.up.weight"), &[d_ff, d])?;
        // down_proj is [d, d_ff]; neuron-major storage wants its transpose.
        let down = src.take(&[format!("{p}.mlp.down_proj.weight")], &[d, d_ff])?;
        m.insert(format!("{o}.ffn.down_t.weight"), down.t().matrix());
        if ffn_bias {
            put(&mut m, src, format!("{p}.mlp.up_proj.bias"), format!("{o}.ffn.up.bias"), &[d_ff])?;
            put(&mut m, src, format!("{p}.mlp.down_proj.bias"), format!("{o}.ffn.down.bias"), &[d])?;
            // A gate bias has no slot in our SwiGLU; refuse rather than silently drop it.
            if src.tensors.contains_key(&format!("{p}.mlp.gate_proj.bias")) {
                return Err(GraphError::Config("Llama gate_proj bias is not supported".into()));
            }
        }
    }
    m.insert("final_norm.weight".into(), src.take(&names(&["model.norm.weight"]), &[d])?.vector());
    if !tie {
        m.insert("head.weight".into(), src.take(&names(&["lm_head.weight"]), &[vocab, d])?.matrix());
    }
    Ok((config, m))
}

fn gpt2(hf: &Value, src: &mut Source) -> Result<Imported> {
    let d = get_usize(hf, &["n_embd", "hidden_size"])?;
    let n_layers = get_usize(hf, &["n_layer", "num_hidden_layers"])?;
    let n_heads = get_usize(hf, &["n_head", "num_attention_heads"])?;
    let d_ff = get_usize(hf, &["n_inner"]).unwrap_or(4 * d);
    let vocab = get_usize(hf, &["vocab_size"])?;
    let max_seq = get_usize(hf, &["n_positions", "max_position_embeddings"])?;
    let ffn = match hf.get("activation_function").and_then(Value::as_str).unwrap_or("gelu_new") {
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => FfnKind::GeluTanh,
        "gelu" => FfnKind::Gelu,
        other => return Err(GraphError::Config(format!("GPT-2 import: unsupported activation `{other}`"))),
    };
    let tie = get_bool(hf, "tie_word_embeddings", true);
    let config = ModelConfig {
        family: Family::Lm {
            vocab_size: vocab,
            max_seq_len: max_seq,
            position: Position::Learned,
            tie_embeddings: tie,
        },
        d_model: d,
        n_layers,
        n_heads,
        n_kv_heads: n_heads,
        d_ff,
        layer_d_ff: None,
        norm: NormKind::LayerNorm,
        norm_eps: get_f32(hf, "layer_norm_epsilon", 1e-5),
        ffn,
        attn_bias: true,
        ffn_bias: true,
        granularities: granularities(hf, d_ff),
    };
    config.validate()?;
    let pre = |n: &str| names(&[&format!("transformer.{n}"), n]);
    let mut m = BTreeMap::new();
    m.insert("tok_embed.weight".into(), src.take(&pre("wte.weight"), &[vocab, d])?.matrix());
    m.insert("pos_embed.weight".into(), src.take(&pre("wpe.weight"), &[max_seq, d])?.matrix());
    for l in 0..n_layers {
        let h = |n: &str| pre(&format!("h.{l}.{n}"));
        let o = format!("layers.{l}");
        for (hfn, ours) in [("ln_1", "attn_norm"), ("ln_2", "ffn_norm")] {
            m.insert(format!("{o}.{ours}.weight"), src.take(&h(&format!("{hfn}.weight")), &[d])?.vector());
            m.insert(format!("{o}.{ours}.bias"), src.take(&h(&format!("{hfn}.bias")), &[d])?.vector());
        }
        // Conv1D stores [in, out]: split c_attn's columns into q, k, v and transpose to [out, in].
        let qkv = src.take(&h("attn.c_attn.weight"), &[d, 3 * d])?;
        let qkv_b = src.take(&h("attn.c_attn.bias"), &[3 * d])?;
        for (i, name) in ["q", "k", "v"].iter().enumerate() {
            m.insert(format!("{o}.attn.{name}.weight"), qkv.cols(i * d, (i + 1) * d).t().matrix());
            m.insert(format!("{o}.attn.{name}.bias"), qkv_b.cols(i * d, (i + 1) * d).vector());
        }
        m.insert(format!("{o}.attn.o.weight"), src.take(&h("attn.c_proj.weight"), &[d, d])?.t().matrix());
        m.insert(format!("{o}.attn.o.bias"), src.take(&h("attn.c_proj.bias"), &[d])?.vector());
        m.insert(format!("{o}.ffn.up.weight"), src.take(&h("mlp.c_fc.weight"), &[d, d_ff])?.t().matrix());
        m.insert(format!("{o}.ffn.up.bias"), src.take(&h("mlp.c_fc.bias"), &[d_ff])?.vector());
        // c_proj is Conv1D [d_ff, d]: already neuron-major.
        m.insert(format!("{o}.ffn.down_t.weight"), src.take(&h("mlp.c_proj.weight"), &[d_ff, d])?.matrix());
        m.insert(format!("{o}.ffn.down.bias"), src.take(&h("mlp.c_proj.bias"), &[d])?.vector());
    }
    m.insert("final_norm.weight".into(), src.take(&pre("ln_f.weight"), &[d])?.vector());
    m.insert("final_norm.bias".into(), src.take(&pre("ln_f.bias"), &[d])?.vector());
    if !tie {
        m.insert("head.weight".into(), src.take(&names(&["lm_head.weight"]), &[vocab, d])?.matrix());
    }
    Ok((config, m))
}

fn vit(hf: &Value, src: &mut Source) -> Result<Imported> {
    let d = get_usize(hf, &["hidden_size"])?;
    let n_layers = get_usize(hf, &["num_hidden_layers"])?;
    let n_heads = get_usize(hf, &["num_attention_heads"])?;
    let d_ff = get_usize(hf, &["intermediate_size"])?;
    let image = get_usize(hf, &["image_size"])?;
    let patch = get_usize(hf, &["patch_size"])?;
    let channels = get_usize(hf, &["num_channels"]).unwrap_or(3);
    let n_classes = match hf.get("id2label").and_then(Value::as_object) {
        Some(m) => m.len(),
        None => get_usize(hf, &["num_labels"])?,
    };
    let ffn = match hf.get("hidden_act").and_then(Value::as_str).unwrap_or("gelu") {
        "gelu" => FfnKind::Gelu,
        "gelu_new" | "gelu_pytorch_tanh" => FfnKind::GeluTanh,
        other => return Err(GraphError::Config(format!("ViT import: unsupported hidden_act `{other}`"))),
    };
    let qkv_bias = get_bool(hf, "qkv_bias", true);
    if !qkv_bias {
        return Err(GraphError::Config("ViT import needs qkv_bias = true".into()));
    }
    let config = ModelConfig {
        family: Family::Vit { image_size: image, patch_size: patch, channels, n_classes },
        d_model: d,
        n_layers,
        n_heads,
        n_kv_heads: n_heads,
        d_ff,
        layer_d_ff: None,
        norm: NormKind::LayerNorm,
        norm_eps: get_f32(hf, "layer_norm_eps", 1e-12),
        ffn,
        attn_bias: true,
        ffn_bias: true,
        granularities: granularities(hf, d_ff),
    };
    config.validate()?;
    let seq = config.vit_n_patches() + 1;
    let pdim = channels * patch * patch;
    let e = "vit.embeddings";
    let mut m = BTreeMap::new();
    m.insert("cls_token".into(), src.take(&[format!("{e}.cls_token")], &[d])?.vector());
    m.insert("pos_embed.weight".into(), src.take(&[format!("{e}.position_embeddings")], &[seq, d])?.matrix());
    m.insert(
        "patch_embed.weight".into(),
        src.take(&[format!("{e}.patch_embeddings.projection.weight")], &[d, pdim])?.matrix(),
    );
    m.insert("patch_embed.bias".into(), src.take(&[format!("{e}.patch_embeddings.projection.bias")], &[d])?.vector());
    for l in 0..n_layers {
        let p = format!("vit.encoder.layer.{l}");
        let o = format!("layers.{l}");
        let mut lin = |src: &mut Source, from: &str, to: &str, out: usize, inp: usize, transpose: bool| -> Result<()> {
            let w = src.take(&[format!("{p}.{from}.weight")], &[out, inp])?;
            m.insert(format!("{o}.{to}.weight"), if transpose { w.t().matrix() } else { w.matrix() });
            let bias_to = if to == "ffn.down_t" { "ffn.down".to_string() } else { to.to_string() };
            m.insert(format!("{o}.{bias_to}.bias"), src.take(&[format!("{p}.{from}.bias")], &[out])?.vector());
            Ok(())
        };
        lin(src, "layernorm_before", "attn_norm", d, 1, false)?;
        lin(src, "layernorm_after", "ffn_norm", d, 1, false)?;
        lin(src, "attention.attention.query", "attn.q", d, d, false)?;
        lin(src, "attention.attention.key", "attn.k", d, d, false)?;
        lin(src, "attention.attention.value", "attn.v", d, d, false)?;
        lin(src, "attention.output.dense", "attn.o", d, d, false)?;
        lin(src, "intermediate.dense", "ffn.up", d_ff, d, false)?;
        // output.dense is [d, d_ff]; transpose to neuron-major [d_ff, d].
        lin(src, "output.dense", "ffn.down_t", d, d_ff, true)?;
    }
    for (k, v) in m.iter_mut() {
        if k.ends_with("norm.weight") || (k.contains("norm") && k.ends_with(".bias")) {
            let data = v.to_f32_vec();
            *v = Tensor::from_f32(vec![data.len()], data);
        }
    }
    m.insert("final_norm.weight".into(), src.take(&names(&["vit.layernorm.weight"]), &[d])?.vector());
    m.insert("final_norm.bias".into(), src.take(&names(&["vit.layernorm.bias"]), &[d])?.vector());
    m.insert("head.weight".into(), src.take(&names(&["classifier.weight"]), &[n_classes, d])?.matrix());
    m.insert("head.bias".into(), src.take(&names(&["classifier.bias"]), &[n_classes])?.vector());
    Ok((config, m))
}
