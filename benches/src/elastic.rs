//! Elastic-inference measurements: speculative decoding speedup, submodel switch cost, planner table,
//! governor trace under a CPU load.

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use matformer_graph::mixnmatch::Budget;
use matformer_graph::{ModelConfig, ModelWeights, Submodel};
use matformer_runtime::{
    generate, generate_governed, load_model, mean_loss, plan, speculative_generate, CpuLm, Governor, LmExecutor,
    Logits, SamplingParams,
};
use serde_json::{json, Value};

use crate::alloc_count::allocations;

const SHIPPED: &str = "models/matlm-shakespeare.safetensors";
const VALIDATION: &str = "data/shakespeare/valid.txt";

fn model() -> Result<(ModelWeights, String)> {
    match load_model(Path::new(SHIPPED)) {
        Ok(m) => Ok((m.weights, SHIPPED.to_string())),
        Err(_) => Ok((
            ModelWeights::random(ModelConfig::gpt2_style(256, 256, 4, 4, 1024, 256), 0)?,
            "random (no shipped model)".into(),
        )),
    }
}

fn speculative(w: &Arc<ModelWeights>, quick: bool) -> Result<Value> {
    let cfg = &w.config;
    let (mut d, mut t) = (CpuLm::new(w.clone())?, CpuLm::new(w.clone())?);
    let xl = Submodel::full(cfg);
    let prompt: Vec<u32> = "KING HENRY:\nOnce more unto the breach".bytes().map(u32::from).collect();
    let n = (if quick { 48 } else { 160 }).min(cfg.max_seq_len() - prompt.len());
    // Best of `reps` runs each: the machine may be shared, and the fastest run is the least disturbed.
    let reps = if quick { 1 } else { 3 };
    let mut base = f64::INFINITY;
    let mut greedy = None;
    for _ in 0..reps {
        let t0 = Instant::now();
        greedy = Some(generate(&mut t, &prompt, &xl, n, &SamplingParams::default(), |_| {})?);
        base = base.min(t0.elapsed().as_secs_f64());
    }
    let greedy = greedy.expect("reps >= 1");
    let xl_step = base / n as f64;
    let mut rows = vec![];
    // Named drafts, plus one that also skips layers (cheaper, less often right).
    let skip_draft = (cfg.n_layers >= 4).then(|| format!("s;skip=1,{}", cfg.n_layers - 2));
    for draft in ["s", "m", "l"].into_iter().map(String::from).chain(skip_draft) {
        let ds = Submodel::parse(cfg, &draft)?;
        for k in [2usize, 3, 4, 6] {
            let mut best = None::<(f64, _)>;
            for _ in 0..reps {
                let t0 = Instant::now();
                let g = speculative_generate(&mut d, &mut t, &prompt, &ds, &xl, k, n, |_| {})?;
                let secs = t0.elapsed().as_secs_f64();
                if best.as_ref().is_none_or(|b| secs < b.0) {
                    best = Some((secs, g));
                }
            }
            let (secs, g) = best.expect("reps >= 1");
            let st = &g.stats;
            // Costs relative to one xl decode step: speculation pays off only when
            // k·draft_cost + verify_cost < tokens gained per round.
            rows.push(json!({ "draft": draft, "k": k, "acceptance": st.acceptance(), "speedup": base / secs,
                "identical": g.tokens == greedy.tokens,
                "draft_cost": st.draft_secs / st.draft_steps.max(1) as f64 / xl_step,
                "verify_cost": st.verify_secs / st.verify_passes.max(1) as f64 / xl_step,
                "tokens_per_round": g.tokens.len() as f64 / st.verify_passes.max(1) as f64 }));
        }
    }
    Ok(json!({ "xl_tokens_per_s": n as f64 / base, "tokens": n, "rows": rows }))
}

fn switch_cost(cfg: &ModelConfig) -> Result<Value> {
    let mut gov = Governor::new(Governor::named_ladder(cfg)?, 100.0)?;
    let iters = 1_000_000;
    for i in 0..1000 {
        gov.observe(if i % 2 == 0 { 1e-6 } else { 1.0 });
    }
    let before = allocations();
    let t0 = Instant::now();
    for i in 0..iters {
        // Alternate fast and slow observations so the rung changes nearly every step.
        gov.observe(if i % 2 == 0 { 1e-6 } else { 1.0 });
        black_box(&gov.current().submodel);
    }
    let ns = t0.elapsed().as_secs_f64() * 1e9 / iters as f64;
    Ok(json!({ "ns_per_switch": ns, "allocations": allocations() - before, "iterations": iters }))
}

fn planner(w: &Arc<ModelWeights>, quick: bool) -> Result<Value> {
    let cfg = &w.config;
    let mut exec = CpuLm::new(w.clone())?;
    let text = std::fs::read_to_string(VALIDATION)
        .unwrap_or_else(|_| "To be, or not to be: that is the question.\n".repeat(50));
    let tokens: Vec<u32> = text.bytes().map(u32::from).take(if quick { 512 } else { 4096 }).collect();
    let (s, full) = (Submodel::named(cfg, "s")?.params(cfg), Submodel::full(cfg).params(cfg));
    let window = cfg.max_seq_len();
    let mut rows = vec![];
    for frac in [0.2, 0.4, 0.6, 0.8, 1.0] {
        let budget = s + ((full - s) as f64 * frac) as u64;
        let mut score = |sub: &Submodel| mean_loss(&mut exec, &tokens, sub, window);
        let (best, _) = plan(cfg, Budget::Params(budget), None, Some(&mut score), if quick { 2 } else { 6 })?;
        // The nearest named granularity under the same budget.
        let named = cfg
            .granularities
            .iter()
            .rev()
            .map(|g| Submodel::named(cfg, &g.name).unwrap())
            .find(|x| x.params(cfg) <= budget);
        let named_loss = match &named {
            Some(n) => Some(mean_loss(&mut exec, &tokens, n, window)?),
            None => None,
        };
        let mut lat = CpuLm::new(w.clone())?;
        lat.forward(&[1], &best.submodel, Logits::Last)?;
        let t0 = Instant::now();
        for i in 0..32u32 {
            lat.forward(&[i % 200], &best.submodel, Logits::Last)?;
        }
        let ms = t0.elapsed().as_secs_f64() * 1e3 / 32.0;
        rows.push(json!({ "budget_params": budget, "spec": best.name, "params": best.params, "loss": best.loss,
            "named_loss": named_loss, "named": named.map(|n| n.to_spec(cfg)), "ms_per_token": ms }));
    }
    Ok(Value::Array(rows))
}

fn governor_trace(w: &Arc<ModelWeights>, quick: bool) -> Result<Value> {
    let cfg = &w.config;
    let mut exec = CpuLm::new(w.clone())?;
    let ladder = Governor::measured_ladder(&mut exec, 8)?;
    let mut probe = Governor::new(ladder.clone(), 1e-9)?;
    let (_, t) = generate_governed(&mut exec, &[1, 2, 3], &mut probe, 24, &SamplingParams::default(), |_, _| {})?;
    let xl_secs = t[4..].iter().map(|s| s.secs).sum::<f64>() / (t.len() - 4) as f64;
    let target = 0.8 / xl_secs;
    // Three phases (idle, 4 spinning threads, idle) long enough in wall time for the load to bite and
    // the governor to react: each is a run of generations of up to the context length, with one governor
    // carried across them. The prefill step of each generation is left out of the trace.
    let max_new = cfg.max_seq_len().saturating_sub(4).max(1);
    let per_phase = if quick { max_new } else { ((0.5 / xl_secs) as usize).max(max_new) };
    let mut gov = Governor::new(ladder, target)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = vec![];
    let (mut steps, mut bounds) = (Vec::<Value>::new(), vec![]);
    for phase in 0..3 {
        if phase == 1 {
            for _ in 0..4 {
                let st = stop.clone();
                load.push(std::thread::spawn(move || {
                    let mut x = 1.0f64;
                    while !st.load(Ordering::Relaxed) {
                        x = (x * 1.000001).sqrt() + 1.0;
                    }
                    black_box(x);
                }));
            }
        }
        if phase == 2 {
            stop.store(true, Ordering::Relaxed);
            for h in load.drain(..) {
                let _ = h.join();
            }
        }
        if phase > 0 {
            bounds.push(steps.len());
        }
        let mut done = 0;
        while done < per_phase {
            let (_, trace) =
                generate_governed(&mut exec, &[1, 2, 3], &mut gov, max_new, &SamplingParams::default(), |_, _| {})?;
            for s in trace.iter().skip(1) {
                steps.push(json!({ "step": steps.len(), "submodel": s.submodel, "ms": s.secs * 1e3 }));
            }
            done += trace.len().saturating_sub(1).max(1);
        }
    }
    Ok(json!({ "target_tps": target, "xl_idle_tps": 1.0 / xl_secs, "load_steps": bounds, "trace": steps }))
}

/// Run every elastic measurement on the shipped model (or a random one when it is missing).
pub fn run(quick: bool) -> Result<Value> {
    let (w, name) = model()?;
    let w = Arc::new(w);
    eprintln!("[bench] elastic: speculative decoding on {name}");
    let spec = speculative(&w, quick)?;
    eprintln!("[bench] elastic: switch cost, planner, governor");
    Ok(json!({ "model": name, "speculative": spec, "switch": switch_cost(&w.config)?, "planner": planner(&w, quick)?,
        "governor": governor_trace(&w, quick)? }))
}
