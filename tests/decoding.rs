//! KV-cache decoding equals full recomputation; seeded sampling is reproducible.

mod common;

use std::sync::Arc;

use common::assert_close;
use matformer::graph::{ModelConfig, ModelWeights, Submodel};
use matformer::runtime::{generate, CpuLm, LmExecutor, Logits, SamplingParams, StopReason};

fn model(cfg: ModelConfig) -> CpuLm {
    CpuLm::new(Arc::new(ModelWeights::random(cfg, 5).unwrap())).unwrap()
}

/// Decoding one token at a time over the cache gives the logits of recomputing the whole prefix.
/// Tolerance 1e-5 abs+rel: the same math in a different grouping (attention over a cache vs. in-batch).
#[test]
fn kv_cache_decode_equals_recompute() {
    for cfg in [ModelConfig::llama_style(64, 32, 2, 4, 2, 64, 32), ModelConfig::gpt2_style(64, 32, 2, 4, 64, 32)] {
        let mut e = model(cfg.clone());
        for spec in ["xl", "s", "m,l;skip=0"] {
            let sub = Submodel::parse(&cfg, spec).unwrap();
            let tokens: Vec<u32> = (0..12).map(|i| (i * 13 + 1) % 64).collect();
            e.reset();
            let full = e.forward(&tokens, &sub, Logits::All).unwrap();
            e.reset();
            let mut inc = e.forward(&tokens[..5], &sub, Logits::All).unwrap();
            for &t in &tokens[5..] {
                inc.extend(e.forward(&[t], &sub, Logits::All).unwrap());
            }
            assert_close(&inc, &full, 1e-5, 1e-5, &format!("{:?} {spec}", cfg.norm));
            assert_eq!(e.cached_len(), tokens.len());
        }
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_seed_dependent() {
    let cfg = ModelConfig::gpt2_style(64, 32, 2, 4, 64, 64);
    let mut e = model(cfg.clone());
    let sub = Submodel::parse(&cfg, "m").unwrap();
    let p = SamplingParams { temperature: 1.5, top_k: 40, top_p: 0.95, seed: 42 };
    let a = generate(&mut e, &[1, 2, 3], &sub, 30, &p, |_| {}).unwrap();
    let b = generate(&mut e, &[1, 2, 3], &sub, 30, &p, |_| {}).unwrap();
    assert_eq!(a, b);
    let c = generate(&mut e, &[1, 2, 3], &sub, 30, &SamplingParams { seed: 43, ..p }, |_| {}).unwrap();
    assert_ne!(a.tokens, c.tokens, "a different seed should change a 30-token sample");
    let g = generate(&mut e, &[1, 2, 3], &sub, 30, &SamplingParams::default(), |_| {}).unwrap();
    let g2 = generate(&mut e, &[1, 2, 3], &sub, 30, &SamplingParams::default(), |_| {}).unwrap();
    assert_eq!(g, g2);
    assert_eq!(g.stop, StopReason::MaxTokens);
}

#[test]
fn generation_stops_at_the_context() {
    let cfg = ModelConfig::gpt2_style(64, 32, 1, 4, 64, 8);
    let mut e = model(cfg.clone());
    let sub = Submodel::full(&cfg);
    let g = generate(&mut e, &[1, 2, 3], &sub, 100, &SamplingParams::default(), |_| {}).unwrap();
    assert_eq!(g.stop, StopReason::ContextFull);
    assert_eq!(g.tokens.len(), 6, "3 prompt tokens + 5 cached generations + the last sampled token = 8 + 1");
}
