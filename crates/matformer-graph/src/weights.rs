//! Typed model weights with neuron-major FFN storage, canonical tensor names, and seeded random init.
//!
//! FFN matrices are stored `[d_ff, d_model]` (`ffn.up`, `ffn.gate`, and `ffn.down_t`, the transposed down
//! projection), so every granularity is a contiguous prefix of rows: a submodel reads exactly its own bytes.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{Family, FfnKind, ModelConfig, NormKind, Position};
use crate::error::{tensor_err, Result};
use crate::tensor::{DType, Tensor};

/// A linear layer in PyTorch layout: weight `[out, in]`, optional bias `[out]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Tensor,
    /// `[out]`.
    pub bias: Option<Tensor>,
}

/// Norm parameters: weight `[d]`, bias `[d]` for LayerNorm only.
#[derive(Clone, Debug, PartialEq)]
pub struct Norm {
    /// Scale.
    pub weight: Tensor,
    /// Shift (LayerNorm).
    pub bias: Option<Tensor>,
}

/// One transformer block.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// Pre-attention norm.
    pub attn_norm: Norm,
    /// Query projection `[n_heads*hd, d]`.
    pub q: Linear,
    /// Key projection `[n_kv_heads*hd, d]`.
    pub k: Linear,
    /// Value projection `[n_kv_heads*hd, d]`.
    pub v: Linear,
    /// Output projection `[d, n_heads*hd]`.
    pub o: Linear,
    /// Pre-FFN norm.
    pub ffn_norm: Norm,
    /// FFN input projection `[d_ff, d]` (+ bias `[d_ff]`), neuron-major.
    pub up: Linear,
    /// SwiGLU gate projection `[d_ff, d]`, neuron-major.
    pub gate: Option<Tensor>,
    /// FFN output projection, transposed to `[d_ff, d]` so neurons are rows.
    pub down_t: Tensor,
    /// FFN output bias `[d]`.
    pub down_bias: Option<Tensor>,
}

/// Input embeddings of either family.
#[derive(Clone, Debug, PartialEq)]
pub enum Embeddings {
    /// Token table `[vocab, d]` and learned positions `[max_seq_len, d]` when the model has them.
    Lm {
        /// Token embedding table.
        tokens: Tensor,
        /// Learned position table.
        positions: Option<Tensor>,
    },
    /// Patch projection `[d, channels*patch*patch]` (+ bias), class token `[d]`, positions `[n_patches+1, d]`.
    Vit {
        /// Patch projection; input patches are flattened channel-major (c, y, x) like a PyTorch conv.
        patch: Linear,
        /// The class token.
        cls: Tensor,
        /// Learned positions, class token first.
        positions: Tensor,
    },
}

/// All weights of a model plus its config.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelWeights {
    /// The config the weights were checked against.
    pub config: ModelConfig,
    /// Input embeddings.
    pub embed: Embeddings,
    /// Transformer blocks.
    pub layers: Vec<Layer>,
    /// Final norm.
    pub final_norm: Norm,
    /// Output head `[n_outputs, d]`; `None` when tied to the token embeddings.
    pub head: Option<Linear>,
}

/// The canonical name and shape of every tensor a config requires, in a stable order.
pub fn tensor_specs(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let d = cfg.d_model;
    let hd = cfg.head_dim();
    let mut s: Vec<(String, Vec<usize>)> = Vec::new();
    let mut push = |name: String, shape: Vec<usize>| s.push((name, shape));
    let norm = |push: &mut dyn FnMut(String, Vec<usize>), p: &str| {
        push(format!("{p}.weight"), vec![d]);
        if cfg.norm == NormKind::LayerNorm {
            push(format!("{p}.bias"), vec![d]);
        }
    };
    match cfg.family {
        Family::Lm { vocab_size, max_seq_len, position, .. } => {
            push("tok_embed.weight".into(), vec![vocab_size, d]);
            if position == Position::Learned {
                push("pos_embed.weight".into(), vec![max_seq_len, d]);
            }
        }
        Family::Vit { patch_size, channels, .. } => {
            push("patch_embed.weight".into(), vec![d, channels * patch_size * patch_size]);
            push("patch_embed.bias".into(), vec![d]);
            push("cls_token".into(), vec![d]);
            push("pos_embed.weight".into(), vec![cfg.vit_n_patches() + 1, d]);
        }
    }
    for l in 0..cfg.n_layers {
        let p = format!("layers.{l}");
        let w = cfg.layer_width(l);
        norm(&mut push, &format!("{p}.attn_norm"));
        for (name, out, inp) in [
            ("q", cfg.n_heads * hd, d),
            ("k", cfg.n_kv_heads * hd, d),
            ("v", cfg.n_kv_heads * hd, d),
            ("o", d, cfg.n_heads * hd),
        ] {
            push(format!("{p}.attn.{name}.weight"), vec![out, inp]);
            if cfg.attn_bias {
                push(format!("{p}.attn.{name}.bias"), vec![out]);
            }
        }
        norm(&mut push, &format!("{p}.ffn_norm"));
        push(format!("{p}.ffn.up.weight"), vec![w, d]);
        if cfg.ffn_bias {
            push(format!("{p}.ffn.up.bias"), vec![w]);
        }
        if cfg.ffn == FfnKind::SwiGlu {
            push(format!("{p}.ffn.gate.weight"), vec![w, d]);
        }
        push(format!("{p}.ffn.down_t.weight"), vec![w, d]);
        if cfg.ffn_bias {
            push(format!("{p}.ffn.down.bias"), vec![d]);
        }
    }
    norm(&mut push, "final_norm");
    let tied = matches!(cfg.family, Family::Lm { tie_embeddings: true, .. });
    if !tied {
        push("head.weight".into(), vec![cfg.n_outputs(), d]);
        if !cfg.is_lm() {
            push("head.bias".into(), vec![cfg.n_outputs()]);
        }
    }
    s
}

impl ModelWeights {
    /// Build typed weights from named tensors, checking that every required tensor is present with the
    /// right shape and that nothing unexpected is left over.
    pub fn from_tensors(config: ModelConfig, mut map: BTreeMap<String, Tensor>) -> Result<Self> {
        config.validate()?;
        for (name, shape) in tensor_specs(&config) {
            let t = map.get(&name).ok_or_else(|| tensor_err(&name, "missing from the checkpoint"))?;
            if t.shape != shape {
                return Err(tensor_err(&name, format!("has shape {:?}, the config needs {:?}", t.shape, shape)));
            }
            if t.numel() != t.data_len() {
                return Err(tensor_err(&name, "data length does not match its shape"));
            }
        }
        let take = |map: &mut BTreeMap<String, Tensor>, name: &str| map.remove(name).expect("checked above");
        let ln = config.norm == NormKind::LayerNorm;
        let embed = match config.family {
            Family::Lm { position, .. } => Embeddings::Lm {
                tokens: take(&mut map, "tok_embed.weight"),
                positions: if position == Position::Learned { map.remove("pos_embed.weight") } else { None },
            },
            Family::Vit { .. } => Embeddings::Vit {
                patch: Linear {
                    weight: take(&mut map, "patch_embed.weight"),
                    bias: Some(take(&mut map, "patch_embed.bias")),
                },
                cls: take(&mut map, "cls_token"),
                positions: take(&mut map, "pos_embed.weight"),
            },
        };
        let mut layers = Vec::with_capacity(config.n_layers);
        for l in 0..config.n_layers {
            let p = format!("layers.{l}");
            let mut norm = |n: &str| Norm {
                weight: map.remove(&format!("{p}.{n}.weight")).expect("checked"),
                bias: if ln { map.remove(&format!("{p}.{n}.bias")) } else { None },
            };
            let attn_norm = norm("attn_norm");
            let ffn_norm = norm("ffn_norm");
            let mut lin = |n: &str, bias: bool| Linear {
                weight: map.remove(&format!("{p}.{n}.weight")).expect("checked"),
                bias: if bias { map.remove(&format!("{p}.{n}.bias")) } else { None },
            };
            let ab = config.attn_bias;
            let (q, k, v, o) = (lin("attn.q", ab), lin("attn.k", ab), lin("attn.v", ab), lin("attn.o", ab));
            let up = lin("ffn.up", config.ffn_bias);
            let gate = if config.ffn == FfnKind::SwiGlu { map.remove(&format!("{p}.ffn.gate.weight")) } else { None };
            let down_t = map.remove(&format!("{p}.ffn.down_t.weight")).expect("checked");
            let down_bias = if config.ffn_bias { map.remove(&format!("{p}.ffn.down.bias")) } else { None };
            layers.push(Layer { attn_norm, q, k, v, o, ffn_norm, up, gate, down_t, down_bias });
        }
        let final_norm = Norm {
            weight: map.remove("final_norm.weight").expect("checked"),
            bias: if ln { map.remove("final_norm.bias") } else { None },
        };
        let head = map.remove("head.weight").map(|weight| Linear { weight, bias: map.remove("head.bias") });
        if let Some(extra) = map.keys().next() {
            return Err(tensor_err(extra, "is not part of this model's config (unexpected tensor)"));
        }
        Ok(ModelWeights { config, embed, layers, final_norm, head })
    }

    /// Every tensor with its canonical name, in [`tensor_specs`] order.
    pub fn named_tensors(&self) -> Vec<(String, &Tensor)> {
        let mut out: Vec<(String, &Tensor)> = Vec::new();
        match &self.embed {
            Embeddings::Lm { tokens, positions } => {
                out.push(("tok_embed.weight".into(), tokens));
                if let Some(p) = positions {
                    out.push(("pos_embed.weight".into(), p));
                }
            }
            Embeddings::Vit { patch, cls, positions } => {
                push_pair(&mut out, "patch_embed", &patch.weight, patch.bias.as_ref());
                out.push(("cls_token".into(), cls));
                out.push(("pos_embed.weight".into(), positions));
            }
        }
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("layers.{i}");
            push_pair(&mut out, &format!("{p}.attn_norm"), &l.attn_norm.weight, l.attn_norm.bias.as_ref());
            for (n, x) in [("q", &l.q), ("k", &l.k), ("v", &l.v), ("o", &l.o)] {
                push_pair(&mut out, &format!("{p}.attn.{n}"), &x.weight, x.bias.as_ref());
            }
            push_pair(&mut out, &format!("{p}.ffn_norm"), &l.ffn_norm.weight, l.ffn_norm.bias.as_ref());
            push_pair(&mut out, &format!("{p}.ffn.up"), &l.up.weight, l.up.bias.as_ref());
            if let Some(g) = &l.gate {
                out.push((format!("{p}.ffn.gate.weight"), g));
            }
            out.push((format!("{p}.ffn.down_t.weight"), &l.down_t));
            if let Some(b) = &l.down_bias {
                out.push((format!("{p}.ffn.down.bias"), b));
            }
        }
        push_pair(&mut out, "final_norm", &self.final_norm.weight, self.final_norm.bias.as_ref());
        if let Some(h) = &self.head {
            push_pair(&mut out, "head", &h.weight, h.bias.as_ref());
        }
        out
    }

    /// Seeded random init: N(0, 0.02) matrices (output projections scaled by 1/sqrt(2·layers), as GPT-2),
    /// unit norm scales, zero biases.
    pub fn random(config: ModelConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let proj_std = 0.02 / (2.0 * config.n_layers as f32).sqrt();
        let mut map = BTreeMap::new();
        for (name, shape) in tensor_specs(&config) {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = if name.ends_with(".bias") {
                vec![0.0; n]
            } else if name.contains("norm") {
                vec![1.0; n]
            } else {
                let std = if name.contains("attn.o.") || name.contains("down_t") { proj_std } else { 0.02 };
                (0..n).map(|_| std * normal(&mut rng)).collect()
            };
            map.insert(name, Tensor::from_f32(shape, data));
        }
        Self::from_tensors(config, map)
    }

    /// A copy with every tensor converted to `dtype`.
    pub fn to_dtype(&self, dtype: DType) -> Self {
        let map = self.named_tensors().into_iter().map(|(n, t)| (n, t.to_dtype(dtype))).collect();
        Self::from_tensors(self.config.clone(), map).expect("same config, same shapes")
    }

    /// Element type of the weights (that of the first FFN matrix).
    pub fn dtype(&self) -> DType {
        self.layers.first().map(|l| l.up.weight.dtype()).unwrap_or(DType::F32)
    }

    /// The output head matrix `[n_outputs, d]`: the head, or the token table when tied.
    pub fn head_weight(&self) -> &Tensor {
        match (&self.head, &self.embed) {
            (Some(h), _) => &h.weight,
            (None, Embeddings::Lm { tokens, .. }) => tokens,
            (None, Embeddings::Vit { .. }) => unreachable!("a ViT always has a head"),
        }
    }

    /// Total stored parameters.
    pub fn n_params(&self) -> usize {
        self.named_tensors().iter().map(|(_, t)| t.numel()).sum()
    }
}

fn push_pair<'a>(out: &mut Vec<(String, &'a Tensor)>, p: &str, weight: &'a Tensor, bias: Option<&'a Tensor>) {
    out.push((format!("{p}.weight"), weight));
    if let Some(b) = bias {
        out.push((format!("{p}.bias"), b));
    }
}

impl Tensor {
    pub(crate) fn data_len(&self) -> usize {
        self.as_ref().len()
    }
}

/// Standard normal sample (Box–Muller), so init depends only on `rand`'s uniform stream.
pub(crate) fn normal(rng: &mut StdRng) -> f32 {
    let u1: f32 = rng.random::<f32>().max(1e-12);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}
