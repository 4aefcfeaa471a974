//! Submodel specs: a per-layer active FFN width plus an optional set of skipped layers.
//!
//! One string syntax is accepted everywhere (CLI and API):
//!
//! | spec                 | meaning                                                  |
//! |----------------------|----------------------------------------------------------|
//! | `xl`, `s`, `full`    | one named granularity for every layer (`full` = stored)  |
//! | `s,m,l,xl`           | Mix'n'Match: one granularity name per layer              |
//! | `96,128,512,512`     | one explicit width per layer (names and numbers can mix) |
//! | `s,-,l,xl`           | `-` skips that layer                                     |
//! | `m;skip=1,3`         | any of the above, plus layers to skip                    |

use std::fmt;

use crate::config::{Family, FfnKind, ModelConfig, NormKind, Position};
use crate::error::{GraphError, Result};

/// Per-layer active FFN widths and skipped layers. Data, not code: switching a submodel changes numbers only.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Submodel {
    /// Active FFN width of each layer (ignored for skipped layers).
    pub widths: Vec<usize>,
    /// `skip[i]` drops layer i entirely (its residual branch is not computed).
    pub skip: Vec<bool>,
}

impl Submodel {
    /// Every layer at its full stored width.
    pub fn full(cfg: &ModelConfig) -> Self {
        Submodel { widths: (0..cfg.n_layers).map(|l| cfg.layer_width(l)).collect(), skip: vec![false; cfg.n_layers] }
    }

    /// A named granularity on every layer (clamped to each layer's stored width).
    pub fn named(cfg: &ModelConfig, name: &str) -> Result<Self> {
        Self::parse(cfg, name)
    }

    /// Parse the spec syntax described in the module docs and check it against `cfg`.
    pub fn parse(cfg: &ModelConfig, spec: &str) -> Result<Self> {
        let err = |reason: String| GraphError::Submodel { spec: spec.to_string(), reason };
        let (body, skip_part) = match spec.split_once(';') {
            Some((b, s)) => (b.trim(), Some(s.trim())),
            None => (spec.trim(), None),
        };
        if body.is_empty() {
            return Err(err("empty spec; use a granularity name like `xl`, or a per-layer list".into()));
        }
        let n = cfg.n_layers;
        let items: Vec<&str> = body.split(',').map(str::trim).collect();
        if items.len() != 1 && items.len() != n {
            return Err(err(format!("lists {} layers but the model has {n}", items.len())));
        }
        let mut sub = Submodel { widths: vec![0; n], skip: vec![false; n] };
        for layer in 0..n {
            let item = if items.len() == 1 { items[0] } else { items[layer] };
            let stored = cfg.layer_width(layer);
            if item == "-" {
                sub.skip[layer] = true;
                sub.widths[layer] = stored;
            } else if item == "full" {
                sub.widths[layer] = stored;
            } else if let Ok(w) = item.parse::<usize>() {
                sub.widths[layer] = w;
            } else if let Some(g) = cfg.granularity(item) {
                sub.widths[layer] = g.width.min(stored);
            } else {
                let names: Vec<_> = cfg.granularities.iter().map(|g| g.name.as_str()).collect();
                return Err(err(format!(
                    "unknown granularity `{item}` (this model has: {}, full, or a number)",
                    names.join(", ")
                )));
            }
        }
        if let Some(s) = skip_part {
            let list =
                s.strip_prefix("skip=").ok_or_else(|| err(format!("expected `skip=<layers>` after `;`, got `{s}`")))?;
            for tok in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let l: usize = tok.parse().map_err(|_| err(format!("skip entry `{tok}` is not a layer index")))?;
                if l >= n {
                    return Err(err(format!("cannot skip layer {l}: the model has layers 0..{}", n - 1)));
                }
                sub.skip[l] = true;
            }
        }
        for l in 0..n {
            if sub.skip[l] {
                // A skipped layer's width is meaningless; normalize it so equal submodels compare equal.
                sub.widths[l] = cfg.layer_width(l);
            }
        }
        sub.validate(cfg).map_err(|e| match e {
            GraphError::Submodel { reason, .. } => err(reason),
            other => other,
        })?;
        Ok(sub)
    }

    /// Check the spec fits `cfg`: right layer count, widths in 1..=stored width.
    pub fn validate(&self, cfg: &ModelConfig) -> Result<()> {
        let err = |reason: String| GraphError::Submodel { spec: self.to_string(), reason };
        if self.widths.len() != cfg.n_layers || self.skip.len() != cfg.n_layers {
            return Err(err(format!("has {} layers but the model has {}", self.widths.len(), cfg.n_layers)));
        }
        for (l, &w) in self.widths.iter().enumerate() {
            let stored = cfg.layer_width(l);
            if !self.skip[l] && (w == 0 || w > stored) {
                return Err(err(format!("layer {l} width {w} is outside the model (1..={stored})")));
            }
        }
        Ok(())
    }

    /// Indices of the layers that run.
    pub fn active_layers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.widths.len()).filter(|&l| !self.skip[l])
    }

    /// Parameters this submodel touches (embeddings and head included).
    pub fn params(&self, cfg: &ModelConfig) -> u64 {
        let d = cfg.d_model as u64;
        let (matmul, other) = self.param_split(cfg);
        let embed = match cfg.family {
            Family::Lm { vocab_size, max_seq_len, position, .. } => {
                vocab_size as u64 * d + if position == Position::Learned { max_seq_len as u64 * d } else { 0 }
            }
            Family::Vit { .. } => cfg.max_seq_len() as u64 * d + d,
        };
        let tied_head = match cfg.family {
            Family::Lm { tie_embeddings: true, vocab_size, .. } => vocab_size as u64 * d,
            _ => 0,
        };
        matmul + other + embed - tied_head
    }

    /// Multiply-add FLOPs for one token attending to `context` positions: 2·(weights used) + attention.
    pub fn flops_per_token(&self, cfg: &ModelConfig, context: usize) -> u64 {
        let (matmul, _) = self.param_split(cfg);
        let n_active = self.active_layers().count() as u64;
        let attn = 4 * n_active * (cfg.n_heads * cfg.head_dim()) as u64 * context as u64;
        2 * matmul + attn
    }

    /// (weights used in matmuls per token, all other non-embedding parameters).
    fn param_split(&self, cfg: &ModelConfig) -> (u64, u64) {
        let d = cfg.d_model as u64;
        let hd = cfg.head_dim() as u64;
        let q = cfg.n_heads as u64 * hd;
        let kv = cfg.n_kv_heads as u64 * hd;
        let norm = if cfg.norm == NormKind::LayerNorm { 2 * d } else { d };
        let ffn_mats = if cfg.ffn == FfnKind::SwiGlu { 3 } else { 2 };
        let mut matmul = 0;
        let mut other = norm; // final norm
        for l in self.active_layers() {
            let w = self.widths[l] as u64;
            matmul += d * q + 2 * d * kv + q * d + ffn_mats * w * d;
            other += 2 * norm;
            if cfg.attn_bias {
                other += q + 2 * kv + d;
            }
            if cfg.ffn_bias {
                other += w + d;
            }
        }
        match cfg.family {
            Family::Lm { vocab_size, .. } => matmul += vocab_size as u64 * d,
            Family::Vit { patch_size, channels, n_classes, .. } => {
                matmul += (patch_size * patch_size * channels) as u64 * d + n_classes as u64 * d;
                other += d + n_classes as u64;
            }
        }
        (matmul, other)
    }

    /// Canonical spec string for this submodel in terms of `cfg`'s granularity names where possible.
    pub fn to_spec(&self, cfg: &ModelConfig) -> String {
        let name_of = |l: usize| {
            let w = self.widths[l];
            if self.skip[l] {
                "-".to_string()
            } else if w == cfg.layer_width(l) && cfg.layer_d_ff.is_some() {
                "full".to_string()
            } else {
                cfg.granularities.iter().find(|g| g.width == w).map(|g| g.name.clone()).unwrap_or_else(|| w.to_string())
            }
        };
        let items: Vec<String> = (0..self.widths.len()).map(name_of).collect();
        if items.iter().all(|i| i == &items[0]) && items[0] != "-" {
            items[0].clone()
        } else {
            items.join(",")
        }
    }
}

impl fmt::Display for Submodel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> =
            self.widths.iter().zip(&self.skip).map(|(w, &s)| if s { "-".into() } else { w.to_string() }).collect();
        write!(f, "{}", items.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ModelConfig {
        ModelConfig::llama_style(256, 64, 4, 4, 2, 128, 64)
    }

    #[test]
    fn parses_every_form() {
        let c = cfg();
        assert_eq!(Submodel::parse(&c, "s").unwrap().widths, vec![16; 4]);
        assert_eq!(Submodel::parse(&c, "xl").unwrap(), Submodel::full(&c));
        let m = Submodel::parse(&c, "s, m,l,xl").unwrap();
        assert_eq!(m.widths, vec![16, 32, 64, 128]);
        let m = Submodel::parse(&c, "16,m,100,-").unwrap();
        assert_eq!(m.widths[..3], [16, 32, 100]);
        assert_eq!(m.skip, vec![false, false, false, true]);
        let m = Submodel::parse(&c, "m;skip=0,2").unwrap();
        assert_eq!(m.skip, vec![true, false, true, false]);
        assert_eq!(m.active_layers().collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(Submodel::parse(&c, &m.to_spec(&c)).unwrap(), m);
    }

    #[test]
    fn rejects_bad_specs_with_reasons() {
        let c = cfg();
        for (spec, needle) in [
            ("", "empty"),
            ("xxl", "unknown granularity"),
            ("s,m", "lists 2 layers"),
            ("129", "outside the model"),
            ("0", "outside the model"),
            ("m;skip=9", "cannot skip layer 9"),
            ("m;drop=1", "expected `skip="),
            ("m;skip=a", "not a layer index"),
        ] {
            let e = Submodel::parse(&c, spec).unwrap_err().to_string();
            assert!(e.contains(needle), "spec `{spec}`: error `{e}` lacks `{needle}`");
        }
        let bad = Submodel { widths: vec![16; 3], skip: vec![false; 3] };
        assert!(bad.validate(&c).unwrap_err().to_string().contains("has 3 layers"));
    }

    #[test]
    fn params_and_flops_scale_with_width() {
        let c = ModelConfig::gpt2_style(256, 64, 2, 4, 256, 64);
        let s = Submodel::parse(&c, "s").unwrap();
        let xl = Submodel::parse(&c, "xl").unwrap();
        let d = 64u64;
        // FFN (two d_ff x d matrices + d_ff bias) per layer is the only difference.
        let diff = 2 * ((256 - 32) * d * 2 + (256 - 32));
        assert_eq!(xl.params(&c) - s.params(&c), diff);
        assert_eq!(xl.flops_per_token(&c, 1) - s.flops_per_token(&c, 1), 2 * 2 * (256 - 32) * d * 2);
        let skip = Submodel::parse(&c, "xl;skip=1").unwrap();
        assert!(skip.params(&c) < xl.params(&c));
    }
}
