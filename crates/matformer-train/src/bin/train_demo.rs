//! Train a shipped model (or any JSON config) from the command line; resumable, so it can run under
//! `nohup` and be restarted after a kill.
//!
//! ```text
//! cargo run --release -p matformer-train --bin train_demo -- matlm-shakespeare
//! cargo run --release -p matformer-train --bin train_demo -- run.json --steps 200 --out-dir runs/x
//! ```
//! Options: `--steps N`, `--batch N`, `--out-dir DIR`, `--export PATH|none`, `--objective joint|sampled|baseline:G`,
//! `--seed N`, `--lr X`, `--no-resume`, `--quiet`, `--print-config`.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use matformer_train::{train, Objective, TrainConfig};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(first) = args.first() else {
        bail!("usage: train_demo <matlm-shakespeare|matvit-fashion|config.json> [options]");
    };
    let mut cfg = match TrainConfig::preset(first) {
        Some(c) => c,
        None => TrainConfig::from_json(&std::fs::read_to_string(first).map_err(|e| anyhow!("{first}: {e}"))?)?,
    };
    let mut progress = true;
    let mut print = false;
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| anyhow!("{a} needs a value"));
        match a.as_str() {
            "--steps" => cfg.steps = val()?.parse()?,
            "--batch" => cfg.batch_size = val()?.parse()?,
            "--seed" => cfg.seed = val()?.parse()?,
            "--lr" => cfg.optim.lr = val()?.parse()?,
            "--out-dir" => cfg.out_dir = PathBuf::from(val()?),
            "--export" => {
                let v = val()?;
                cfg.export = if v == "none" { None } else { Some(PathBuf::from(v)) };
            }
            "--objective" => {
                let v = val()?;
                cfg.objective = match v.as_str() {
                    "joint" => Objective::Joint,
                    "sampled" => Objective::Sampled,
                    b if b.starts_with("baseline:") => Objective::Baseline(b["baseline:".len()..].to_string()),
                    _ => bail!("--objective must be joint, sampled or baseline:<granularity>"),
                };
            }
            "--no-resume" => cfg.resume = false,
            "--quiet" => progress = false,
            "--print-config" => print = true,
            _ => bail!("unknown option {a}"),
        }
    }
    if print {
        println!("{}", serde_json::to_string_pretty(&cfg)?);
        return Ok(());
    }
    let s = train(&cfg, progress)?;
    println!(
        "{}: steps {}..{} in {:.1}s ({:.0} items/s); total training time {:.0}s",
        cfg.name, s.start_step, s.end_step, s.seconds, s.items_per_s, s.total_seconds
    );
    for e in &s.final_eval {
        println!(
            "  {:>4} width {:>5} params {:>9} loss {:.4} acc {:.4}",
            e.name, e.width, e.params, e.loss, e.accuracy
        );
    }
    Ok(())
}
