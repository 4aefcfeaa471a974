//! Governor traces: CSV (step, submodel, ms, tokens/s) and PNG plots beside it.

use std::path::Path;

use anyhow::{Context, Result};
use matformer_runtime::StepTrace;
use matformer_train::log::{line_plot, Series};

/// Write `trace` as CSV at `path`, plus `<path>.png` (tokens/s vs target) and `<path>.rungs.png` (submodel).
pub fn write_trace(path: &Path, trace: &[StepTrace], target_tps: f64, rungs: &[String]) -> Result<()> {
    let mut csv = String::from("step,submodel,ms,tokens_per_s,target_tps\n");
    for t in trace {
        csv.push_str(&format!("{},{},{:.3},{:.2},{}\n", t.step, t.submodel, t.secs * 1e3, 1.0 / t.secs, target_tps));
    }
    std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    let decode = || trace.iter().skip(1); // step 0 is the prefill
    let tps = Series::line("tokens/s", decode().map(|t| (t.step as f64, 1.0 / t.secs)).collect());
    let target = Series::line("target", decode().map(|t| (t.step as f64, target_tps)).collect());
    line_plot(&path.with_extension("png"), "governed decode speed", "step", "tokens/s", &[tps, target])?;
    let level = |name: &str| rungs.iter().position(|r| r == name).unwrap_or(0) as f64;
    let rung = Series::line(
        format!("submodel (0 = {}, {} = {})", rungs[0], rungs.len() - 1, rungs[rungs.len() - 1]),
        decode().map(|t| (t.step as f64, level(&t.submodel))).collect(),
    );
    line_plot(&path.with_extension("rungs.png"), "governor's submodel", "step", "rung", &[rung])?;
    Ok(())
}
