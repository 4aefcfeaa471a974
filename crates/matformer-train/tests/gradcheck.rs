//! Model-level gradient checks: every parameter tensor of tiny GPT-2, Llama (GQA + RoPE) and ViT models,
//! under the joint objective over two nested submodels, against central finite differences.

use matformer_graph::{ModelConfig, ModelWeights, Submodel};
use matformer_train::model::params::{fsm, tensors_mut, zeros_like};
use matformer_train::model::{forward_backward, Batch, Workspace};

fn lcg(state: &mut u64) -> f32 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn perturbed(cfg: ModelConfig, seed: u64) -> ModelWeights {
    let mut w = ModelWeights::random(cfg, seed).unwrap();
    let mut s = seed;
    for t in tensors_mut(&mut w) {
        for v in fsm(t) {
            *v += 0.3 * lcg(&mut s);
        }
    }
    w
}

fn joint_loss(w: &ModelWeights, subs: &[Submodel], batch: &Batch, grads: Option<&mut ModelWeights>) -> f64 {
    let mut ws = Workspace::default();
    let n = batch.n_targets() as f64;
    match grads {
        Some(g) => subs.iter().map(|s| forward_backward(w, Some(g), s, batch, &mut ws, 1.0).loss_sum / n).sum(),
        None => subs.iter().map(|s| forward_backward(w, None, s, batch, &mut ws, 1.0).loss_sum / n).sum(),
    }
}

fn check(cfg: ModelConfig, batch: Batch, specs: &[&str]) {
    let subs: Vec<Submodel> = specs.iter().map(|s| Submodel::parse(&cfg, s).unwrap()).collect();
    let mut w = perturbed(cfg, 7);
    let mut g = zeros_like(&w);
    joint_loss(&w, &subs, &batch, Some(&mut g));
    let names: Vec<String> = w.named_tensors().into_iter().map(|(n, _)| n).collect();
    let grads: Vec<Vec<f32>> = tensors_mut(&mut g).into_iter().map(|t| fsm(t).to_vec()).collect();
    let h = 1e-2f32;
    let mut rng = 99u64;
    for (ti, name) in names.iter().enumerate() {
        let len = grads[ti].len();
        let mut idx: Vec<usize> = vec![0, len - 1];
        for _ in 0..4 {
            idx.push(((lcg(&mut rng) + 1.0) * 0.5 * len as f32) as usize % len);
        }
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for &i in &idx {
            let orig = fsm(tensors_mut(&mut w).swap_remove(ti))[i];
            fsm(tensors_mut(&mut w).swap_remove(ti))[i] = orig + h;
            let lp = joint_loss(&w, &subs, &batch, None);
            fsm(tensors_mut(&mut w).swap_remove(ti))[i] = orig - h;
            let lm = joint_loss(&w, &subs, &batch, None);
            fsm(tensors_mut(&mut w).swap_remove(ti))[i] = orig;
            let fd = (lp - lm) / (2.0 * h as f64);
            let an = grads[ti][i] as f64;
            num += (fd - an).powi(2);
            den += fd.powi(2).max(an.powi(2));
        }
        let rel = (num / den.max(1e-12)).sqrt();
        assert!(rel < 2e-2 || num.sqrt() < 2e-4, "{name}: relative gradient error {rel:.3e} (abs {:.3e})", num.sqrt());
    }
}

fn lm_batch(vocab: u32) -> Batch {
    let tokens: Vec<u32> = (0..10).map(|i| (i * 7 + 3) % vocab).collect();
    let targets: Vec<u32> = (0..10).map(|i| (i * 5 + 1) % vocab).collect();
    Batch::Lm { tokens, targets, batch: 2, seq: 5 }
}

#[test]
fn gpt2_style_gradients() {
    let cfg = ModelConfig::gpt2_style(11, 8, 2, 2, 16, 6);
    check(cfg, lm_batch(11), &["s", "xl"]);
}

#[test]
fn llama_style_gradients() {
    let cfg = ModelConfig::llama_style(11, 8, 2, 2, 1, 16, 6);
    check(cfg, lm_batch(11), &["m", "s,xl"]);
}

#[test]
fn vit_gradients() {
    let cfg = ModelConfig::vit(4, 2, 2, 3, 8, 2, 2, 16);
    let mut s = 5u64;
    let images: Vec<f32> = (0..3 * 2 * 16).map(|_| lcg(&mut s)).collect();
    let batch = Batch::Vit { images, labels: vec![0, 2, 1], batch: 3 };
    check(cfg, batch, &["s", "l,xl"]);
}
