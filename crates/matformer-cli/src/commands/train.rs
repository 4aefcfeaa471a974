//! `matformer train`: joint nested training (CPU), resumable, with progress, CSV logs and PNG plots.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use matformer_train::{train as run_train, Objective, TrainConfig};

/// Arguments of `matformer train`.
#[derive(Args)]
pub struct TrainArgs {
    /// A preset (`matlm-shakespeare`, `matvit-fashion`) or a JSON TrainConfig file.
    #[arg(default_value = "matlm-shakespeare")]
    config: String,
    /// Optimizer steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Sequences (MatLM) or images (MatViT) per step.
    #[arg(long)]
    batch: Option<usize>,
    /// `joint` (sum of all granularities' losses, default), `sampled` (one per step), or `baseline:<name>`.
    #[arg(long)]
    objective: Option<String>,
    /// Run directory: checkpoints, train.csv, eval.csv, PNG plots.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Where to write the final model (`none` to skip).
    #[arg(long)]
    export: Option<String>,
    /// RNG seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Start over instead of resuming from the run directory's checkpoint.
    #[arg(long)]
    no_resume: bool,
    /// Print the resolved config as JSON and exit.
    #[arg(long)]
    print_config: bool,
}

/// `matformer train`.
pub fn train(a: TrainArgs) -> Result<()> {
    let mut cfg = match TrainConfig::preset(&a.config) {
        Some(c) => c,
        None => {
            let text = std::fs::read_to_string(&a.config).with_context(|| {
                format!(
                    "`{}` is neither a preset (matlm-shakespeare, matvit-fashion) nor a readable JSON file",
                    a.config
                )
            })?;
            TrainConfig::from_json(&text)?
        }
    };
    if let Some(s) = a.steps {
        cfg.steps = s;
    }
    if let Some(b) = a.batch {
        cfg.batch_size = b;
    }
    if let Some(s) = a.seed {
        cfg.seed = s;
    }
    if let Some(d) = a.out_dir {
        cfg.out_dir = d;
    }
    if let Some(e) = a.export {
        cfg.export = if e == "none" { None } else { Some(PathBuf::from(e)) };
    }
    if let Some(o) = a.objective {
        cfg.objective = match o.as_str() {
            "joint" => Objective::Joint,
            "sampled" => Objective::Sampled,
            other => match other.strip_prefix("baseline:") {
                Some(g) => Objective::Baseline(g.to_string()),
                None => bail!("unknown objective `{other}` (use joint, sampled or baseline:<granularity>)"),
            },
        };
    }
    cfg.resume = !a.no_resume;
    if a.print_config {
        println!("{}", serde_json::to_string_pretty(&cfg)?);
        return Ok(());
    }
    let summary = run_train(&cfg, true).map_err(|e| anyhow!("training failed: {e:#}"))?;
    println!(
        "steps {}..{} in {:.1}s ({:.0} items/s; run total {:.0}s), run directory {}",
        summary.start_step,
        summary.end_step,
        summary.seconds,
        summary.items_per_s,
        summary.total_seconds,
        summary.out_dir.display()
    );
    for e in &summary.final_eval {
        println!(
            "  {:<4} width {:>6} params {:>9} loss {:.4} accuracy {:.4}",
            e.name, e.width, e.params, e.loss, e.accuracy
        );
    }
    if let Some(p) = &summary.export {
        println!("model written to {}", p.display());
    }
    Ok(())
}
