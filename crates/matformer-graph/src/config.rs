//! Model configs for the two MatFormer families (MatLM, MatViT), serializable as JSON.

use serde::{Deserialize, Serialize};

use crate::error::{config_err, Result};

/// Which normalization the blocks use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// LayerNorm with weight and bias (GPT-2, ViT).
    LayerNorm,
    /// RMSNorm with weight only (Llama).
    RmsNorm,
}

/// The FFN's activation and shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FfnKind {
    /// `down(gelu(up x))` with exact erf GELU (ViT).
    Gelu,
    /// `down(gelu_tanh(up x))`, GPT-2's "gelu_new".
    GeluTanh,
    /// `down(silu(gate x) * up x)` (Llama).
    SwiGlu,
}

/// How token positions enter a MatLM.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Position {
    /// A learned table `[max_seq_len, d_model]` added to the token embeddings (GPT-2).
    Learned,
    /// Rotary embeddings on queries and keys (Llama), rotate-half convention.
    Rope {
        /// Base of the rotary frequencies (10000 for Llama 2).
        theta: f32,
    },
}

/// The model family and its family-specific fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Family {
    /// Decoder-only language model with causal attention.
    Lm {
        /// Vocabulary size.
        vocab_size: usize,
        /// Longest sequence (prompt plus generated tokens) the model accepts.
        max_seq_len: usize,
        /// Position encoding.
        position: Position,
        /// The output head reuses the token embedding matrix.
        tie_embeddings: bool,
    },
    /// Vision transformer encoder with a class token and a classification head.
    Vit {
        /// Square input image side in pixels.
        image_size: usize,
        /// Square patch side in pixels.
        patch_size: usize,
        /// Input channels.
        channels: usize,
        /// Number of classes of the head.
        n_classes: usize,
    },
}

/// One named nested FFN width.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granularity {
    /// Short name used in submodel specs (`s`, `m`, `l`, `xl`).
    pub name: String,
    /// Number of leading FFN neurons this granularity uses.
    pub width: usize,
}

/// Full description of a MatFormer model; stored as JSON in checkpoint metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Family-specific fields.
    pub family: Family,
    /// Residual stream width.
    pub d_model: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention when smaller than `n_heads`).
    pub n_kv_heads: usize,
    /// Widest FFN hidden size.
    pub d_ff: usize,
    /// Stored FFN width per layer, when layers differ (an extracted Mix'n'Match model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_d_ff: Option<Vec<usize>>,
    /// Normalization kind.
    pub norm: NormKind,
    /// Normalization epsilon.
    pub norm_eps: f32,
    /// FFN kind.
    pub ffn: FfnKind,
    /// Q/K/V/O projections have biases.
    pub attn_bias: bool,
    /// FFN projections have biases.
    pub ffn_bias: bool,
    /// Nested FFN widths, strictly increasing.
    pub granularities: Vec<Granularity>,
}

/// The paper's default: four exponentially spaced widths d_ff/8 … d_ff named s, m, l, xl.
pub fn default_granularities(d_ff: usize) -> Vec<Granularity> {
    ["s", "m", "l", "xl"]
        .iter()
        .enumerate()
        .map(|(i, name)| Granularity { name: name.to_string(), width: (d_ff >> (3 - i)).max(1) })
        .collect()
}

impl ModelConfig {
    /// A GPT-2 style MatLM: LayerNorm, learned positions, GELU (tanh) FFN with biases, tied embeddings.
    pub fn gpt2_style(
        vocab_size: usize,
        d_model: usize,
        n_layers: usize,
        n_heads: usize,
        d_ff: usize,
        max_seq_len: usize,
    ) -> Self {
        ModelConfig {
            family: Family::Lm { vocab_size, max_seq_len, position: Position::Learned, tie_embeddings: true },
            d_model,
            n_layers,
            n_heads,
            n_kv_heads: n_heads,
            d_ff,
            layer_d_ff: None,
            norm: NormKind::LayerNorm,
            norm_eps: 1e-5,
            ffn: FfnKind::GeluTanh,
            attn_bias: true,
            ffn_bias: true,
            granularities: default_granularities(d_ff),
        }
    }

    /// A Llama style MatLM: RMSNorm, RoPE, SwiGLU FFN, grouped-query attention, untied head.
    #[allow(clippy::too_many_arguments)]
    pub fn llama_style(
        vocab_size: usize,
        d_model: usize,
        n_layers: usize,
        n_heads: usize,
        n_kv_heads: usize,
        d_ff: usize,
        max_seq_len: usize,
    ) -> Self {
        ModelConfig {
            family: Family::Lm {
                vocab_size,
                max_seq_len,
                position: Position::Rope { theta: 10000.0 },
                tie_embeddings: false,
            },
            d_model,
            n_layers,
            n_heads,
            n_kv_heads,
            d_ff,
            layer_d_ff: None,
            norm: NormKind::RmsNorm,
            norm_eps: 1e-5,
            ffn: FfnKind::SwiGlu,
            attn_bias: false,
            ffn_bias: false,
            granularities: default_granularities(d_ff),
        }
    }

    /// A MatViT: patch embedding, class token, learned positions, pre-LN blocks, GELU FFN, classifier.
    #[allow(clippy::too_many_arguments)]
    pub fn vit(
        image_size: usize,
        patch_size: usize,
        channels: usize,
        n_classes: usize,
        d_model: usize,
        n_layers: usize,
        n_heads: usize,
        d_ff: usize,
    ) -> Self {
        ModelConfig {
            family: Family::Vit { image_size, patch_size, channels, n_classes },
            d_model,
            n_layers,
            n_heads,
            n_kv_heads: n_heads,
            d_ff,
            layer_d_ff: None,
            norm: NormKind::LayerNorm,
            norm_eps: 1e-12,
            ffn: FfnKind::Gelu,
            attn_bias: true,
            ffn_bias: true,
            granularities: default_granularities(d_ff),
        }
    }

    /// Parse and validate a config from JSON.
    pub fn from_json(s: &str) -> Result<Self> {
        let cfg: ModelConfig = serde_json::from_str(s).map_err(|e| config_err(format!("JSON: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Serialize to pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serializes")
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Stored FFN width of layer `layer`.
    pub fn layer_width(&self, layer: usize) -> usize {
        match &self.layer_d_ff {
            Some(w) => w[layer],
            None => self.d_ff,
        }
    }

    /// True for the language-model family.
    pub fn is_lm(&self) -> bool {
        matches!(self.family, Family::Lm { .. })
    }

    /// Vocabulary size (LM) or number of classes (ViT): the width of the head's output.
    pub fn n_outputs(&self) -> usize {
        match self.family {
            Family::Lm { vocab_size, .. } => vocab_size,
            Family::Vit { n_classes, .. } => n_classes,
        }
    }

    /// Longest sequence the model accepts (patches + class token for a ViT).
    pub fn max_seq_len(&self) -> usize {
        match self.family {
            Family::Lm { max_seq_len, .. } => max_seq_len,
            Family::Vit { .. } => self.vit_n_patches() + 1,
        }
    }

    /// Number of image patches of a ViT (0 for an LM).
    pub fn vit_n_patches(&self) -> usize {
        match self.family {
            Family::Vit { image_size, patch_size, .. } => (image_size / patch_size).pow(2),
            Family::Lm { .. } => 0,
        }
    }

    /// Look up a granularity by name.
    pub fn granularity(&self, name: &str) -> Option<&Granularity> {
        self.granularities.iter().find(|g| g.name == name)
    }

    /// Check every invariant; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        let nz = |v: usize, what: &str| if v == 0 { Err(config_err(format!("{what} must be > 0"))) } else { Ok(()) };
        nz(self.d_model, "d_model")?;
        nz(self.n_layers, "n_layers")?;
        nz(self.n_heads, "n_heads")?;
        nz(self.n_kv_heads, "n_kv_heads")?;
        nz(self.d_ff, "d_ff")?;
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(config_err(format!("n_heads ({}) must divide d_model ({})", self.n_heads, self.d_model)));
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(config_err(format!("n_kv_heads ({}) must divide n_heads ({})", self.n_kv_heads, self.n_heads)));
        }
        if !(self.norm_eps > 0.0 && self.norm_eps.is_finite()) {
            return Err(config_err(format!("norm_eps must be positive and finite, got {}", self.norm_eps)));
        }
        if let Some(w) = &self.layer_d_ff {
            if w.len() != self.n_layers {
                return Err(config_err(format!(
                    "layer_d_ff has {} entries but n_layers is {}",
                    w.len(),
                    self.n_layers
                )));
            }
            if let Some(i) = w.iter().position(|&x| x == 0 || x > self.d_ff) {
                return Err(config_err(format!("layer_d_ff[{i}] = {} must be in 1..={}", w[i], self.d_ff)));
            }
        }
        match self.family {
            Family::Lm { vocab_size, max_seq_len, position, .. } => {
                nz(vocab_size, "vocab_size")?;
                nz(max_seq_len, "max_seq_len")?;
                if let Position::Rope { theta } = position {
                    if !self.head_dim().is_multiple_of(2) {
                        return Err(config_err(format!("RoPE needs an even head_dim, got {}", self.head_dim())));
                    }
                    if !(theta > 0.0 && theta.is_finite()) {
                        return Err(config_err(format!("rope theta must be positive, got {theta}")));
                    }
                }
            }
            Family::Vit { image_size, patch_size, channels, n_classes } => {
                nz(image_size, "image_size")?;
                nz(patch_size, "patch_size")?;
                nz(channels, "channels")?;
                nz(n_classes, "n_classes")?;
                if !image_size.is_multiple_of(patch_size) {
                    return Err(config_err(format!("patch_size ({patch_size}) must divide image_size ({image_size})")));
                }
                if self.n_kv_heads != self.n_heads {
                    return Err(config_err("a ViT uses plain multi-head attention: n_kv_heads must equal n_heads"));
                }
            }
        }
        if self.granularities.is_empty() {
            return Err(config_err("granularities must list at least one width"));
        }
        let mut prev = 0;
        for (i, g) in self.granularities.iter().enumerate() {
            if g.width == 0 {
                return Err(config_err(format!("granularity `{}` has width 0", g.name)));
            }
            if g.width > self.d_ff {
                return Err(config_err(format!(
                    "granularity `{}` width {} is above d_ff {}",
                    g.name, g.width, self.d_ff
                )));
            }
            if g.width <= prev {
                return Err(config_err(format!(
                    "granularity widths must be strictly increasing: `{}` ({}) follows {}",
                    g.name, g.width, prev
                )));
            }
            if g.name.is_empty()
                || g.name.parse::<usize>().is_ok()
                || !g.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(config_err(format!("granularity name `{}` must be alphanumeric and not a number", g.name)));
            }
            if self.granularities[..i].iter().any(|o| o.name == g.name) || g.name == "full" {
                return Err(config_err(format!("granularity name `{}` is duplicated or reserved", g.name)));
            }
            prev = g.width;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect_err(cfg: &ModelConfig, needle: &str) {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(needle), "error `{e}` should mention `{needle}`");
    }

    #[test]
    fn defaults_are_exponential_and_valid() {
        let c = ModelConfig::llama_style(256, 64, 2, 4, 2, 128, 64);
        c.validate().unwrap();
        let w: Vec<_> = c.granularities.iter().map(|g| g.width).collect();
        assert_eq!(w, vec![16, 32, 64, 128]);
        let back = ModelConfig::from_json(&c.to_json()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn rejects_bad_configs() {
        let base = ModelConfig::gpt2_style(256, 64, 2, 4, 128, 64);
        let mut c = base.clone();
        c.n_heads = 5;
        expect_err(&c, "must divide d_model");
        let mut c = ModelConfig::llama_style(256, 64, 2, 4, 3, 128, 64);
        c.n_kv_heads = 3;
        expect_err(&c, "must divide n_heads");
        let mut c = base.clone();
        c.granularities[1].width = 8;
        expect_err(&c, "strictly increasing");
        let mut c = base.clone();
        c.granularities[0].width = 0;
        expect_err(&c, "width 0");
        let mut c = base.clone();
        c.granularities[3].width = 256;
        expect_err(&c, "above d_ff");
        let mut c = base.clone();
        c.d_model = 0;
        expect_err(&c, "d_model must be > 0");
        let mut c = ModelConfig::vit(30, 4, 3, 10, 64, 2, 4, 128);
        expect_err(&c, "must divide image_size");
        c.family = Family::Vit { image_size: 28, patch_size: 4, channels: 1, n_classes: 10 };
        c.validate().unwrap();
        assert!(ModelConfig::from_json("{").unwrap_err().to_string().contains("JSON"));
    }
}
