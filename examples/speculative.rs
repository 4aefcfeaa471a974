//! Self-speculative decoding: the `s` submodel drafts, `xl` verifies, over one set of weights.
//! The output is identical to xl's greedy output.
//!
//! `cargo run --release --example speculative [MODEL]`

use std::sync::Arc;
use std::time::Instant;

use matformer::graph::{ModelConfig, ModelWeights, Submodel};
use matformer::runtime::{generate, load_model, speculative_generate, CpuLm, SamplingParams};

pub fn main() {
    let path = std::env::args()
        .nth(1)
        .filter(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "models/matlm-shakespeare.safetensors".into());
    let weights = match load_model(path.as_ref()) {
        Ok(m) => m.weights,
        Err(_) => ModelWeights::random(ModelConfig::gpt2_style(256, 64, 2, 4, 256, 256), 0).unwrap(),
    };
    let cfg = weights.config.clone();
    let weights = Arc::new(weights);
    let (mut draft_exec, mut target_exec) = (CpuLm::new(weights.clone()).unwrap(), CpuLm::new(weights).unwrap());
    let xl = Submodel::full(&cfg);
    let prompt: Vec<u32> = "ROMEO:\n".bytes().map(u32::from).collect();
    let n = 100;
    let t0 = Instant::now();
    let greedy = generate(&mut target_exec, &prompt, &xl, n, &SamplingParams::default(), |_| {}).unwrap();
    let base = t0.elapsed().as_secs_f64();
    println!("xl greedy: {:.1} tokens/s", n as f64 / base);
    for draft in ["s", "m", "l"] {
        let d = Submodel::parse(&cfg, draft).unwrap();
        for k in [2, 4] {
            let t0 = Instant::now();
            let g = speculative_generate(&mut draft_exec, &mut target_exec, &prompt, &d, &xl, k, n, |_| {}).unwrap();
            let secs = t0.elapsed().as_secs_f64();
            assert_eq!(g.tokens, greedy.tokens, "speculative output must equal greedy xl");
            println!(
                "draft {draft} k={k}: acceptance {:5.1}%, speedup {:.2}x, identical output",
                100.0 * g.stats.acceptance(),
                base / secs
            );
        }
    }
}
