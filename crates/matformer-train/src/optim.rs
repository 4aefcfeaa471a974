//! AdamW with decoupled weight decay, a linear-warmup + cosine learning-rate schedule, and global-norm
//! gradient clipping. All reductions run in a fixed order (deterministic).

use matformer_graph::ModelWeights;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::params::{decays, fs, fsm, tensors_mut, zeros_like};
/// Elements per parallel task (fixed, so results do not depend on the thread count).
const ELEM_CHUNK: usize = 1 << 14;

/// Optimizer hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdamWConfig {
    /// Peak learning rate.
    pub lr: f32,
    /// Final learning rate as a fraction of `lr` (cosine floor).
    pub min_lr_ratio: f32,
    /// Linear warmup steps.
    pub warmup_steps: usize,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator epsilon.
    pub eps: f32,
    /// Decoupled weight decay, applied to linear-layer matrices only (see [`decays`]).
    pub weight_decay: f32,
    /// Clip the global gradient norm to this value (0 disables clipping).
    pub grad_clip: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            min_lr_ratio: 0.1,
            warmup_steps: 100,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            grad_clip: 1.0,
        }
    }
}

/// Learning rate at `step` (0-based) of `total`: linear warmup to `lr`, then cosine down to `min_lr_ratio·lr`.
pub fn lr_at(c: &AdamWConfig, step: usize, total: usize) -> f32 {
    if step < c.warmup_steps {
        return c.lr * (step + 1) as f32 / c.warmup_steps as f32;
    }
    let span = total.saturating_sub(c.warmup_steps).max(1);
    let p = ((step - c.warmup_steps) as f32 / span as f32).min(1.0);
    let min = c.lr * c.min_lr_ratio;
    min + 0.5 * (c.lr - min) * (1.0 + (std::f32::consts::PI * p).cos())
}

/// Global L2 norm of all gradients (f64 sums in tensor order).
pub fn global_norm(g: &mut ModelWeights) -> f64 {
    let mut total = 0.0f64;
    for t in tensors_mut(g) {
        let parts: Vec<f64> =
            fs(t).par_chunks(ELEM_CHUNK).map(|c| c.iter().map(|&x| x as f64 * x as f64).sum()).collect();
        total += parts.iter().sum::<f64>();
    }
    total.sqrt()
}

/// Add every gradient of `src` into `dst` (same model).
pub fn add_grads(dst: &mut ModelWeights, src: &ModelWeights) {
    for (d, (_, s)) in tensors_mut(dst).into_iter().zip(src.named_tensors()) {
        fsm(d).par_chunks_mut(ELEM_CHUNK).zip(fs(s).par_chunks(ELEM_CHUNK)).for_each(|(d, s)| {
            d.iter_mut().zip(s).for_each(|(a, &b)| *a += b);
        });
    }
}

/// Scale every gradient by `s`.
pub fn scale_grads(g: &mut ModelWeights, s: f32) {
    for t in tensors_mut(g) {
        fsm(t).par_chunks_mut(ELEM_CHUNK).for_each(|c| c.iter_mut().for_each(|x| *x *= s));
    }
}

/// AdamW moments.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamW {
    /// First moments, shaped like the weights.
    pub m: ModelWeights,
    /// Second moments, shaped like the weights.
    pub v: ModelWeights,
}

impl AdamW {
    /// Zero moments for `w`.
    pub fn new(w: &ModelWeights) -> Self {
        AdamW { m: zeros_like(w), v: zeros_like(w) }
    }

    /// One update of `w` with gradients `g` at learning rate `lr`; `step` is 0-based (bias correction uses step+1).
    pub fn update(&mut self, c: &AdamWConfig, w: &mut ModelWeights, g: &mut ModelWeights, lr: f32, step: usize) {
        let names: Vec<String> = w.named_tensors().into_iter().map(|(n, _)| n).collect();
        let t = (step + 1) as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let (b1, b2, eps) = (c.beta1, c.beta2, c.eps);
        for ((((name, pw), pg), pm), pv) in names
            .iter()
            .zip(tensors_mut(w))
            .zip(tensors_mut(g))
            .zip(tensors_mut(&mut self.m))
            .zip(tensors_mut(&mut self.v))
        {
            let wd = if decays(name) { c.weight_decay } else { 0.0 };
            let gs = fs(pg);
            let (ms, vs) = (fsm(pm), fsm(pv));
            fsm(pw)
                .par_chunks_mut(ELEM_CHUNK)
                .zip(ms.par_chunks_mut(ELEM_CHUNK))
                .zip(vs.par_chunks_mut(ELEM_CHUNK))
                .zip(gs.par_chunks(ELEM_CHUNK))
                .for_each(|(((p, m), v), g)| {
                    for i in 0..p.len() {
                        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                        let mh = m[i] / bc1;
                        let vh = v[i] / bc2;
                        p[i] -= lr * (mh / (vh.sqrt() + eps) + wd * p[i]);
                    }
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        let c = AdamWConfig { lr: 1.0, warmup_steps: 10, min_lr_ratio: 0.1, ..Default::default() };
        assert!((lr_at(&c, 0, 100) - 0.1).abs() < 1e-6);
        assert!((lr_at(&c, 9, 100) - 1.0).abs() < 1e-6);
        assert!((lr_at(&c, 10, 100) - 1.0).abs() < 1e-6);
        assert!((lr_at(&c, 55, 100) - 0.55).abs() < 1e-3);
        assert!((lr_at(&c, 100, 100) - 0.1).abs() < 1e-6);
    }
}
