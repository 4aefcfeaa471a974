//! Our importer + CPU runtime against Hugging Face transformers on tiny random checkpoints.
//!
//! Fixtures come from `scripts/hf_reference.py` (see scripts/README.md): Llama with GQA, GPT-2 and ViT, with
//! logits of the full model and of copies whose MLPs were sliced to the first m neurons.
//! Tolerance 1e-4 (absolute + relative): both sides compute in f32 with different summation orders; logits
//! are O(1..10), so rounding differences are ~1e-6 and 1e-4 still catches any real mismatch.

mod common;

use std::collections::HashMap;

use common::{assert_close, fixture};
use matformer::graph::Submodel;
use matformer::runtime::{load_model, vit_forward, CpuLm, LmExecutor, Logits};
use safetensors::SafeTensors;
use std::sync::Arc;

struct Reference {
    tensors: HashMap<String, (Vec<usize>, Vec<u8>)>,
    meta: HashMap<String, String>,
}

impl Reference {
    fn load(arch: &str) -> Self {
        let bytes = std::fs::read(fixture(&format!("hf/{arch}/reference.safetensors"))).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let tensors = st.tensors().into_iter().map(|(n, v)| (n, (v.shape().to_vec(), v.data().to_vec()))).collect();
        Reference { tensors, meta: meta.metadata().clone().unwrap_or_default() }
    }
    fn f32s(&self, name: &str) -> Vec<f32> {
        let (_, b) = &self.tensors[name];
        b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
    }
    fn ids(&self) -> (Vec<usize>, Vec<u32>) {
        let (shape, b) = &self.tensors["input_ids"];
        (shape.clone(), b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32).collect())
    }
    fn widths(&self) -> Vec<usize> {
        self.meta["widths"].split(',').map(|w| w.parse().unwrap()).collect()
    }
}

/// Run each sequence of the batch through a fresh cache and concatenate all-token logits.
fn lm_logits(arch: &str, spec: &str) -> Vec<f32> {
    let m = load_model(&fixture(&format!("hf/{arch}"))).unwrap();
    let r = Reference::load(arch);
    let (shape, ids) = r.ids();
    let sub = Submodel::parse(&m.weights.config, spec).unwrap();
    let mut exec = CpuLm::new(Arc::new(m.weights)).unwrap();
    let mut out = Vec::new();
    for row in ids.chunks_exact(shape[1]) {
        exec.reset();
        out.extend(exec.forward(row, &sub, Logits::All).unwrap());
    }
    out
}

fn check_lm(arch: &str) {
    let r = Reference::load(arch);
    for w in r.widths() {
        let ours = lm_logits(arch, &w.to_string());
        assert_close(&ours, &r.f32s(&format!("logits.m{w}")), 1e-4, 1e-4, &format!("{arch} width {w}"));
    }
    let mix = r.meta["mix_widths"].clone();
    assert_close(&lm_logits(arch, &mix), &r.f32s("logits.mix"), 1e-4, 1e-4, &format!("{arch} mix {mix}"));
}

#[test]
fn llama_gqa_matches_transformers_at_every_width() {
    check_lm("llama");
}

#[test]
fn gpt2_matches_transformers_at_every_width() {
    check_lm("gpt2");
}

#[test]
fn vit_matches_transformers_at_every_width() {
    let m = load_model(&fixture("hf/vit")).unwrap();
    let r = Reference::load("vit");
    let pixels = r.f32s("pixel_values");
    let batch = r.tensors["pixel_values"].0[0];
    let mut cases: Vec<(String, String)> = r.widths().iter().map(|w| (w.to_string(), format!("m{w}"))).collect();
    cases.push((r.meta["mix_widths"].clone(), "mix".into()));
    for (spec, key) in cases {
        let sub = Submodel::parse(&m.weights.config, &spec).unwrap();
        let out = vit_forward(&m.weights, &sub, &pixels, batch).unwrap();
        assert_close(&out.logits, &r.f32s(&format!("logits.{key}")), 1e-4, 1e-4, &format!("vit logits {spec}"));
        assert_close(&out.pooled, &r.f32s(&format!("pooled.{key}")), 1e-4, 1e-4, &format!("vit pooled {spec}"));
    }
}
