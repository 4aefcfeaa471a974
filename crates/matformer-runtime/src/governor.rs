//! A load governor: picks the submodel at each decode step to hold a target speed as the compute available
//! changes. Switching is free (the submodel is a per-call argument), so the governor can react per token.

use std::time::Instant;

use matformer_graph::{ModelConfig, Submodel};

use crate::error::{Result, RuntimeError};
use crate::executor::{validate_tokens, LmExecutor, Logits};
use crate::generate::{Generation, StopReason};
use crate::sampling::{Sampler, SamplingParams};

/// Consecutive steps that must predict a larger rung fits before the governor steps up one rung.
pub const UP_AFTER: usize = 8;

/// One rung of the governor's ladder: a submodel and its relative cost.
#[derive(Clone, Debug)]
pub struct Rung {
    /// Display name (granularity name or spec).
    pub name: String,
    /// The submodel.
    pub submodel: Submodel,
    /// Relative cost per token (FLOPs per token, or measured seconds).
    pub cost: f64,
}

/// Holds a target tokens/s by moving along a ladder of submodels ordered from cheapest to largest.
#[derive(Clone, Debug)]
pub struct Governor {
    ladder: Vec<Rung>,
    target_secs: f64,
    level: usize,
    /// Exponential moving average of seconds per unit of cost (how fast the device is right now).
    secs_per_cost: Option<f64>,
    alpha: f64,
    /// Step up only when the larger rung is predicted at or below this fraction of the target latency.
    headroom: f64,
    /// Consecutive steps that have predicted a larger rung would fit (see [`UP_AFTER`]).
    up_streak: usize,
}

impl Governor {
    /// A governor over `ladder` (any order; sorted by cost here) aiming at `target_tps` tokens per second.
    pub fn new(mut ladder: Vec<Rung>, target_tps: f64) -> Result<Self> {
        if ladder.is_empty() {
            return Err(RuntimeError::InvalidInput("the governor needs at least one submodel".into()));
        }
        if !(target_tps > 0.0 && target_tps.is_finite()) {
            return Err(RuntimeError::InvalidInput(format!("target tokens/s must be positive, got {target_tps}")));
        }
        ladder.sort_by(|a, b| a.cost.total_cmp(&b.cost));
        let level = ladder.len() - 1;
        Ok(Governor {
            ladder,
            target_secs: 1.0 / target_tps,
            level,
            secs_per_cost: None,
            alpha: 0.3,
            headroom: 0.85,
            up_streak: 0,
        })
    }

    /// The named granularities of `cfg`, costed by FLOPs per token at half the context.
    pub fn named_ladder(cfg: &ModelConfig) -> Result<Vec<Rung>> {
        cfg.granularities
            .iter()
            .map(|g| {
                let submodel = Submodel::named(cfg, &g.name)?;
                let cost = submodel.flops_per_token(cfg, cfg.max_seq_len() / 2) as f64;
                Ok(Rung { name: g.name.clone(), submodel, cost })
            })
            .collect()
    }

    /// The named granularities costed by their measured decode time on `exec` (`steps` tokens each): unlike
    /// FLOPs, this captures the fixed per-token overheads that do not shrink with the FFN.
    pub fn measured_ladder(exec: &mut dyn LmExecutor, steps: usize) -> Result<Vec<Rung>> {
        let cfg = exec.config().clone();
        let mut ladder = Self::named_ladder(&cfg)?;
        for rung in &mut ladder {
            exec.reset();
            exec.forward(&[0], &rung.submodel, Logits::Last)?;
            let mut times: Vec<f64> = (0..steps.max(3))
                .map(|i| {
                    let t0 = Instant::now();
                    exec.forward(&[(i % cfg.n_outputs()) as u32], &rung.submodel, Logits::Last)
                        .map(|_| t0.elapsed().as_secs_f64())
                })
                .collect::<Result<_>>()?;
            times.sort_by(f64::total_cmp);
            rung.cost = times[times.len() / 2];
        }
        exec.reset();
        // Timing noise must not reorder the ladder: a wider submodel never costs less than a narrower one.
        ladder.sort_by_key(|r| r.submodel.flops_per_token(&cfg, 1));
        for i in 1..ladder.len() {
            ladder[i].cost = ladder[i].cost.max(ladder[i - 1].cost);
        }
        Ok(ladder)
    }

    /// The submodel to use for the next step.
    pub fn current(&self) -> &Rung {
        &self.ladder[self.level]
    }

    /// Index of the current rung (0 = cheapest).
    pub fn level(&self) -> usize {
        self.level
    }

    /// Record how long the last step took with the current rung, and choose the next rung.
    pub fn observe(&mut self, step_secs: f64) {
        let rate = step_secs / self.ladder[self.level].cost;
        let ema = match self.secs_per_cost {
            Some(prev) => prev + self.alpha * (rate - prev),
            None => rate,
        };
        self.secs_per_cost = Some(ema);
        let predict = |rung: &Rung| rung.cost * ema;
        // Largest rung predicted to meet the target; stepping up needs headroom so the choice does not flap.
        let mut best = 0;
        for (i, r) in self.ladder.iter().enumerate() {
            let limit = if i > self.level { self.target_secs * self.headroom } else { self.target_secs };
            if predict(r) <= limit {
                best = i;
            }
        }
        // Down at once (the target is at stake); up one rung at a time, and only after UP_AFTER steps in a
        // row agree: on a shared CPU single steps are often fast by luck, and climbing on them misses the target.
        if best < self.level {
            self.level = best;
            self.up_streak = 0;
        } else if best > self.level {
            self.up_streak += 1;
            if self.up_streak >= UP_AFTER {
                self.level += 1;
                self.up_streak = 0;
            }
        } else {
            self.up_streak = 0;
        }
    }
}

/// One decode step of a governed generation.
#[derive(Clone, Debug, PartialEq)]
pub struct StepTrace {
    /// Step index (0 = the prefill that produced the first token).
    pub step: usize,
    /// Rung used for this step.
    pub submodel: String,
    /// Wall time of the step in seconds.
    pub secs: f64,
}

/// Generate with the governor choosing the submodel before every step; returns the text and the trace.
pub fn generate_governed(
    exec: &mut dyn LmExecutor,
    prompt: &[u32],
    governor: &mut Governor,
    max_tokens: usize,
    params: &SamplingParams,
    mut on_token: impl FnMut(u32, &StepTrace),
) -> Result<(Generation, Vec<StepTrace>)> {
    let mut sampler = Sampler::new(params.clone())?;
    exec.reset();
    validate_tokens(exec.config(), prompt, 0)?;
    let max_seq = exec.config().max_seq_len();
    let mut out = Vec::with_capacity(max_tokens);
    let mut trace = Vec::with_capacity(max_tokens);
    let mut input: Vec<u32> = prompt.to_vec();
    while out.len() < max_tokens {
        if exec.cached_len() + input.len() > max_seq {
            return Ok((Generation { tokens: out, stop: StopReason::ContextFull }, trace));
        }
        // Switching is choosing a rung by index: no copy of the submodel, no allocation.
        let level = governor.level();
        let start = Instant::now();
        let logits = exec.forward(&input, &governor.ladder[level].submodel, Logits::Last)?;
        let next = sampler.sample(&logits);
        let secs = start.elapsed().as_secs_f64();
        // The prefill's cost depends on the prompt length; only decode steps teach the governor.
        if !trace.is_empty() {
            governor.observe(secs);
        }
        let t = StepTrace { step: trace.len(), submodel: governor.ladder[level].name.clone(), secs };
        on_token(next, &t);
        trace.push(t);
        out.push(next);
        input.clear();
        input.push(next);
    }
    Ok((Generation { tokens: out, stop: StopReason::MaxTokens }, trace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder() -> Vec<Rung> {
        let cfg = ModelConfig::gpt2_style(64, 32, 2, 4, 64, 32);
        ["xl", "s", "m", "l"]
            .iter()
            .enumerate()
            .map(|(i, n)| Rung {
                name: n.to_string(),
                submodel: Submodel::named(&cfg, n).unwrap(),
                cost: [8.0, 1.0, 2.0, 4.0][i],
            })
            .collect()
    }

    #[test]
    fn steps_down_under_load_and_back_up() {
        let mut g = Governor::new(ladder(), 100.0).unwrap(); // 10 ms per token
        assert_eq!(g.current().name, "xl");
        // The device runs 1 cost unit per ms: xl takes 8 ms, fine.
        for _ in 0..5 {
            g.observe(g.current().cost * 1e-3);
        }
        assert_eq!(g.current().name, "xl");
        // Load: 4x slower. xl would take 32 ms; l 16 ms; m 8 ms fits.
        for _ in 0..20 {
            g.observe(g.current().cost * 4e-3);
        }
        assert_eq!(g.current().name, "m");
        // Load gone: back to xl, one rung per UP_AFTER agreeing steps.
        for _ in 0..40 {
            g.observe(g.current().cost * 1e-3);
        }
        assert_eq!(g.current().name, "xl");
        // Under load, a lucky fast step now and then does not make it climb.
        for i in 0..80 {
            let slow = if i % 8 >= 5 { 1e-3 } else { 4e-3 }; // three lucky steps in every eight
            g.observe(g.current().cost * slow);
            if i > 16 {
                assert!(g.level() <= 1, "step {i}: climbed to {}", g.current().name);
            }
        }
        // Impossible target: stays on the cheapest rung.
        let mut g = Governor::new(ladder(), 1e6).unwrap();
        g.observe(g.current().cost * 1e-3);
        assert_eq!(g.level(), 0);
        assert!(Governor::new(vec![], 1.0).is_err());
        assert!(Governor::new(ladder(), 0.0).is_err());
    }
}
