//! The universal model run as submodel S equals the extracted S checkpoint loaded as a plain model.
//! Tolerance: relative 1e-5 (plus 1e-6 absolute for logits near zero). Both runs use identical weights and
//! the same kernels on the same shapes, so differences can only come from a wrong prefix.

mod common;

use std::sync::Arc;

use common::{assert_close, tmp_dir};
use matformer::graph::{checkpoint, extract::extract, ModelConfig, ModelWeights, Submodel};
use matformer::runtime::{vit_forward, CpuLm, LmExecutor, Logits};

fn lm_configs() -> Vec<ModelConfig> {
    vec![ModelConfig::llama_style(97, 32, 3, 4, 2, 96, 24), ModelConfig::gpt2_style(97, 32, 3, 4, 96, 24)]
}

fn specs(cfg: &ModelConfig) -> Vec<String> {
    let mut s: Vec<String> = cfg.granularities.iter().map(|g| g.name.clone()).collect();
    s.push("s,m,l;skip=1".into()); // Mix'n'Match with one skipped layer
    s.push("xl,-,m".into());
    s
}

fn run_lm(w: ModelWeights, spec: &str, tokens: &[u32]) -> Vec<f32> {
    let sub = Submodel::parse(&w.config, spec).unwrap();
    let mut e = CpuLm::new(Arc::new(w)).unwrap();
    e.forward(tokens, &sub, Logits::All).unwrap()
}

#[test]
fn extracted_lm_submodels_match_the_universal_model() {
    let dir = tmp_dir("prefix");
    let tokens: Vec<u32> = (0..11).map(|i| (i * 37 + 5) % 97).collect();
    for cfg in lm_configs() {
        let w = ModelWeights::random(cfg.clone(), 11).unwrap();
        for spec in specs(&cfg) {
            let sub = Submodel::parse(&cfg, &spec).unwrap();
            let path = dir.join("sub.safetensors");
            checkpoint::save(&extract(&w, &sub).unwrap(), &path).unwrap();
            let small = checkpoint::load(&path).unwrap();
            assert!(small.n_params() <= w.n_params());
            let universal = run_lm(w.clone(), &spec, &tokens);
            let extracted = run_lm(small, "full", &tokens);
            assert_close(&extracted, &universal, 1e-6, 1e-5, &format!("{:?} {spec}", cfg.ffn));
        }
    }
}

#[test]
fn extracted_vit_submodels_match_the_universal_model() {
    let cfg = ModelConfig::vit(8, 4, 1, 5, 32, 3, 4, 64);
    let w = ModelWeights::random(cfg.clone(), 3).unwrap();
    let images: Vec<f32> = (0..2 * 64).map(|i| ((i * 7) % 13) as f32 / 13.0).collect();
    for spec in specs(&cfg) {
        let sub = Submodel::parse(&cfg, &spec).unwrap();
        let small = extract(&w, &sub).unwrap();
        let a = vit_forward(&w, &sub, &images, 2).unwrap();
        let b = vit_forward(&small, &Submodel::full(&small.config), &images, 2).unwrap();
        assert_close(&b.logits, &a.logits, 1e-6, 1e-5, &format!("vit logits {spec}"));
        assert_close(&b.pooled, &a.pooled, 1e-6, 1e-5, &format!("vit pooled {spec}"));
    }
}

#[test]
fn submodels_actually_differ() {
    // Guard against a runtime that ignores the widths (which would make the tests above vacuous).
    let cfg = lm_configs().remove(0);
    let w = ModelWeights::random(cfg, 11).unwrap();
    let a = run_lm(w.clone(), "s", &[1, 2, 3]);
    let b = run_lm(w, "xl", &[1, 2, 3]);
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-4));
}
