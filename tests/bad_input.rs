//! Bad input gets a clear error, never a panic.

mod common;

use std::sync::Arc;

use common::tmp_dir;
use matformer::graph::{checkpoint, ModelConfig, ModelWeights, Submodel};
use matformer::runtime::{generate, load_model, vit_forward, CpuLm, LmExecutor, Logits, SamplingParams};

fn lm() -> (ModelConfig, CpuLm) {
    let cfg = ModelConfig::llama_style(50, 32, 2, 4, 2, 64, 16);
    (cfg.clone(), CpuLm::new(Arc::new(ModelWeights::random(cfg, 1).unwrap())).unwrap())
}

#[test]
fn token_ids_outside_the_vocabulary() {
    let (cfg, mut e) = lm();
    let err = e.forward(&[1, 50, 2], &Submodel::full(&cfg), Logits::Last).unwrap_err().to_string();
    assert!(err.contains("token id 50") && err.contains("0..50"), "{err}");
    assert_eq!(e.cached_len(), 0, "a rejected call must not touch the cache");
}

#[test]
fn prompts_too_long_or_empty() {
    let (cfg, mut e) = lm();
    let sub = Submodel::full(&cfg);
    let long: Vec<u32> = vec![1; 17];
    let err = generate(&mut e, &long, &sub, 5, &SamplingParams::default(), |_| {}).unwrap_err().to_string();
    assert!(err.contains("17 tokens") && err.contains("16"), "{err}");
    let err = generate(&mut e, &[], &sub, 5, &SamplingParams::default(), |_| {}).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    e.forward(&[1; 10], &sub, Logits::Last).unwrap();
    let err = e.forward(&[1; 7], &sub, Logits::Last).unwrap_err().to_string();
    assert!(err.contains("exceeds"), "{err}");
}

#[test]
fn submodels_that_do_not_fit() {
    let (cfg, mut e) = lm();
    let wide = Submodel { widths: vec![65, 64], skip: vec![false; 2] };
    let err = e.forward(&[1], &wide, Logits::Last).unwrap_err().to_string();
    assert!(err.contains("outside the model"), "{err}");
    let short = Submodel { widths: vec![64], skip: vec![false] };
    assert!(e.forward(&[1], &short, Logits::Last).unwrap_err().to_string().contains("has 1 layers"));
    assert!(Submodel::parse(&cfg, "s,m,l").unwrap_err().to_string().contains("lists 3 layers"));
    assert!(Submodel::parse(&cfg, "huge").unwrap_err().to_string().contains("unknown granularity"));
}

#[test]
fn wrong_family_and_wrong_image_size() {
    let vit = ModelWeights::random(ModelConfig::vit(8, 4, 1, 3, 16, 1, 2, 32), 1).unwrap();
    assert!(CpuLm::new(Arc::new(vit.clone())).err().unwrap().to_string().contains("MatLM"));
    let err = vit_forward(&vit, &Submodel::full(&vit.config), &[0.0; 10], 1).unwrap_err().to_string();
    assert!(err.contains("expected 1 images"), "{err}");
}

#[test]
fn bad_model_paths_and_files() {
    let dir = tmp_dir("badinput");
    assert!(load_model(&dir.join("nope.safetensors")).err().unwrap().to_string().contains("no such file"));
    assert!(load_model(&dir).err().unwrap().to_string().contains("no model.safetensors"));
    let p = dir.join("m.safetensors");
    std::fs::write(&p, b"definitely not a checkpoint").unwrap();
    assert!(load_model(&p).err().unwrap().to_string().contains("bad checkpoint"));
    let (cfg, _) = lm();
    let w = ModelWeights::random(cfg, 1).unwrap();
    checkpoint::save(&w, &p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
    assert!(load_model(&p).err().unwrap().to_string().contains("bad checkpoint"));
}
