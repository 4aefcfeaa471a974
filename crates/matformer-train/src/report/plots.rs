//! The report's PNGs: quality against params (MatFormer, baselines, Mix'n'Match) and consistency with xl.

use std::path::Path;

use anyhow::Result;

use super::FamilyReport;
use crate::log::{line_plot, Series, Style};
use crate::GranEval;

/// Draw `<preset>-quality.png` and `<preset>-consistency.png` into `dir`.
pub fn draw(r: &FamilyReport, dir: &Path) -> Result<()> {
    let mparams = 1e-6;
    let mat: Vec<(f64, f64)> =
        r.rows.iter().map(|row| (row.matformer.params as f64 * mparams, r.metric(&row.matformer))).collect();
    let base: Vec<(f64, f64)> =
        r.rows.iter().map(|row| (row.baseline.params as f64 * mparams, r.metric(&row.baseline))).collect();
    let mix: Vec<(f64, f64)> = r.mix.iter().map(|m| (m.eval.params as f64 * mparams, r.metric(&m.eval))).collect();
    let metric = if r.is_lm { "validation loss (nats/byte)" } else { "test accuracy" };
    let mut quality = vec![
        Series::styled("MatFormer granularities", mat, Style::LinePoints),
        Series::styled("independent baselines", base, Style::LinePoints),
        Series::styled("Mix'n'Match", mix, Style::Points),
    ];
    let mut consistency = Vec::new();
    if let Some(sh) = &r.shipped {
        let label = format!("shipped model ({} steps)", sh.steps);
        let at = |f: &dyn Fn(&(GranEval, super::Agreement)) -> f64| -> Vec<(f64, f64)> {
            sh.rows.iter().map(|row| (row.0.params as f64 * mparams, f(row))).collect()
        };
        quality.push(Series::styled(&label, at(&|(e, _)| r.metric(e)), Style::LinePoints));
        consistency.push(Series::styled(&label, at(&|(_, a)| a.agreement), Style::LinePoints));
    }
    line_plot(
        &dir.join(format!("{}-quality.png", r.preset)),
        &format!("{}: {metric} vs params", r.preset),
        "params (M)",
        metric,
        &quality,
    )?;
    let agree = |f: &dyn Fn(&super::GranRow) -> f64| -> Vec<(f64, f64)> {
        r.rows.iter().map(|row| (row.matformer.params as f64 * mparams, f(row))).collect()
    };
    let mut agreement = vec![
        Series::styled("MatFormer submodel vs its xl", agree(&|row| row.matformer_vs_xl.agreement), Style::LinePoints),
        Series::styled("baseline vs xl baseline", agree(&|row| row.baseline_vs_xl.agreement), Style::LinePoints),
    ];
    agreement.extend(consistency);
    line_plot(
        &dir.join(format!("{}-consistency.png", r.preset)),
        &format!("{}: agreement with xl", r.preset),
        "params (M)",
        "agreement with xl",
        &agreement,
    )
}
