//! f16 and bf16 weights give results close to f32.
//! Tolerances: f16 has an 11-bit mantissa (rel. rounding 4.9e-4), bf16 8 bits (3.9e-3); weight rounding errors
//! average out over dot products of length d but compound over layers, so we allow 2e-2 (f16) and 8e-2 (bf16)
//! of the logits' scale, measured as max |Δ| relative to the f32 logits' max |value|.

use std::sync::Arc;

use matformer::graph::{DType, ModelConfig, ModelWeights, Submodel};
use matformer::runtime::{vit_forward, CpuLm, LmExecutor, Logits};

fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

#[test]
fn half_precision_lm_logits_are_close_to_f32() {
    for cfg in [ModelConfig::llama_style(64, 64, 2, 4, 2, 128, 32), ModelConfig::gpt2_style(64, 64, 2, 4, 128, 32)] {
        let w = ModelWeights::random(cfg.clone(), 9).unwrap();
        for spec in ["s", "xl"] {
            let sub = Submodel::parse(&cfg, spec).unwrap();
            let run = |w: ModelWeights| {
                let mut e = CpuLm::new(Arc::new(w)).unwrap();
                e.forward(&[3, 1, 4, 1, 5, 9, 2, 6], &sub, Logits::All).unwrap()
            };
            let f32_logits = run(w.clone());
            for (dt, tol) in [(DType::F16, 2e-2), (DType::Bf16, 8e-2)] {
                let e = rel_err(&run(w.to_dtype(dt)), &f32_logits);
                assert!(e < tol, "{:?} {spec} {dt:?}: relative error {e}", cfg.ffn);
                assert!(e > 0.0, "{dt:?} should differ from f32 at all");
            }
        }
    }
}

#[test]
fn half_precision_vit_is_close_to_f32() {
    let cfg = ModelConfig::vit(8, 4, 1, 5, 32, 2, 4, 64);
    let w = ModelWeights::random(cfg.clone(), 2).unwrap();
    let img: Vec<f32> = (0..64).map(|i| (i % 5) as f32 / 5.0).collect();
    let sub = Submodel::full(&cfg);
    let base = vit_forward(&w, &sub, &img, 1).unwrap();
    for (dt, tol) in [(DType::F16, 2e-2), (DType::Bf16, 8e-2)] {
        let out = vit_forward(&w.to_dtype(dt), &sub, &img, 1).unwrap();
        assert!(rel_err(&out.logits, &base.logits) < tol, "{dt:?}");
    }
}
