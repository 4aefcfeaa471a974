//! Self-speculative greedy decoding returns exactly the target's greedy output, for several drafts and k.

use std::sync::Arc;

use matformer::graph::{ModelConfig, ModelWeights, Submodel};
use matformer::runtime::{generate, speculative_generate, CpuLm, SamplingParams, StopReason};

#[test]
fn speculative_equals_greedy_on_cpu() {
    for cfg in [ModelConfig::llama_style(64, 32, 3, 4, 2, 128, 96), ModelConfig::gpt2_style(64, 32, 3, 4, 128, 96)] {
        let w = Arc::new(ModelWeights::random(cfg.clone(), 21).unwrap());
        let mut target = CpuLm::new(w.clone()).unwrap();
        let mut draft = CpuLm::new(w).unwrap();
        let xl = Submodel::full(&cfg);
        let prompt = [5u32, 9, 2, 33, 7];
        let greedy = generate(&mut target, &prompt, &xl, 40, &SamplingParams::default(), |_| {}).unwrap();
        for spec in ["s", "m", "l", "s,m,l;skip=1"] {
            let d = Submodel::parse(&cfg, spec).unwrap();
            for k in [1, 2, 4, 7] {
                let mut streamed = vec![];
                let g = speculative_generate(&mut draft, &mut target, &prompt, &d, &xl, k, 40, |t| streamed.push(t))
                    .unwrap();
                assert_eq!(g.tokens, greedy.tokens, "{:?} draft {spec} k {k}", cfg.ffn);
                assert_eq!(streamed, g.tokens);
                assert!(g.stats.accepted <= g.stats.drafted);
            }
        }
        // xl drafting for itself accepts everything.
        let g = speculative_generate(&mut draft, &mut target, &prompt, &xl, &xl, 4, 40, |_| {}).unwrap();
        assert_eq!(g.stats.acceptance(), 1.0);
        assert_eq!(g.tokens, greedy.tokens);
    }
}

#[test]
fn speculative_stops_at_the_context_and_rejects_k0() {
    let cfg = ModelConfig::gpt2_style(64, 32, 2, 4, 64, 12);
    let w = Arc::new(ModelWeights::random(cfg.clone(), 2).unwrap());
    let (mut t, mut d) = (CpuLm::new(w.clone()).unwrap(), CpuLm::new(w).unwrap());
    let xl = Submodel::full(&cfg);
    let s = Submodel::parse(&cfg, "s").unwrap();
    let greedy = generate(&mut t, &[1, 2, 3], &xl, 100, &SamplingParams::default(), |_| {}).unwrap();
    let g = speculative_generate(&mut d, &mut t, &[1, 2, 3], &s, &xl, 4, 100, |_| {}).unwrap();
    assert_eq!(g.stop, StopReason::ContextFull);
    assert_eq!(g.tokens, greedy.tokens);
    assert!(speculative_generate(&mut d, &mut t, &[1], &s, &xl, 0, 5, |_| {}).is_err());
}

/// `fork` gives a second executor over the same weights with its own cache: after the original has
/// cached a prompt, the fork starts empty and computes the same logits for the same input.
#[test]
fn fork_shares_weights_not_the_cache() {
    use matformer::runtime::{LmExecutor, Logits};
    let cfg = ModelConfig::gpt2_style(64, 32, 2, 4, 64, 32);
    let w = Arc::new(ModelWeights::random(cfg.clone(), 4).unwrap());
    let mut a = CpuLm::new(w.clone()).unwrap();
    let s = Submodel::named(&cfg, "m").unwrap();
    let first = a.forward(&[1, 2, 3], &s, Logits::All).unwrap();
    let mut b = a.fork().unwrap();
    assert_eq!((a.cached_len(), b.cached_len()), (3, 0));
    assert_eq!(b.forward(&[1, 2, 3], &s, Logits::All).unwrap(), first);
    let (na, nb) = (a.forward(&[4], &s, Logits::Last).unwrap(), b.forward(&[4], &s, Logits::Last).unwrap());
    assert_eq!(na, nb);
    assert_eq!(Arc::strong_count(&w), 3, "the fork holds the same weights, not a copy");
}
