//! Token sampling: greedy, temperature, top-k and top-p (nucleus), reproducible with a seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Result, RuntimeError};

/// Sampling settings. `temperature == 0` means greedy.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; 0 selects the argmax.
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = no limit).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability mass reaches p (1 = no limit).
    pub top_p: f32,
    /// RNG seed: the same seed, model and prompt give the same text.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 }
    }
}

impl SamplingParams {
    /// Reject settings that make no sense, with the reason.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(RuntimeError::InvalidInput(format!("temperature must be >= 0, got {}", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(RuntimeError::InvalidInput(format!("top-p must be in (0, 1], got {}", self.top_p)));
        }
        Ok(())
    }
}

/// A seeded sampler; keep one per generation so the random stream is reproducible.
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    order: Vec<usize>,
    probs: Vec<f32>,
}

impl Sampler {
    /// Create a sampler (validates the parameters).
    pub fn new(params: SamplingParams) -> Result<Self> {
        params.validate()?;
        let rng = StdRng::seed_from_u64(params.seed);
        Ok(Sampler { params, rng, order: Vec::new(), probs: Vec::new() })
    }

    /// True when sampling is deterministic argmax.
    pub fn is_greedy(&self) -> bool {
        self.params.temperature == 0.0
    }

    /// Pick the next token from one row of logits.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.is_greedy() {
            return argmax(logits) as u32;
        }
        let p = &self.params;
        let order = &mut self.order;
        order.clear();
        order.extend(0..logits.len());
        // Sort by logit descending, ties by id, so results do not depend on sort stability.
        order.sort_unstable_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        let k = if p.top_k == 0 { order.len() } else { p.top_k.min(order.len()) };
        order.truncate(k);
        let max = logits[order[0]];
        self.probs.clear();
        self.probs.extend(order.iter().map(|&i| ((logits[i] - max) / p.temperature).exp()));
        let total: f32 = self.probs.iter().sum();
        // Nucleus: keep the shortest prefix whose mass reaches top_p (always at least one token).
        let mut keep = self.probs.len();
        if p.top_p < 1.0 {
            let mut acc = 0.0;
            for (i, pr) in self.probs.iter().enumerate() {
                acc += pr / total;
                if acc >= p.top_p {
                    keep = i + 1;
                    break;
                }
            }
        }
        let mass: f32 = self.probs[..keep].iter().sum();
        let mut r = self.rng.random::<f32>() * mass;
        for (&p, &id) in self.probs[..keep].iter().zip(order.iter()) {
            r -= p;
            if r <= 0.0 {
                return id as u32;
            }
        }
        order[keep - 1] as u32
    }
}

/// Index of the largest value (first on ties): the CPU kernel crate's, so host and GPU paths agree.
pub use matformer_cpu::fast::argmax;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_top_k_and_top_p() {
        let logits = [0.0, 3.0, 1.0, 2.9];
        let mut g = Sampler::new(SamplingParams::default()).unwrap();
        assert_eq!(g.sample(&logits), 1);
        let mut k1 = Sampler::new(SamplingParams { temperature: 1.0, top_k: 1, ..Default::default() }).unwrap();
        assert!((0..50).all(|_| k1.sample(&logits) == 1));
        let mut p = Sampler::new(SamplingParams { temperature: 1.0, top_p: 0.5, ..Default::default() }).unwrap();
        // 3.0 and 2.9 hold ~0.47 and ~0.43 of the mass: top-p 0.5 keeps just those two.
        assert!((0..200).all(|_| matches!(p.sample(&logits), 1 | 3)));
        let mut t = Sampler::new(SamplingParams { temperature: 1.0, seed: 5, ..Default::default() }).unwrap();
        let mut t2 = Sampler::new(SamplingParams { temperature: 1.0, seed: 5, ..Default::default() }).unwrap();
        let a: Vec<u32> = (0..100).map(|_| t.sample(&logits)).collect();
        let b: Vec<u32> = (0..100).map(|_| t2.sample(&logits)).collect();
        assert_eq!(a, b);
        assert!(a.contains(&0) || a.contains(&2), "temperature 1 should sometimes pick unlikely tokens");
        assert!(Sampler::new(SamplingParams { top_p: 0.0, ..Default::default() }).is_err());
        assert!(Sampler::new(SamplingParams { temperature: -1.0, ..Default::default() }).is_err());
    }
}
