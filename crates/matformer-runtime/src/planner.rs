//! The Mix'n'Match planner: the best submodel under a params, FLOPs or measured-latency budget.
//! Without data, more parameters under the budget wins (the paper's observation that Mix'n'Match quality
//! tracks size); with data, candidates are ranked by measured loss, as Gemma 3n's slicing configs were.

use std::time::Instant;

use matformer_graph::mixnmatch::{candidates, Budget};
use matformer_graph::{ModelConfig, Submodel};

use crate::error::{Result, RuntimeError};
use crate::executor::{LmExecutor, Logits};

/// One evaluated candidate.
#[derive(Clone, Debug)]
pub struct PlanRow {
    /// Spec string.
    pub name: String,
    /// The submodel.
    pub submodel: Submodel,
    /// Parameters used.
    pub params: u64,
    /// FLOPs per token at half the context.
    pub flops: u64,
    /// Predicted ms per decoded token, when a latency profile was taken.
    pub latency_ms: Option<f64>,
    /// Measured loss, when data was given.
    pub loss: Option<f64>,
}

/// Decode latency as a linear function of FLOPs per token, fitted on the named granularities.
#[derive(Clone, Copy, Debug)]
pub struct LatencyProfile {
    /// Fixed ms per token (attention over the cache, sampling, overheads).
    pub base_ms: f64,
    /// ms per FLOP.
    pub ms_per_flop: f64,
}

impl LatencyProfile {
    /// Predicted ms per token for a submodel.
    pub fn predict(&self, cfg: &ModelConfig, s: &Submodel) -> f64 {
        self.base_ms + self.ms_per_flop * s.flops_per_token(cfg, cfg.max_seq_len() / 2) as f64
    }
}

/// Quick profile of the executor's device: `steps` decode steps for each named granularity.
pub fn profile_latency(exec: &mut dyn LmExecutor, steps: usize) -> Result<LatencyProfile> {
    let cfg = exec.config().clone();
    let mut pts = Vec::new();
    for g in &cfg.granularities {
        let sub = Submodel::named(&cfg, &g.name)?;
        exec.reset();
        exec.forward(&[0], &sub, Logits::Last)?;
        let start = Instant::now();
        for i in 0..steps.max(1) {
            exec.forward(&[(i % cfg.n_outputs()) as u32], &sub, Logits::Last)?;
        }
        let ms = start.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64;
        pts.push((sub.flops_per_token(&cfg, cfg.max_seq_len() / 2) as f64, ms));
    }
    exec.reset();
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let var: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let slope = if var > 0.0 { pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / var } else { 0.0 };
    let slope = slope.max(0.0);
    Ok(LatencyProfile { base_ms: (my - slope * mx).max(0.0), ms_per_flop: slope })
}

/// A candidate scorer: lower is better (e.g. validation loss).
pub type Scorer<'a> = &'a mut dyn FnMut(&Submodel) -> Result<f64>;

/// Pick the best candidate under `budget`. `score` (lower is better, e.g. validation loss) is called for at
/// most `max_scored` of the largest feasible candidates; without it, the largest feasible one wins.
pub fn plan(
    cfg: &ModelConfig,
    budget: Budget,
    profile: Option<&LatencyProfile>,
    mut score: Option<Scorer<'_>>,
    max_scored: usize,
) -> Result<(PlanRow, Vec<PlanRow>)> {
    if matches!(budget, Budget::LatencyMs(_)) && profile.is_none() {
        return Err(RuntimeError::InvalidInput("a latency budget needs a device profile".into()));
    }
    let ctx = cfg.max_seq_len() / 2;
    let mut rows: Vec<PlanRow> = candidates(cfg)
        .into_iter()
        .map(|(name, s)| PlanRow {
            params: s.params(cfg),
            flops: s.flops_per_token(cfg, ctx),
            latency_ms: profile.map(|p| p.predict(cfg, &s)),
            loss: None,
            name,
            submodel: s,
        })
        .collect();
    let fits = |r: &PlanRow| match budget {
        Budget::Params(p) => r.params <= p,
        Budget::Flops(f) => r.flops <= f,
        Budget::LatencyMs(ms) => r.latency_ms.is_some_and(|l| l <= ms),
    };
    let smallest = rows.iter().min_by_key(|r| r.params).map(|r| (r.params, r.flops, r.latency_ms));
    rows.retain(fits);
    if rows.is_empty() {
        let (p, f, l) = smallest.expect("there is always a candidate");
        return Err(RuntimeError::InvalidInput(format!(
            "no submodel fits {budget:?}: the smallest needs {p} params, {f} FLOPs/token{}",
            l.map(|l| format!(", {l:.2} ms/token")).unwrap_or_default()
        )));
    }
    rows.sort_by(|a, b| b.params.cmp(&a.params).then(a.flops.cmp(&b.flops)));
    if let Some(score) = score.as_mut() {
        // Always score the largest feasible named granularity too, so the pick is never worse than it.
        let named = rows.iter().position(|r| cfg.granularity(&r.name).is_some());
        for (i, r) in rows.iter_mut().enumerate() {
            if i < max_scored.max(1) || Some(i) == named {
                r.loss = Some(score(&r.submodel)?);
            }
        }
        let best = rows
            .iter()
            .filter(|r| r.loss.is_some())
            .min_by(|a, b| a.loss.unwrap().total_cmp(&b.loss.unwrap()))
            .expect("scored at least one")
            .clone();
        return Ok((best, rows));
    }
    Ok((rows[0].clone(), rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_exceeds_the_budget_and_errors_when_impossible() {
        let cfg = ModelConfig::gpt2_style(64, 32, 4, 4, 128, 32);
        let full = Submodel::full(&cfg).params(&cfg);
        let s = Submodel::named(&cfg, "s").unwrap().params(&cfg);
        for frac in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let b = s + ((full - s) as f64 * frac) as u64;
            let (best, all) = plan(&cfg, Budget::Params(b), None, None, 0).unwrap();
            assert!(best.params <= b && all.iter().all(|r| r.params <= b));
        }
        let e = plan(&cfg, Budget::Params(10), None, None, 0).unwrap_err().to_string();
        assert!(e.contains("no submodel fits"), "{e}");
        assert!(plan(&cfg, Budget::LatencyMs(1.0), None, None, 0).is_err());
        let mut calls = 0;
        let mut score = |s: &Submodel| {
            calls += 1;
            Ok(s.widths.iter().sum::<usize>() as f64) // prefer narrow: checks ranking uses the score
        };
        let (best, _) = plan(&cfg, Budget::Params(full), None, Some(&mut score), 3).unwrap();
        assert_eq!(calls, 3, "xl is the largest candidate, so among the top 3");
        assert_ne!(best.name, "xl");
        // Between l and xl, l,l,..,xl mixes outrank `l`, which is still scored.
        let l = Submodel::named(&cfg, "l").unwrap().params(&cfg);
        let mut scored = vec![];
        let mut record = |s: &Submodel| {
            scored.push(s.clone());
            Ok(0.0)
        };
        plan(&cfg, Budget::Params(full - 1), None, Some(&mut record), 2).unwrap();
        assert_eq!(scored.len(), 3, "the top 2 plus the largest feasible named granularity");
        assert!(scored.iter().any(|s| s.params(&cfg) == l));
    }
}
