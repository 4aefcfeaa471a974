//! The training loop: joint / sampled / baseline objectives, AdamW, periodic evaluation, atomic
//! resumable checkpoints, CSV logs, PNG plots, a progress bar, and the final export.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use matformer_graph::{checkpoint, DType, ModelConfig, ModelWeights, Submodel};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{Objective, Task, TrainConfig};
use crate::data::idx::{self, ImageSet};
use crate::data::images::{self, Augment, ImageSampler};
use crate::data::text::{self, TextData};
use crate::log::{line_plot, read_csv, smooth, Csv, Series};
use crate::model::params::{zero, zeros_like};
use crate::model::{forward_backward, Batch, Workspace};
use crate::optim::{add_grads, global_norm, lr_at, scale_grads, AdamW};
use crate::rng::{stream, Rng};
use crate::state::{load_state, save_state, TrainState};

/// Quality of one granularity on an evaluation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GranEval {
    /// Granularity name.
    pub name: String,
    /// Its FFN width.
    pub width: usize,
    /// Parameters the submodel uses.
    pub params: u64,
    /// Mean cross-entropy (nats per token or per image).
    pub loss: f64,
    /// Top-1 accuracy (next byte for a MatLM, class for a MatViT).
    pub accuracy: f64,
}

/// One optimizer step's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    /// Completed steps after this update (1-based).
    pub step: usize,
    /// Learning rate used.
    pub lr: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Training loss of each granularity (`None` when not trained this step).
    pub losses: Vec<Option<f64>>,
}

/// What [`train`] returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Run directory.
    pub out_dir: PathBuf,
    /// Step the run started (or resumed) from.
    pub start_step: usize,
    /// Completed steps at the end of this call.
    pub end_step: usize,
    /// Whether this call resumed from a saved state.
    pub resumed: bool,
    /// Granularity names, in the order of [`StepLog::losses`].
    pub granularities: Vec<String>,
    /// Every step run in this call.
    pub steps: Vec<StepLog>,
    /// Final evaluation (empty when stopped early by `stop_after`).
    pub final_eval: Vec<GranEval>,
    /// Wall-clock seconds of this call's training steps.
    pub seconds: f64,
    /// Training throughput of this call: tokens/s (MatLM) or images/s (MatViT).
    pub items_per_s: f64,
    /// Total training seconds of the run, over every resume.
    pub total_seconds: f64,
    /// Exported model, when written.
    pub export: Option<PathBuf>,
}

enum Data {
    Text { data: TextData, seq: usize },
    Images { train: ImageSet, test: ImageSet, aug: Option<Augment>, sampler: ImageSampler },
}

impl Data {
    fn load(task: &Task) -> Result<Self> {
        Ok(match task {
            Task::Shakespeare { data_dir, seq_len } => {
                let dir = data_dir.clone().unwrap_or_else(text::default_dir);
                Data::Text { data: TextData::load(&dir).map_err(|e| anyhow!(e))?, seq: *seq_len }
            }
            Task::FashionMnist { data_dir, augment } => {
                let dir = data_dir.clone().unwrap_or_else(|| PathBuf::from(idx::FASHION_MNIST_DIR));
                let load = |split: &str| {
                    let images = dir.join(format!("{split}-images-idx3-ubyte.gz"));
                    idx::load_idx(&images, &idx::labels_path_for(&images)).map_err(|e| anyhow!(e))
                };
                Data::Images {
                    train: load("train")?,
                    test: load("t10k")?,
                    aug: *augment,
                    sampler: ImageSampler::default(),
                }
            }
        })
    }

    fn batch(&mut self, seed: u64, step: usize, batch: usize) -> Batch {
        match self {
            Data::Text { data, seq } => text::lm_batch(&data.train, seed, step, batch, *seq),
            Data::Images { train, aug, sampler, .. } => sampler.batch(train, seed, step, batch, *aug),
        }
    }

    fn eval_batches(&self, batch: usize, samples: usize) -> Vec<Batch> {
        match self {
            Data::Text { data, seq } => text::lm_eval_batches(&data.val, *seq, batch, samples),
            Data::Images { test, .. } => images::eval_batches(test, batch, samples),
        }
    }

    fn items_per_step(&self, batch: usize) -> usize {
        match self {
            Data::Text { seq, .. } => batch * seq,
            Data::Images { .. } => batch,
        }
    }

    fn unit(&self) -> &'static str {
        match self {
            Data::Text { .. } => "tok/s",
            Data::Images { .. } => "img/s",
        }
    }
}

/// The granularities a model is trained and evaluated at, as `(name, submodel)`.
pub fn granularity_submodels(cfg: &ModelConfig) -> Result<Vec<(String, Submodel)>> {
    cfg.granularities.iter().map(|g| Ok((g.name.clone(), Submodel::named(cfg, &g.name)?))).collect()
}

/// Evaluate each submodel on `batches`: mean loss and accuracy.
pub fn evaluate(w: &ModelWeights, subs: &[(String, Submodel)], batches: &[Batch]) -> Vec<GranEval> {
    let mut ws = Workspace::default();
    subs.iter().map(|(name, sub)| evaluate_with(w, name, sub, batches, &mut ws, |_, _| {})).collect()
}

/// Evaluate one submodel on `batches`, handing each batch's logits `[rows, n_outputs]` to `on_logits`
/// (with the batch index), e.g. to compare two models' predictions.
pub fn evaluate_with(
    w: &ModelWeights,
    name: &str,
    sub: &Submodel,
    batches: &[Batch],
    ws: &mut Workspace,
    mut on_logits: impl FnMut(usize, &[f32]),
) -> GranEval {
    let (mut loss, mut correct, mut n) = (0.0f64, 0usize, 0usize);
    for (i, b) in batches.iter().enumerate() {
        let s = forward_backward(w, None, sub, b, ws, 1.0);
        loss += s.loss_sum;
        correct += s.correct;
        n += b.n_targets();
        on_logits(i, &ws.logits);
    }
    GranEval {
        name: name.to_string(),
        width: sub.widths.iter().copied().max().unwrap_or(0),
        params: sub.params(&w.config),
        loss: loss / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
    }
}

/// The evaluation set of `task`: up to `samples` held-out windows (Shakespeare) or test images
/// (Fashion-MNIST), in batches of `batch`, always the same ones.
pub fn eval_batches(task: &Task, batch: usize, samples: usize) -> Result<Vec<Batch>> {
    Ok(Data::load(task)?.eval_batches(batch, samples))
}

const EVAL_HEADER: &str = "step,granularity,width,params,loss,accuracy";

/// Shards a step's batch is split into, run in parallel. Coarse data parallelism keeps both cores of a
/// small machine busy through a step's many small kernels, where per-kernel parallelism pays a pool
/// wake-up each: without shards, 2 threads ran a joint MatViT step only 1.65x faster than 1; with two
/// shards, 1.9x (317 -> 410 images/s). The count
/// is fixed, not the thread count, so a run's numbers do not depend on the machine; kernels inside a
/// shard still use idle threads.
pub const BATCH_SHARDS: usize = 2;

/// Per-shard gradients and activations, reused across steps.
struct StepBuffers {
    shards: Vec<(ModelWeights, Workspace)>,
}

impl StepBuffers {
    fn new(w: &ModelWeights) -> Self {
        StepBuffers { shards: (0..BATCH_SHARDS).map(|_| (zeros_like(w), Workspace::default())).collect() }
    }
}

/// One optimizer step on `batch` at step `st.step` (does not advance `st.step`).
fn train_step(
    cfg: &TrainConfig,
    subs: &[(String, Submodel)],
    st: &mut TrainState,
    buf: &mut StepBuffers,
    batch: &Batch,
) -> Result<StepLog> {
    let step = st.step;
    let lr = lr_at(&cfg.optim, step, cfg.steps);
    let mut losses = vec![None; subs.len()];
    let chosen: Vec<usize> = match cfg.objective {
        Objective::Sampled => vec![Rng::keyed(cfg.seed, stream::GRANULARITY, step as u64).below(subs.len())],
        _ => (0..subs.len()).collect(),
    };
    let n = batch.n_targets() as f64;
    let shards = batch.shards(BATCH_SHARDS);
    let w = &st.weights;
    // Each shard's loss is its own mean; scaling by its share of the targets makes the summed
    // gradient that of the whole batch's mean loss.
    let loss_sums: Vec<Vec<f64>> = buf.shards[..shards.len()]
        .par_iter_mut()
        .zip(&shards)
        .map(|((g, ws), b)| {
            zero(g);
            let share = (b.n_targets() as f64 / n) as f32;
            chosen.iter().map(|&i| forward_backward(w, Some(g), &subs[i].1, b, ws, share).loss_sum).collect()
        })
        .collect();
    for (j, &i) in chosen.iter().enumerate() {
        losses[i] = Some(loss_sums.iter().map(|s| s[j]).sum::<f64>() / n);
    }
    let (first, rest) = buf.shards.split_at_mut(1);
    let grads = &mut first[0].0;
    for (g, _) in &rest[..shards.len() - 1] {
        add_grads(grads, g);
    }
    let norm = global_norm(grads);
    if !norm.is_finite() {
        return Err(anyhow!("step {}: gradient norm is {norm}; lower optim.lr", step + 1));
    }
    if cfg.optim.grad_clip > 0.0 && norm > cfg.optim.grad_clip as f64 {
        scale_grads(grads, (cfg.optim.grad_clip as f64 / norm) as f32);
    }
    st.opt.update(&cfg.optim, &mut st.weights, grads, lr, step);
    Ok(StepLog { step: step + 1, lr, grad_norm: norm, losses })
}

/// Training throughput measured by [`bench()`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// Mean wall-clock seconds per optimizer step (after one warm-up step).
    pub seconds_per_step: f64,
    /// Tokens/s (MatLM) or images/s (MatViT).
    pub items_per_s: f64,
    /// `tok/s` or `img/s`.
    pub unit: String,
    /// Steps timed.
    pub steps: usize,
}

/// Time `steps` training steps of `cfg` (objective included) in memory, writing no files: for
/// benchmarks, e.g. a joint step against an xl-only one (`Objective::Baseline("xl")`).
pub fn bench(cfg: &TrainConfig, steps: usize) -> Result<BenchResult> {
    cfg.validate()?;
    let model_cfg = cfg.trained_model()?;
    let mut data = Data::load(&cfg.task)?;
    let weights = ModelWeights::random(model_cfg.clone(), cfg.seed)?;
    let opt = AdamW::new(&weights);
    let mut st = TrainState { step: 0, weights, opt, elapsed_s: 0.0 };
    let subs = granularity_submodels(&model_cfg)?;
    let mut buf = StepBuffers::new(&st.weights);
    let mut t0 = Instant::now();
    for i in 0..=steps {
        if i == 1 {
            t0 = Instant::now();
        }
        let batch = data.batch(cfg.seed, st.step, cfg.batch_size);
        train_step(cfg, &subs, &mut st, &mut buf, &batch)?;
        st.step += 1;
    }
    let secs = t0.elapsed().as_secs_f64() / steps.max(1) as f64;
    Ok(BenchResult {
        seconds_per_step: secs,
        items_per_s: data.items_per_step(cfg.batch_size) as f64 / secs,
        unit: data.unit().to_string(),
        steps,
    })
}

/// Train as `cfg` says, resuming from `cfg.out_dir/state.safetensors` when it exists and `cfg.resume`.
/// With `progress`, shows a progress bar on a terminal (plain log lines otherwise).
pub fn train(cfg: &TrainConfig, progress: bool) -> Result<TrainSummary> {
    cfg.validate()?;
    let model_cfg = cfg.trained_model()?;
    std::fs::create_dir_all(&cfg.out_dir).with_context(|| format!("creating {}", cfg.out_dir.display()))?;
    let cfg_json = serde_json::to_string_pretty(cfg)?;
    let state_path = cfg.out_dir.join("state.safetensors");
    let mut data = Data::load(&cfg.task)?;

    let (mut st, resumed) = if cfg.resume && state_path.is_file() {
        let (st, recorded) = load_state(&state_path)?;
        if st.weights.config != model_cfg {
            return Err(anyhow!(
                "{} holds a different model; delete it or pick another out_dir to start over",
                state_path.display()
            ));
        }
        // Resuming under another schedule, data or seed would silently train something else.
        if serde_json::from_str::<TrainConfig>(&recorded).is_ok_and(|ran| !ran.same_recipe(cfg)) {
            return Err(anyhow!(
                "{} was saved by a run with another recipe (model, objective, data, batch, optimizer or seed \
                 differ, see {}); resume with the same settings, or start over with --no-resume or another out_dir",
                state_path.display(),
                cfg.out_dir.join("config.json").display()
            ));
        }
        (st, true)
    } else {
        let weights = ModelWeights::random(model_cfg.clone(), cfg.seed)?;
        let opt = AdamW::new(&weights);
        (TrainState { step: 0, weights, opt, elapsed_s: 0.0 }, false)
    };
    std::fs::write(cfg.out_dir.join("config.json"), &cfg_json)?;
    let start_step = st.step;
    let subs = granularity_submodels(&model_cfg)?;
    let names: Vec<String> = subs.iter().map(|s| s.0.clone()).collect();
    let mut buf = StepBuffers::new(&st.weights);

    let train_header = format!(
        "step,lr,grad_norm,{},{}",
        names.iter().map(|n| format!("loss_{n}")).collect::<Vec<_>>().join(","),
        "items_per_s"
    );
    let mut train_csv = Csv::open(&cfg.out_dir.join("train.csv"), &train_header, start_step)?;
    let mut eval_csv = Csv::open(&cfg.out_dir.join("eval.csv"), EVAL_HEADER, start_step)?;
    let eval_bs = cfg.batch_size.max(32);
    let periodic = data.eval_batches(eval_bs, cfg.eval_samples);

    let end = cfg.stop_after.map_or(cfg.steps, |s| s.min(cfg.steps));
    let per_step = data.items_per_step(cfg.batch_size);
    let unit = data.unit();
    let tty = std::io::stderr().is_terminal();
    let bar = if progress && tty {
        let b = ProgressBar::with_draw_target(Some(cfg.steps as u64), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ETA {eta}")
                .expect("valid template"),
        );
        b.set_prefix(cfg.name.clone());
        b.set_position(start_step as u64);
        b.reset_eta();
        b
    } else {
        ProgressBar::hidden()
    };
    let log_every = (cfg.steps / 200).max(1);
    if progress && !tty {
        eprintln!(
            "{}: {} params, steps {start_step}..{end} of {}, {} granularities {names:?}, objective {:?}",
            cfg.name,
            st.weights.n_params(),
            cfg.steps,
            names.len(),
            cfg.objective
        );
    }

    let t0 = Instant::now();
    let elapsed_before = st.elapsed_s;
    let mut logs = Vec::new();
    while st.step < end {
        let batch = data.batch(cfg.seed, st.step, cfg.batch_size);
        let log = train_step(cfg, &subs, &mut st, &mut buf, &batch)?;
        let (lr, norm, losses) = (log.lr, log.grad_norm, log.losses);
        st.step += 1;
        let secs = t0.elapsed().as_secs_f64();
        st.elapsed_s = elapsed_before + secs;
        let rate = ((st.step - start_step) * per_step) as f64 / secs.max(1e-9);
        let mut row = vec![st.step.to_string(), format!("{lr:.6e}"), format!("{norm:.5}")];
        row.extend(losses.iter().map(|l| l.map_or(String::new(), |l| format!("{l:.6}"))));
        row.push(format!("{rate:.1}"));
        train_csv.row(&row)?;
        let shown: Vec<String> =
            names.iter().zip(&losses).filter_map(|(n, l)| l.map(|l| format!("{n} {l:.3}"))).collect();
        let msg = format!("loss {} | {rate:.0} {unit}", shown.join(" "));
        bar.set_position(st.step as u64);
        bar.set_message(msg.clone());
        if progress && !tty && (st.step % log_every == 0 || st.step == end) {
            eprintln!("step {}/{} lr {lr:.2e} | {msg} | {:.0}s", st.step, cfg.steps, st.elapsed_s);
        }
        logs.push(StepLog { step: st.step, lr, grad_norm: norm, losses });
        if cfg.eval_every > 0 && st.step % cfg.eval_every == 0 && st.step < cfg.steps {
            let ev = evaluate(&st.weights, &subs, &periodic);
            write_eval(&mut eval_csv, st.step, &ev)?;
            let line =
                ev.iter().map(|e| format!("{} {:.4}/{:.3}", e.name, e.loss, e.accuracy)).collect::<Vec<_>>().join(" ");
            bar.println(format!("eval @ {}: loss/acc {line}", st.step));
            if progress && !tty {
                eprintln!("eval @ {}: loss/acc {line}", st.step);
            }
            let _ = plot_run(&cfg.out_dir, &cfg.name);
        }
        if cfg.checkpoint_every > 0 && st.step % cfg.checkpoint_every == 0 && st.step < cfg.steps {
            save_state(&state_path, &st, &cfg_json)?;
        }
    }
    bar.finish_and_clear();
    let seconds = t0.elapsed().as_secs_f64();
    let items_per_s = ((st.step - start_step) * per_step) as f64 / seconds.max(1e-9);
    let mut summary = TrainSummary {
        out_dir: cfg.out_dir.clone(),
        start_step,
        end_step: st.step,
        resumed,
        granularities: names,
        steps: logs,
        final_eval: Vec::new(),
        seconds,
        items_per_s,
        total_seconds: st.elapsed_s,
        export: None,
    };
    if st.step < cfg.steps {
        // Stopped early (`stop_after`): like a kill, nothing beyond the last periodic checkpoint is saved.
        return Ok(summary);
    }
    if start_step < cfg.steps {
        save_state(&state_path, &st, &cfg_json)?;
    }
    let final_batches = data.eval_batches(eval_bs, cfg.final_eval_samples);
    summary.final_eval = evaluate(&st.weights, &subs, &final_batches);
    let logged = std::fs::read_to_string(cfg.out_dir.join("eval.csv")).unwrap_or_default();
    let prefix = format!("{},", st.step);
    if !logged.lines().any(|l| l.starts_with(&prefix)) {
        write_eval(&mut eval_csv, st.step, &summary.final_eval)?;
    }
    if let Some(path) = &cfg.export {
        export(&st.weights, path, cfg, &summary)?;
        summary.export = Some(path.clone());
    }
    std::fs::write(cfg.out_dir.join("summary.json"), serde_json::to_string_pretty(&summary_for_file(&summary))?)?;
    plot_run(&cfg.out_dir, &cfg.name)?;
    if progress {
        eprintln!(
            "{}: {} steps in {:.0}s ({:.0} {unit}); final {}",
            cfg.name,
            st.step,
            st.elapsed_s,
            items_per_s,
            summary
                .final_eval
                .iter()
                .map(|e| format!("{} loss {:.4} acc {:.4}", e.name, e.loss, e.accuracy))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(summary)
}

fn summary_for_file(s: &TrainSummary) -> serde_json::Value {
    serde_json::json!({
        "out_dir": s.out_dir,
        "end_step": s.end_step,
        "granularities": s.granularities,
        "final_eval": s.final_eval,
        "total_training_seconds": s.total_seconds,
        "last_call_items_per_s": s.items_per_s,
        "export": s.export,
    })
}

fn write_eval(csv: &mut Csv, step: usize, ev: &[GranEval]) -> Result<()> {
    for e in ev {
        csv.row(&[
            step.to_string(),
            e.name.clone(),
            e.width.to_string(),
            e.params.to_string(),
            format!("{:.6}", e.loss),
            format!("{:.6}", e.accuracy),
        ])?;
    }
    Ok(())
}

fn export(w: &ModelWeights, path: &Path, cfg: &TrainConfig, s: &TrainSummary) -> Result<()> {
    let dtype = DType::parse(&cfg.export_dtype).expect("validated");
    let mut meta = BTreeMap::new();
    meta.insert("train_name".to_string(), cfg.name.clone());
    meta.insert("train_steps".to_string(), s.end_step.to_string());
    meta.insert("train_objective".to_string(), serde_json::to_string(&cfg.objective)?);
    meta.insert("train_seed".to_string(), cfg.seed.to_string());
    meta.insert("train_seconds".to_string(), format!("{:.0}", s.total_seconds));
    meta.insert("train_eval".to_string(), serde_json::to_string(&s.final_eval)?);
    if matches!(cfg.task, Task::FashionMnist { .. }) {
        meta.insert("input".to_string(), "grayscale pixels scaled to [0, 1], no normalization".to_string());
    } else {
        meta.insert("tokenizer".to_string(), "bytes".to_string());
    }
    checkpoint::save_with_meta(&w.to_dtype(dtype), path, &meta)?;
    Ok(())
}

/// Width, loss curve and accuracy curve of one granularity.
type EvalCurves = (usize, Vec<(f64, f64)>, Vec<(f64, f64)>);

/// Redraw `loss.png` (training loss per granularity, smoothed) and `eval.png` (evaluation loss and
/// accuracy per granularity) of a run directory from its CSV logs.
pub fn plot_run(dir: &Path, name: &str) -> Result<()> {
    let (header, rows) = read_csv(&dir.join("train.csv"))?;
    let series: Vec<Series> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.starts_with("loss_"))
        .map(|(c, h)| {
            Series::line(
                h.trim_start_matches("loss_"),
                smooth(&rows.iter().map(|r| (r[0], r[c])).collect::<Vec<_>>(), 0.05),
            )
        })
        .collect();
    line_plot(&dir.join("loss.png"), &format!("{name}: training loss"), "step", "loss (EMA)", &series)?;
    let text = std::fs::read_to_string(dir.join("eval.csv"))?;
    let mut by: BTreeMap<String, EvalCurves> = BTreeMap::new();
    for l in text.lines().skip(1) {
        let c: Vec<&str> = l.split(',').collect();
        if c.len() < 6 {
            continue;
        }
        let (Ok(step), Ok(width), Ok(loss), Ok(acc)) =
            (c[0].parse::<f64>(), c[2].parse::<usize>(), c[4].parse(), c[5].parse())
        else {
            continue;
        };
        let e = by.entry(c[1].to_string()).or_insert((width, Vec::new(), Vec::new()));
        e.1.push((step, loss));
        e.2.push((step, acc));
    }
    let mut grans: Vec<(String, EvalCurves)> = by.into_iter().collect();
    grans.sort_by_key(|g| g.1 .0);
    let loss: Vec<Series> = grans.iter().map(|(n, g)| Series::line(n.clone(), g.1.clone())).collect();
    let acc: Vec<Series> = grans.iter().map(|(n, g)| Series::line(n.clone(), g.2.clone())).collect();
    line_plot(&dir.join("eval_loss.png"), &format!("{name}: evaluation loss"), "step", "loss", &loss)?;
    line_plot(&dir.join("eval_accuracy.png"), &format!("{name}: evaluation accuracy"), "step", "accuracy", &acc)?;
    Ok(())
}
