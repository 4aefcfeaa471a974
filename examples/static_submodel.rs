//! Static deployment: load one model once, then serve each request with the submodel its device can afford.
//!
//! `cargo run --release --example static_submodel [MODEL]`

use std::sync::Arc;

use matformer::graph::{ModelConfig, ModelWeights, Submodel};
use matformer::runtime::{generate, load_model, CpuLm, SamplingParams, Tokenizer};

fn load(path: Option<String>) -> (ModelWeights, Tokenizer) {
    let path = path.unwrap_or_else(|| "models/matlm-shakespeare.safetensors".into());
    match load_model(path.as_ref()) {
        Ok(m) => (m.weights, m.tokenizer),
        Err(e) => {
            eprintln!("({e}; using a small random model instead)");
            (ModelWeights::random(ModelConfig::gpt2_style(256, 64, 2, 4, 256, 128), 0).unwrap(), Tokenizer::Bytes)
        }
    }
}

pub fn main() {
    let (weights, tok) = load(std::env::args().nth(1).filter(|a| !a.starts_with('-')));
    let cfg = weights.config.clone();
    // One copy of the weights, shared by every request.
    let mut exec = CpuLm::new(Arc::new(weights)).expect("an LM");
    // Mix'n'Match: narrow early layers, full-width late layers.
    let n = cfg.n_layers;
    let mix: Vec<&str> = (0..n).map(|l| if l < n / 2 { "s" } else { "xl" }).collect();
    let mix = mix.join(",");
    let requests = [("phone", "s"), ("laptop", "m"), ("server", "xl"), ("mixed", mix.as_str())];
    for (device, spec) in requests {
        let sub = Submodel::parse(&cfg, spec).expect("valid spec");
        let prompt = tok.encode("KING:\n").unwrap();
        let g = generate(&mut exec, &prompt, &sub, 24, &SamplingParams::default(), |_| {}).unwrap();
        println!("{device:>7} [{spec}, {} params]: {:?}", sub.params(&cfg), tok.decode(&g.tokens).unwrap());
    }
}
