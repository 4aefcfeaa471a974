//! The subcommands' implementations, one file per command where they grow.

mod device;
mod generate;
mod plan;
mod trace;
mod train;

pub use device::set_device;
pub use generate::{generate, GenerateArgs};
pub use plan::{consistency, plan, ConsistencyArgs, PlanArgs};
pub use train::{train, TrainArgs};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use matformer_graph::{checkpoint, extract::extract as extract_submodel, DType, Family, ModelConfig, Submodel};
use matformer_runtime::{load_model, mean_loss};
use matformer_train::data::idx;

use crate::DEFAULT_MODEL;

/// Arguments of `matformer eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// Model file or directory.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: PathBuf,
    /// A UTF-8 text file (MatLM) or an IDX images file, e.g. t10k-images-idx3-ubyte.gz (MatViT).
    #[arg(long)]
    data: PathBuf,
    /// Submodel spec to evaluate.
    #[arg(long, conflicts_with = "all")]
    submodel: Option<String>,
    /// Evaluate every named granularity.
    #[arg(long)]
    all: bool,
    /// Cap on evaluated tokens (MatLM) or images (MatViT), to keep runs short.
    #[arg(long)]
    limit: Option<usize>,
}

fn submodels(cfg: &ModelConfig, spec: Option<&str>, all: bool) -> Result<Vec<(String, Submodel)>> {
    match spec {
        Some(s) if !all => Ok(vec![(s.to_string(), Submodel::parse(cfg, s)?)]),
        _ => cfg.granularities.iter().map(|g| Ok((g.name.clone(), Submodel::named(cfg, &g.name)?))).collect(),
    }
}

pub(crate) fn human(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}G", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// `matformer info`.
pub fn info(model: &Path) -> Result<()> {
    let m = load_model(model)?;
    let cfg = &m.weights.config;
    println!("model: {}", model.display());
    println!("dtype: {:?}, stored parameters: {}", m.weights.dtype(), human(m.weights.n_params() as u64));
    match &cfg.family {
        Family::Lm { .. } => println!("tokenizer: {}", m.tokenizer.kind()),
        Family::Vit { .. } => {}
    }
    println!("device: {}", device::describe());
    println!("config:\n{}", cfg.to_json());
    let ctx = cfg.max_seq_len();
    println!("\n{:<6} {:>8} {:>12} {:>18}", "name", "ffn", "params", format!("FLOPs/token@{ctx}"));
    for g in &cfg.granularities {
        let s = Submodel::named(cfg, &g.name)?;
        println!(
            "{:<6} {:>8} {:>12} {:>18}",
            g.name,
            g.width,
            human(s.params(cfg)),
            human(s.flops_per_token(cfg, ctx))
        );
    }
    Ok(())
}

/// `matformer extract`.
pub fn extract(model: &Path, spec: &str, out: &Path, dtype: Option<&str>) -> Result<()> {
    let m = load_model(model)?;
    let sub = Submodel::parse(&m.weights.config, spec)?;
    let mut small = extract_submodel(&m.weights, &sub)?;
    if let Some(d) = dtype {
        let dt = DType::parse(d).with_context(|| format!("unknown dtype `{d}` (use f32, f16 or bf16)"))?;
        small = small.to_dtype(dt);
    }
    checkpoint::save(&small, out)?;
    if let matformer_runtime::Tokenizer::Hf(_) = m.tokenizer {
        let src = if model.is_dir() { model.join("tokenizer.json") } else { model.with_extension("tokenizer.json") };
        std::fs::copy(&src, out.with_extension("tokenizer.json")).context("copying tokenizer.json")?;
    }
    let bytes = std::fs::metadata(out)?.len();
    println!(
        "wrote {} : submodel {} -> {} layers, {} params, {:.2} MB",
        out.display(),
        sub.to_spec(&m.weights.config),
        small.config.n_layers,
        human(small.n_params() as u64),
        bytes as f64 / 1e6
    );
    Ok(())
}

/// `matformer eval`.
pub fn eval(a: EvalArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    let cfg = m.weights.config.clone();
    let subs = submodels(&cfg, a.submodel.as_deref(), a.all)?;
    match cfg.family {
        Family::Lm { max_seq_len, .. } => {
            let text = std::fs::read_to_string(&a.data).with_context(|| format!("reading {}", a.data.display()))?;
            let mut tokens = m.tokenizer.encode(&text)?;
            if let Some(l) = a.limit {
                tokens.truncate(l);
            }
            if tokens.len() < 2 {
                bail!("{} has fewer than two tokens", a.data.display());
            }
            let mut exec = device::lm(Arc::new(m.weights))?;
            println!("{} tokens from {}", tokens.len(), a.data.display());
            println!("{:<24} {:>12} {:>10} {:>12}", "submodel", "params", "loss", "perplexity");
            for (name, sub) in subs {
                let loss = mean_loss(&mut exec, &tokens, &sub, max_seq_len)?;
                println!("{:<24} {:>12} {:>10.4} {:>12.3}", name, human(sub.params(&cfg)), loss, loss.exp());
            }
        }
        Family::Vit { image_size, channels, .. } => {
            let set = idx::load_idx(&a.data, &idx::labels_path_for(&a.data)).map_err(anyhow::Error::msg)?;
            if channels != 1 || set.rows != image_size || set.cols != image_size {
                bail!(
                    "model expects {channels}x{image_size}x{image_size} images, data has 1x{}x{}",
                    set.rows,
                    set.cols
                );
            }
            let n = a.limit.unwrap_or(set.len()).min(set.len());
            let mut vit = device::vit(Arc::new(m.weights))?;
            println!("{n} images from {}", a.data.display());
            println!("{:<24} {:>12} {:>10}", "submodel", "params", "accuracy");
            for (name, sub) in subs {
                let mut correct = 0;
                for start in (0..n).step_by(64) {
                    let end = (start + 64).min(n);
                    let px = &set.pixels[start * image_size * image_size..end * image_size * image_size];
                    let out = vit.forward(&sub, px, end - start)?;
                    let k = out.logits.len() / (end - start);
                    for (i, row) in out.logits.chunks_exact(k).enumerate() {
                        correct +=
                            (matformer_runtime::sampling::argmax(row) == set.labels[start + i] as usize) as usize;
                    }
                }
                println!("{:<24} {:>12} {:>9.2}%", name, human(sub.params(&cfg)), 100.0 * correct as f64 / n as f64);
            }
        }
    }
    Ok(())
}
