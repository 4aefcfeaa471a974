//! Extraction: any submodel becomes a standalone, smaller checkpoint. No retraining: FFN matrices are
//! truncated to their active prefix of neurons and skipped layers are dropped.

use crate::config::ModelConfig;
use crate::error::Result;
use crate::submodel::Submodel;
use crate::weights::{Layer, Linear, ModelWeights};

/// Config of the extracted model: only the active layers, each with its active width.
pub fn extracted_config(cfg: &ModelConfig, sub: &Submodel) -> Result<ModelConfig> {
    sub.validate(cfg)?;
    let widths: Vec<usize> = sub.active_layers().map(|l| sub.widths[l]).collect();
    let mut out = cfg.clone();
    if widths.is_empty() {
        return Err(crate::error::config_err("cannot extract a submodel that skips every layer"));
    }
    let d_ff = *widths.iter().max().expect("non-empty");
    out.n_layers = widths.len();
    out.d_ff = d_ff;
    out.layer_d_ff = if widths.iter().all(|&w| w == d_ff) { None } else { Some(widths) };
    out.granularities.retain(|g| g.width <= d_ff);
    if out.granularities.is_empty() {
        out.granularities = vec![crate::config::Granularity { name: "xl".into(), width: d_ff }];
    }
    out.validate()?;
    Ok(out)
}

/// Extract `sub` from `weights` as an ordinary model.
pub fn extract(weights: &ModelWeights, sub: &Submodel) -> Result<ModelWeights> {
    let config = extracted_config(&weights.config, sub)?;
    let layers = sub
        .active_layers()
        .map(|l| {
            let src = &weights.layers[l];
            let w = sub.widths[l];
            Layer {
                up: Linear {
                    weight: src.up.weight.truncate_rows(w),
                    bias: src.up.bias.as_ref().map(|b| b.truncate_rows(w)),
                },
                gate: src.gate.as_ref().map(|g| g.truncate_rows(w)),
                down_t: src.down_t.truncate_rows(w),
                ..src.clone()
            }
        })
        .collect();
    let out = ModelWeights { config, layers, ..weights.clone() };
    // Round-trip through the checked constructor so the result is guaranteed loadable.
    let map = out.named_tensors().into_iter().map(|(n, t)| (n, t.clone())).collect();
    ModelWeights::from_tensors(out.config.clone(), map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extraction_truncates_and_drops() {
        let cfg = ModelConfig::llama_style(64, 32, 3, 4, 2, 64, 16);
        let w = ModelWeights::random(cfg.clone(), 1).unwrap();
        let sub = Submodel::parse(&cfg, "s,-,l").unwrap();
        let e = extract(&w, &sub).unwrap();
        assert_eq!(e.config.n_layers, 2);
        assert_eq!(e.config.layer_d_ff, Some(vec![8, 32]));
        assert_eq!(e.layers[1].up.weight.shape, vec![32, 32]);
        assert_eq!(e.layers[1].q, w.layers[2].q);
        assert!(e.n_params() < w.n_params());
        let all_skipped = Submodel::parse(&cfg, "-").unwrap();
        assert!(extract(&w, &all_skipped).is_err());
        let uniform = extract(&w, &Submodel::parse(&cfg, "m").unwrap()).unwrap();
        assert_eq!(uniform.config.layer_d_ff, None);
        assert_eq!(uniform.config.granularities.len(), 2);
    }
}
