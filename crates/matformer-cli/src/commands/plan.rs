//! `matformer plan` (Mix'n'Match planner) and `matformer consistency`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use matformer_graph::mixnmatch::{read_slicing_csv, write_slicing_csv, Budget, SliceConfig};
use matformer_graph::Submodel;
use matformer_runtime::{consistency as run_consistency, load_model, mean_loss, plan as run_plan, profile_latency};

use super::human;
use crate::DEFAULT_MODEL;

/// Arguments of `matformer plan`.
#[derive(Args)]
pub struct PlanArgs {
    /// Model file or directory.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: PathBuf,
    /// `params=<n>`, `flops=<n>` (per token) or `latency=<ms>` (per decoded token on this device); k/M/G suffixes.
    #[arg(long)]
    budget: Option<String>,
    /// Rank candidates by measured loss on this text file (the largest few feasible ones are evaluated).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Tokens of --data to evaluate each candidate on.
    #[arg(long, default_value_t = 4096)]
    limit: usize,
    /// Candidates to evaluate with --data.
    #[arg(long, default_value_t = 8)]
    max_evals: usize,
    /// Import a Gemma-3n-style slicing table (CSV: name, ffn_widths, skipped_layers) and report each row.
    #[arg(long)]
    import: Option<PathBuf>,
    /// Export the feasible candidates as a slicing table.
    #[arg(long)]
    export: Option<PathBuf>,
}

/// Arguments of `matformer consistency`.
#[derive(Args)]
pub struct ConsistencyArgs {
    /// Model file or directory.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: PathBuf,
    /// Text file to compare predictions on.
    #[arg(long)]
    data: PathBuf,
    /// Tokens of --data to use.
    #[arg(long, default_value_t = 4096)]
    limit: usize,
}

fn read_tokens(m: &matformer_runtime::LoadedModel, path: &PathBuf, limit: usize) -> Result<Vec<u32>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut t = m.tokenizer.encode(&text)?;
    t.truncate(limit);
    if t.len() < 2 {
        bail!("{} has fewer than two tokens", path.display());
    }
    Ok(t)
}

/// `matformer plan`.
pub fn plan(a: PlanArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let cfg = m.weights.config.clone();
    let tokens = a.data.as_ref().map(|d| read_tokens(&m, d, a.limit)).transpose()?;
    let mut exec = super::device::lm(Arc::new(m.weights.clone()))?;
    let window = cfg.max_seq_len();
    if let Some(path) = &a.import {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let rows = read_slicing_csv(&cfg, &text)?;
        println!("{:<16} {:>10} {:>12} {:>8}", "name", "params", "FLOPs/tok", "loss");
        for r in rows {
            let loss = match &tokens {
                Some(t) => format!("{:.4}", mean_loss(&mut exec, t, &r.submodel, window)?),
                None => "-".into(),
            };
            let f = r.submodel.flops_per_token(&cfg, cfg.max_seq_len() / 2);
            println!("{:<16} {:>10} {:>12} {:>8}", r.name, human(r.submodel.params(&cfg)), human(f), loss);
        }
        return Ok(());
    }
    let budget = Budget::parse(a.budget.as_deref().context("--budget is required (or --import a table)")?)?;
    let profile = if matches!(budget, Budget::LatencyMs(_)) {
        eprintln!("[matformer] profiling decode latency on {}", matformer_runtime::LmExecutor::device_name(&exec));
        let p = profile_latency(&mut exec, 16)?;
        eprintln!("[matformer] latency ≈ {:.3} ms + {:.3e} ms/FLOP", p.base_ms, p.ms_per_flop);
        Some(p)
    } else {
        None
    };
    let mut scorer = |s: &Submodel| mean_loss(&mut exec, tokens.as_ref().expect("checked"), s, window);
    let score: Option<matformer_runtime::planner::Scorer<'_>> = if tokens.is_some() { Some(&mut scorer) } else { None };
    let (best, rows) = run_plan(&cfg, budget, profile.as_ref(), score, a.max_evals)?;
    println!("{:<32} {:>10} {:>12} {:>10} {:>8}", "candidate (per-layer)", "params", "FLOPs/tok", "ms/tok", "loss");
    for r in rows.iter().take(12) {
        println!(
            "{:<32} {:>10} {:>12} {:>10} {:>8}",
            r.name,
            human(r.params),
            human(r.flops),
            r.latency_ms.map_or("-".into(), |l| format!("{l:.2}")),
            r.loss.map_or("-".into(), |l| format!("{l:.4}"))
        );
    }
    println!("\nbest under {budget:?}: {}  ({} params)", best.name, human(best.params));
    if let Some(path) = &a.export {
        let table: Vec<SliceConfig> =
            rows.iter().map(|r| SliceConfig { name: r.name.replace(',', "-"), submodel: r.submodel.clone() }).collect();
        std::fs::write(path, write_slicing_csv(&table)).with_context(|| format!("writing {}", path.display()))?;
        println!("exported {} rows to {}", table.len(), path.display());
    }
    Ok(())
}

/// `matformer consistency`.
pub fn consistency(a: ConsistencyArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let cfg = m.weights.config.clone();
    let tokens = read_tokens(&m, &a.data, a.limit)?;
    let mut exec = super::device::lm(Arc::new(m.weights))?;
    let full = Submodel::full(&cfg);
    let subs: Vec<Submodel> =
        cfg.granularities.iter().map(|g| Submodel::named(&cfg, &g.name)).collect::<Result<_, _>>()?;
    let res = run_consistency(&mut exec, &tokens, &full, &subs, cfg.max_seq_len())?;
    println!("{} positions of {}", res[0].positions, a.data.display());
    println!("{:<8} {:>10} {:>16} {:>12}", "submodel", "params", "greedy agree", "KL(xl||sub)");
    for (g, (s, c)) in cfg.granularities.iter().zip(subs.iter().zip(&res)) {
        println!("{:<8} {:>10} {:>15.2}% {:>12.4}", g.name, human(s.params(&cfg)), 100.0 * c.agreement, c.kl);
    }
    Ok(())
}
