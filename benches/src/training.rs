//! Training throughput on the CPU: tokens/s (MatLM) and images/s (MatViT) for the shipped presets, and the
//! cost of one joint step (all granularities on the same batch) relative to one xl-only step.

use anyhow::Result;
use matformer_train::{bench, Objective, TrainConfig};
use serde_json::{json, Value};

fn family(cfg: TrainConfig, steps: usize) -> Result<Value> {
    let joint = bench(&cfg, steps)?;
    let xl = bench(&TrainConfig { objective: Objective::Baseline("xl".into()), ..cfg.clone() }, steps)?;
    Ok(json!({
        "preset": cfg.name, "unit": joint.unit, "batch_size": cfg.batch_size, "steps": steps,
        "joint_items_per_s": joint.items_per_s, "joint_s_per_step": joint.seconds_per_step,
        "xl_items_per_s": xl.items_per_s, "xl_s_per_step": xl.seconds_per_step,
        "joint_over_xl": joint.seconds_per_step / xl.seconds_per_step,
    }))
}

/// Both presets; the ViT one is skipped (with the reason) when Fashion-MNIST is not installed.
pub fn run(quick: bool) -> Result<Value> {
    let steps = if quick { 3 } else { 12 };
    let lm = family(TrainConfig::matlm_shakespeare(), steps)?;
    let vit = family(TrainConfig::matvit_fashion(), steps * 4).unwrap_or_else(|e| json!({ "skipped": e.to_string() }));
    Ok(json!({ "matlm": lm, "matvit": vit }))
}
