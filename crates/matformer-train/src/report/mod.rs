//! The paper-style evaluation report behind `cargo xtask report`.
//!
//! For each shipped preset it compares the MatFormer model's granularities with independently trained
//! baselines of each width (same preset, [`Objective::Baseline`], the same number of steps, seed and
//! data order). The MatFormer model is the shipped one, or, for a preset with
//! [`TrainConfig::report_steps`], the same recipe trained for that many steps (see
//! [`comparison_config`]); the shipped model's own granularities are then reported beside it. It
//! evaluates Mix'n'Match submodels between neighbouring granularities, and measures how
//! consistent each submodel is with its own xl (MatFormer: the same weights at full width; baselines:
//! the separately trained xl baseline). [`markdown`] renders the result; [`plots`] draws it.

pub mod markdown;
pub mod plots;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use matformer_cpu::fast::{agreement_kl, RowAgreement};
use matformer_graph::{checkpoint, mixnmatch, DType, ModelWeights, Submodel};
use serde::{Deserialize, Serialize};

use crate::model::{Batch, Workspace};
use crate::{eval_batches, evaluate_with, granularity_submodels, train, GranEval, Objective, TrainConfig};

/// What to report on and where.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Repository root (presets' paths are relative to it).
    pub root: PathBuf,
    /// Where `README.md`, the PNGs and `report.json` go.
    pub out_dir: PathBuf,
    /// Presets to report on (`matlm-shakespeare`, `matvit-fashion`).
    pub presets: Vec<String>,
    /// Train missing baselines (resumably, in `runs/report/`) instead of failing.
    pub train_missing: bool,
}

/// One granularity: the MatFormer submodel next to the baseline of the same width.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GranRow {
    /// The MatFormer submodel's quality.
    pub matformer: GranEval,
    /// The independently trained baseline's quality.
    pub baseline: GranEval,
    /// MatFormer submodel vs MatFormer xl.
    pub matformer_vs_xl: Agreement,
    /// Baseline vs the xl baseline.
    pub baseline_vs_xl: Agreement,
}

/// Agreement of a model's predictions with a reference's.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Agreement {
    /// Fraction of predictions (next bytes or classes) with the same argmax.
    pub agreement: f64,
    /// Mean KL(reference ‖ model) in nats.
    pub kl: f64,
}

impl From<RowAgreement> for Agreement {
    fn from(a: RowAgreement) -> Self {
        Agreement { agreement: a.agreement(), kl: a.mean_kl() }
    }
}

/// A Mix'n'Match submodel and where it lies against the line through its neighbouring granularities.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MixPoint {
    /// Per-layer spec, e.g. `m,m,l,l`.
    pub spec: String,
    /// Its quality.
    pub eval: GranEval,
    /// The metric linearly interpolated (in params) between the neighbouring granularities.
    pub line: f64,
    /// `metric − line`, signed so that negative is better than the line.
    pub gap: f64,
}

/// The report for one preset.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FamilyReport {
    /// Preset name.
    pub preset: String,
    /// Whether the metric is validation loss (MatLM) or test accuracy (MatViT).
    pub is_lm: bool,
    /// The MatFormer model evaluated.
    pub model: PathBuf,
    /// Training steps of the MatFormer model and of each baseline.
    pub steps: usize,
    /// Predictions in the evaluation set.
    pub eval_predictions: usize,
    /// One row per granularity, smallest first.
    pub rows: Vec<GranRow>,
    /// Mix'n'Match submodels (not the named granularities), by params.
    pub mix: Vec<MixPoint>,
    /// The shipped model, when it is not the compared one (a preset with `report_steps`).
    #[serde(default)]
    pub shipped: Option<ShippedModel>,
}

/// The shipped model's granularities, reported beside a shorter comparison run of the same recipe.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShippedModel {
    /// Its checkpoint, relative to the repository root.
    pub model: PathBuf,
    /// Its training steps.
    pub steps: usize,
    /// One row per granularity, smallest first: quality, and agreement with its own xl.
    pub rows: Vec<(GranEval, Agreement)>,
}

impl FamilyReport {
    /// The primary metric of `e`: validation loss for a MatLM, test accuracy for a MatViT.
    pub fn metric(&self, e: &GranEval) -> f64 {
        if self.is_lm {
            e.loss
        } else {
            e.accuracy
        }
    }
}

/// The MatFormer run the report compares with baselines: the preset itself, or, when it sets
/// [`TrainConfig::report_steps`], the same recipe trained for that many steps in `runs/report/<name>-joint`.
pub fn comparison_config(preset: &TrainConfig, root: &Path) -> TrainConfig {
    match preset.report_steps {
        Some(steps) if steps != preset.steps => {
            let dir = root.join("runs/report").join(format!("{}-joint", preset.name));
            TrainConfig {
                steps,
                export: Some(dir.with_extension("safetensors")),
                out_dir: dir,
                resume: true,
                stop_after: None,
                report_steps: None,
                ..preset.clone()
            }
        }
        _ => preset.clone(),
    }
}

/// Where the baseline of `preset` at granularity `g` is trained and exported: the [`comparison_config`]
/// with one fixed width.
pub fn baseline_config(preset: &TrainConfig, g: &str, root: &Path) -> TrainConfig {
    let dir = root.join("runs/report").join(format!("{}-baseline-{g}", preset.name));
    TrainConfig {
        objective: Objective::Baseline(g.to_string()),
        export: Some(dir.with_extension("safetensors")),
        out_dir: dir,
        resume: true,
        stop_after: None,
        ..comparison_config(preset, root)
    }
}

/// The weights `cfg` exports, trained (or resumed) first when missing and `opts.train_missing`. Refuses a
/// file that holds another model, and a run directory that records another recipe (left over from an older
/// preset), before resuming it with the wrong schedule.
fn trained_weights(cfg: &TrainConfig, what: &str, opts: &ReportOptions) -> Result<ModelWeights> {
    let path = cfg.export.clone().ok_or_else(|| anyhow!("{what} exports no model"))?;
    let objective = match &cfg.objective {
        Objective::Baseline(g) => format!("baseline:{g}"),
        Objective::Joint => "joint".into(),
        Objective::Sampled => "sampled".into(),
    };
    let stale = |why: &str| {
        anyhow!(
            "{} (run directory {}) {why} (stale after a preset change?); delete both to retrain it",
            path.display(),
            cfg.out_dir.display()
        )
    };
    let recorded = cfg.out_dir.join("config.json");
    if let Ok(text) = std::fs::read_to_string(&recorded) {
        let ran: TrainConfig =
            serde_json::from_str(&text).with_context(|| format!("reading {}", recorded.display()))?;
        if !ran.same_recipe(cfg) || ran.steps != cfg.steps {
            return Err(stale(&format!("records another recipe than the {what}")));
        }
    }
    if !path.is_file() {
        if !opts.train_missing {
            return Err(anyhow!(
                "{what} {} is missing; run `cargo xtask report` without --no-train, or `matformer train {} \
                 --objective {objective} --steps {} --out-dir {} --export {}`",
                path.display(),
                cfg.name,
                cfg.steps,
                cfg.out_dir.display(),
                path.display()
            ));
        }
        eprintln!("[report] training {what} ({} steps)", cfg.steps);
        train(cfg, true)?;
    }
    let w = load_f32(&path)?;
    if w.config != cfg.trained_model()? {
        return Err(stale(&format!("holds a model other than the {what}")));
    }
    Ok(w)
}

fn relative(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

fn load_f32(path: &Path) -> Result<ModelWeights> {
    Ok(checkpoint::load(path).with_context(|| format!("loading {}", path.display()))?.to_dtype(DType::F32))
}

/// Evaluate `sub` of `w`, comparing each batch's predictions with `reference` (per-batch logits).
fn eval_against(
    w: &ModelWeights,
    name: &str,
    sub: &Submodel,
    batches: &[Batch],
    reference: &[Vec<f32>],
    ws: &mut Workspace,
) -> (GranEval, Agreement) {
    let v = w.config.n_outputs();
    let mut acc = RowAgreement::default();
    let e = evaluate_with(w, name, sub, batches, ws, |i, logits| {
        acc += agreement_kl(&reference[i], logits, logits.len() / v, v);
    });
    (e, acc.into())
}

/// Logits of every batch, and the quality, of `sub` of `w`.
fn eval_keep(
    w: &ModelWeights,
    name: &str,
    sub: &Submodel,
    batches: &[Batch],
    ws: &mut Workspace,
) -> (GranEval, Vec<Vec<f32>>) {
    let mut kept = Vec::with_capacity(batches.len());
    let e = evaluate_with(w, name, sub, batches, ws, |_, logits| kept.push(logits.to_vec()));
    (e, kept)
}

/// Every granularity of `w`, smallest first: its quality, and its agreement with `w`'s own xl.
fn granularities_vs_own_xl(
    w: &ModelWeights,
    batches: &[Batch],
    ws: &mut Workspace,
) -> Result<Vec<(GranEval, Agreement)>> {
    let grans = granularity_submodels(&w.config)?;
    let (xl_name, xl_sub) = grans.last().ok_or_else(|| anyhow!("the model has no granularities"))?;
    let (_, xl_logits) = eval_keep(w, xl_name, xl_sub, batches, ws);
    Ok(grans.iter().map(|(g, sub)| eval_against(w, g, sub, batches, &xl_logits, ws)).collect())
}

/// Build the report for one preset, training its missing runs when `opts.train_missing`.
pub fn family_report(preset: &TrainConfig, opts: &ReportOptions) -> Result<FamilyReport> {
    let shipped_path =
        opts.root.join(preset.export.as_ref().ok_or_else(|| anyhow!("preset {} exports no model", preset.name))?);
    let shipped = load_f32(&shipped_path)?;
    let task = match &preset.task {
        crate::Task::Shakespeare { data_dir: None, seq_len } => {
            crate::Task::Shakespeare { data_dir: Some(opts.root.join("data/shakespeare")), seq_len: *seq_len }
        }
        t => t.clone(),
    };
    let compared = TrainConfig { task: task.clone(), ..comparison_config(preset, &opts.root) };
    let is_shipped = compared.steps == preset.steps;
    let (trained, model_path) = if is_shipped {
        (None, shipped_path.clone())
    } else {
        let what = format!("{}-step MatFormer run of preset {}", compared.steps, preset.name);
        (Some(trained_weights(&compared, &what, opts)?), compared.export.clone().expect("comparison_config exports"))
    };
    let w = trained.as_ref().unwrap_or(&shipped);
    let cfg = w.config.clone();
    let is_lm = cfg.is_lm();
    let batches = eval_batches(&task, preset.batch_size.max(32), preset.final_eval_samples)?;
    let eval_predictions: usize = batches.iter().map(Batch::n_targets).sum();
    let grans = granularity_submodels(&cfg)?;
    let mut ws = Workspace::default();
    eprintln!("[report] {}: {} granularities on {eval_predictions} predictions", preset.name, grans.len());

    let xl_name = grans.last().map(|g| g.0.clone()).ok_or_else(|| anyhow!("{} has no granularities", preset.name))?;
    let matformer_rows = granularities_vs_own_xl(w, &batches, &mut ws)?;

    let mut baselines = Vec::new();
    for (g, _) in &grans {
        let bc = TrainConfig { task: task.clone(), ..baseline_config(preset, g, &opts.root) };
        baselines.push(trained_weights(&bc, &format!("`{g}` baseline of preset {}", preset.name), opts)?);
    }
    let base_xl = baselines.last().expect("one baseline per granularity");
    let (_, base_xl_logits) = eval_keep(base_xl, &xl_name, &Submodel::full(&base_xl.config), &batches, &mut ws);

    let mut rows = Vec::new();
    for (((g, _), b), (matformer, matformer_vs_xl)) in grans.iter().zip(&baselines).zip(matformer_rows) {
        eprintln!("[report] {}: baseline {g}", preset.name);
        let (mut baseline, baseline_vs_xl) =
            eval_against(b, g, &Submodel::full(&b.config), &batches, &base_xl_logits, &mut ws);
        baseline.name = g.clone();
        rows.push(GranRow { matformer, baseline, matformer_vs_xl, baseline_vs_xl });
    }

    let shipped = if is_shipped {
        None
    } else {
        eprintln!("[report] {}: the shipped model", preset.name);
        let rows = granularities_vs_own_xl(&shipped, &batches, &mut ws)?;
        Some(ShippedModel { model: relative(&shipped_path, &opts.root), steps: preset.steps, rows })
    };

    let mut report = FamilyReport {
        preset: preset.name.clone(),
        is_lm,
        model: relative(&model_path, &opts.root),
        steps: compared.steps,
        eval_predictions,
        rows,
        mix: Vec::new(),
        shipped,
    };
    let named: Vec<(f64, f64)> =
        report.rows.iter().map(|r| (r.matformer.params as f64, report.metric(&r.matformer))).collect();
    let sign = if is_lm { 1.0 } else { -1.0 };
    let cands: Vec<(String, Submodel)> =
        mixnmatch::candidates(&cfg).into_iter().filter(|(spec, _)| spec.contains(',')).collect();
    eprintln!("[report] {}: {} Mix'n'Match submodels", preset.name, cands.len());
    for (spec, sub) in cands {
        let eval = evaluate_with(w, &spec, &sub, &batches, &mut ws, |_, _| {});
        let line = interpolate(&named, eval.params as f64);
        let gap = sign * (report.metric(&eval) - line);
        report.mix.push(MixPoint { spec, eval, line, gap });
    }
    report.mix.sort_by_key(|m| m.eval.params);
    Ok(report)
}

/// Put `fresh` into `reports` in place of the same preset's older report, or at the end.
pub fn merge(reports: &mut Vec<FamilyReport>, fresh: FamilyReport) {
    match reports.iter_mut().find(|old| old.preset == fresh.preset) {
        Some(old) => *old = fresh,
        None => reports.push(fresh),
    }
}

/// Piecewise-linear interpolation of `points` (sorted by x) at `x`, clamped to the ends.
pub fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    let Some(first) = points.first() else { return f64::NAN };
    if x <= first.0 {
        return first.1;
    }
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            return if x1 > x0 { y0 + (y1 - y0) * (x - x0) / (x1 - x0) } else { y1 };
        }
    }
    points.last().map_or(f64::NAN, |p| p.1)
}

/// Build the report of every preset in `opts.presets` and write `README.md`, the plots and `report.json`
/// to `opts.out_dir`. Sections of other presets already in `report.json` are kept as they are, so one
/// family can be regenerated without retraining the other's baselines. Returns the regenerated reports.
pub fn run(opts: &ReportOptions) -> Result<Vec<FamilyReport>> {
    std::fs::create_dir_all(&opts.out_dir).with_context(|| format!("creating {}", opts.out_dir.display()))?;
    let json_path = opts.out_dir.join("report.json");
    let mut reports: Vec<FamilyReport> = match std::fs::read_to_string(&json_path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("reading {}", json_path.display()))?,
        Err(_) => Vec::new(),
    };
    let mut fresh = Vec::new();
    for name in &opts.presets {
        let preset = TrainConfig::preset(name)
            .ok_or_else(|| anyhow!("unknown preset `{name}` (matlm-shakespeare, matvit-fashion)"))?;
        let r = family_report(&preset, opts)?;
        plots::draw(&r, &opts.out_dir)?;
        merge(&mut reports, r.clone());
        fresh.push(r);
    }
    for kept in reports.iter().filter(|k| !fresh.iter().any(|r| r.preset == k.preset)) {
        eprintln!("[report] {}: kept from {} (not regenerated)", kept.preset, json_path.display());
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&reports)?)?;
    std::fs::write(opts.out_dir.join("README.md"), markdown::render(&reports))?;
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::interpolate;

    #[test]
    fn interpolation_is_piecewise_linear_and_clamped() {
        let p = [(1.0, 10.0), (3.0, 6.0), (7.0, 2.0)];
        assert_eq!(interpolate(&p, 2.0), 8.0);
        assert_eq!(interpolate(&p, 5.0), 4.0);
        assert_eq!(interpolate(&p, 0.0), 10.0);
        assert_eq!(interpolate(&p, 9.0), 2.0);
        assert!(interpolate(&[], 1.0).is_nan());
    }
}
