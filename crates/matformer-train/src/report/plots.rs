//! The report's PNGs: quality against params (MatFormer, baselines, Mix'n'Match) and consistency with xl.

use std::path::Path;

use anyhow::Result;

use super::FamilyReport;
use crate::log::{line_plot, Series, Style};

/// Draw `<preset>-quality.png` and `<preset>-consistency.png` into `dir`.
pub fn draw(r: &FamilyReport, dir: &Path) -> Result<()> {
    let mparams = 1e-6;
    let mat: Vec<(f64, f64)> =
        r.rows.iter().map(|row| (row.matformer.params as f64 * mparams, r.metric(&row.matformer))).collect();
    let base: Vec<(f64, f64)> =
        r.rows.iter().map(|row| (row.baseline.params as f64 * mparams, r.metric(&row.baseline))).collect();
    let mix: Vec<(f64, f64)> = r.mix.iter().map(|m| (m.eval.params as f64 * mparams, r.metric(&m.eval))).collect();
    let metric = if r.is_lm { "validation loss (nats/byte)" } else { "test accuracy" };
    line_plot(
        &dir.join(format!("{}-quality.png", r.preset)),
        &format!("{}: {metric} vs params", r.preset),
        "params (M)",
        metric,
        &[
            Series::styled("MatFormer granularities", mat, Style::LinePoints),
            Series::styled("independent baselines", base, Style::LinePoints),
            Series::styled("Mix'n'Match", mix, Style::Points),
        ],
    )?;
    let agree = |f: &dyn Fn(&super::GranRow) -> f64| -> Vec<(f64, f64)> {
        r.rows.iter().map(|row| (row.matformer.params as f64 * mparams, f(row))).collect()
    };
    line_plot(
        &dir.join(format!("{}-consistency.png", r.preset)),
        &format!("{}: agreement with xl", r.preset),
        "params (M)",
        "agreement with xl",
        &[
            Series::styled(
                "MatFormer submodel vs its xl",
                agree(&|row| row.matformer_vs_xl.agreement),
                Style::LinePoints,
            ),
            Series::styled("baseline vs xl baseline", agree(&|row| row.baseline_vs_xl.agreement), Style::LinePoints),
        ],
    )
}
