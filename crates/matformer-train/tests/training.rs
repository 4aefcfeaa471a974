//! End-to-end checks of the trainer: the training forward equals the runtime's, a short run lowers the
//! loss, every objective runs, and resuming after a kill reproduces an uninterrupted run bit for bit.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use matformer_graph::{ModelConfig, ModelWeights, Submodel};
use matformer_runtime::{vit_forward, CpuLm, LmExecutor, Logits};
use matformer_train::data::images::Augment;
use matformer_train::model::params::{fs, zeros_like};
use matformer_train::model::{forward_backward, Batch, Workspace};
use matformer_train::optim::AdamWConfig;
use matformer_train::state::load_state;
use matformer_train::{train, Objective, Task, TrainConfig, TrainSummary};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtrain-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn training_forward_matches_runtime_lm() {
    for cfg in [ModelConfig::gpt2_style(256, 32, 3, 4, 64, 16), ModelConfig::llama_style(256, 32, 3, 4, 2, 64, 16)] {
        let w = ModelWeights::random(cfg.clone(), 3).unwrap();
        let tokens: Vec<u32> = (0..12).map(|i| (i * 37 + 5) % 256).collect();
        let batch = Batch::Lm { tokens: tokens.clone(), targets: tokens.clone(), batch: 1, seq: 12 };
        let arc = Arc::new(w.clone());
        for spec in ["s", "xl", "s,m,xl", "m;skip=1"] {
            let sub = Submodel::parse(&cfg, spec).unwrap();
            let mut ws = Workspace::default();
            forward_backward(&w, None, &sub, &batch, &mut ws, 1.0);
            let mut rt = CpuLm::new(arc.clone()).unwrap();
            let want = rt.forward(&tokens, &sub, Logits::All).unwrap();
            let diff = max_diff(&ws.logits, &want);
            assert!(diff < 1e-4, "{spec}: logits differ from the runtime by {diff}");
        }
    }
}

#[test]
fn training_forward_matches_runtime_vit() {
    let cfg = ModelConfig::vit(8, 4, 2, 5, 32, 2, 4, 64);
    let w = ModelWeights::random(cfg.clone(), 4).unwrap();
    let images: Vec<f32> = (0..3 * 2 * 64).map(|i| ((i * 7919) % 101) as f32 / 101.0).collect();
    let batch = Batch::Vit { images: images.clone(), labels: vec![0, 1, 2], batch: 3 };
    for spec in ["s", "xl", "m,l"] {
        let sub = Submodel::parse(&cfg, spec).unwrap();
        let mut ws = Workspace::default();
        forward_backward(&w, None, &sub, &batch, &mut ws, 1.0);
        let want = vit_forward(&w, &sub, &images, 3).unwrap();
        let diff = max_diff(&ws.logits, &want.logits);
        assert!(diff < 1e-4, "{spec}: logits differ from the runtime by {diff}");
    }
}

/// `forward_backward` over `batch` into fresh gradients, and over its shards with each shard's share
/// of the targets as the gradient scale: the trainer's data-parallel step relies on the two agreeing.
fn whole_vs_sharded(w: &ModelWeights, sub: &Submodel, batch: &Batch) {
    let n = batch.n_targets() as f32;
    let mut whole = zeros_like(w);
    forward_backward(w, Some(&mut whole), sub, batch, &mut Workspace::default(), 1.0);
    let mut sharded = zeros_like(w);
    let shards = batch.shards(3);
    assert_eq!(shards.len(), 3);
    for b in &shards {
        forward_backward(w, Some(&mut sharded), sub, b, &mut Workspace::default(), b.n_targets() as f32 / n);
    }
    let (a, b) = (whole.named_tensors(), sharded.named_tensors());
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let (x, y) = (fs(x), fs(y));
        let scale = x.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        let d = max_diff(x, y) / scale;
        assert!(d < 1e-4, "{name}: sharded gradient differs by {d} (relative)");
    }
}

#[test]
fn shard_gradients_sum_to_the_batch_gradient() {
    let cfg = ModelConfig::gpt2_style(256, 32, 2, 4, 64, 16);
    let w = ModelWeights::random(cfg.clone(), 5).unwrap();
    let tokens: Vec<u32> = (0..7 * 8).map(|i| (i * 37 + 5) % 256).collect();
    let targets: Vec<u32> = tokens.iter().map(|t| (t * 3 + 1) % 256).collect();
    let batch = Batch::Lm { tokens, targets, batch: 7, seq: 8 };
    whole_vs_sharded(&w, &Submodel::parse(&cfg, "s,m").unwrap(), &batch);

    let cfg = ModelConfig::vit(8, 4, 2, 5, 32, 2, 4, 64);
    let w = ModelWeights::random(cfg.clone(), 6).unwrap();
    let images: Vec<f32> = (0..7 * 2 * 64).map(|i| ((i * 7919) % 101) as f32 / 101.0).collect();
    let batch = Batch::Vit { images, labels: vec![0, 1, 2, 3, 4, 0, 1], batch: 7 };
    whole_vs_sharded(&w, &Submodel::parse(&cfg, "xl").unwrap(), &batch);
}

#[test]
fn batch_shards_partition_the_batch() {
    let tokens: Vec<u32> = (0..5 * 3).collect();
    let targets: Vec<u32> = (100..100 + 5 * 3).collect();
    let lm = Batch::Lm { tokens: tokens.clone(), targets: targets.clone(), batch: 5, seq: 3 };
    let parts = lm.shards(2);
    let sizes: Vec<usize> = parts.iter().map(Batch::n_targets).collect();
    assert_eq!(sizes, [9, 6]);
    let (mut t, mut g) = (Vec::new(), Vec::new());
    for p in &parts {
        let Batch::Lm { tokens, targets, seq, .. } = p else { panic!("family changed") };
        assert_eq!(*seq, 3);
        t.extend_from_slice(tokens);
        g.extend_from_slice(targets);
    }
    assert_eq!((t, g), (tokens, targets));
    // More shards than items: one item each, none empty.
    let vit = Batch::Vit { images: (0..2 * 4).map(|i| i as f32).collect(), labels: vec![7, 8], batch: 2 };
    let parts = vit.shards(5);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1], Batch::Vit { images: vec![4.0, 5.0, 6.0, 7.0], labels: vec![8], batch: 1 });
}

#[test]
fn training_numbers_do_not_depend_on_the_thread_count() {
    let run = |threads: usize| {
        let dir = tmp(&format!("threads{threads}"));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| train(&tiny_lm(&dir, 4), false).unwrap())
    };
    let bits = |s: &TrainSummary| {
        s.steps.iter().flat_map(|x| x.losses.iter().map(|l| l.unwrap().to_bits())).collect::<Vec<_>>()
    };
    assert_eq!(bits(&run(1)), bits(&run(3)));
}

fn tiny_lm(out: &Path, steps: usize) -> TrainConfig {
    let mut model = ModelConfig::gpt2_style(256, 32, 2, 2, 64, 32);
    model.granularities.truncate(4);
    TrainConfig {
        name: "tiny".into(),
        task: Task::Shakespeare { data_dir: None, seq_len: 32 },
        model,
        objective: Objective::Joint,
        steps,
        batch_size: 8,
        optim: AdamWConfig { lr: 3e-3, warmup_steps: 5, ..AdamWConfig::default() },
        seed: 11,
        eval_every: 0,
        eval_samples: 8,
        final_eval_samples: 16,
        checkpoint_every: 4,
        out_dir: out.to_path_buf(),
        export: None,
        export_dtype: "f32".into(),
        resume: true,
        stop_after: None,
        report_steps: None,
    }
}

#[test]
fn short_run_lowers_the_loss_and_writes_logs() {
    let dir = tmp("lower");
    let mut cfg = tiny_lm(&dir, 60);
    cfg.export = Some(dir.join("model.safetensors"));
    cfg.export_dtype = "f16".into();
    let s = train(&cfg, false).unwrap();
    let xl = |i: usize| s.steps[i].losses[3].unwrap();
    let first: f64 = (0..5).map(xl).sum::<f64>() / 5.0;
    let last: f64 = (55..60).map(xl).sum::<f64>() / 5.0;
    assert!(last < first - 1.0, "loss did not drop: {first:.3} -> {last:.3}");
    assert_eq!(s.final_eval.len(), 4);
    assert!(s.final_eval.iter().all(|e| e.loss.is_finite() && e.loss < 4.5), "{:?}", s.final_eval);
    for f in ["train.csv", "eval.csv", "loss.png", "eval_loss.png", "config.json", "summary.json", "state.safetensors"]
    {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let exported = matformer_graph::checkpoint::load(&dir.join("model.safetensors")).unwrap();
    assert_eq!(exported.dtype(), matformer_graph::DType::F16);
    let csv = std::fs::read_to_string(dir.join("train.csv")).unwrap();
    assert_eq!(csv.lines().count(), 61);
}

#[test]
fn resume_after_kill_is_bit_identical() {
    let full_dir = tmp("full");
    let full = train(&tiny_lm(&full_dir, 12), false).unwrap();
    let dir = tmp("killed");
    let mut killed = tiny_lm(&dir, 12);
    killed.stop_after = Some(10); // "killed" after step 10: the last checkpoint is step 8
    let a = train(&killed, false).unwrap();
    assert_eq!(a.end_step, 10);
    // Resuming under another seed is refused, and leaves the run directory as it was.
    let other = TrainConfig { seed: 12, stop_after: None, ..killed.clone() };
    let err = train(&other, false).unwrap_err().to_string();
    assert!(err.contains("another recipe") && err.contains("--no-resume"), "{err}");
    let recorded: TrainConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(recorded.seed, 11);
    killed.stop_after = None;
    let b = train(&killed, false).unwrap();
    assert!(b.resumed);
    assert_eq!(b.start_step, 8);
    for (x, y) in b.steps.iter().zip(&full.steps[8..]) {
        assert_eq!(x.step, y.step);
        let bits = |v: &[Option<f64>]| v.iter().map(|l| l.map(f64::to_bits)).collect::<Vec<_>>();
        assert_eq!(bits(&x.losses), bits(&y.losses), "step {}", x.step);
        assert_eq!(x.grad_norm.to_bits(), y.grad_norm.to_bits());
    }
    let (sa, _) = load_state(&full_dir.join("state.safetensors")).unwrap();
    let (sb, _) = load_state(&dir.join("state.safetensors")).unwrap();
    assert_eq!(sa.weights, sb.weights);
    assert_eq!(sa.opt, sb.opt);
    // The resumed log has exactly one row per step.
    let csv = std::fs::read_to_string(dir.join("train.csv")).unwrap();
    let steps: Vec<usize> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!(steps, (1..=12).collect::<Vec<_>>());
}

fn write_idx(dir: &Path, split: &str, n: usize) {
    let mut img = vec![0u8, 0, 8, 3];
    for v in [n as u32, 28, 28] {
        img.extend(v.to_be_bytes());
    }
    let mut lab = vec![0u8, 0, 8, 1];
    lab.extend((n as u32).to_be_bytes());
    for i in 0..n {
        let class = (i % 10) as u8;
        lab.push(class);
        // Each class is a bright horizontal band at its own height.
        for y in 0..28 {
            for x in 0..28 {
                let on = y / 3 == class as usize && x > 3 && x < 25;
                img.push(if on { 200 } else { ((i * 31 + x * 7 + y) % 40) as u8 });
            }
        }
    }
    // load_idx accepts raw IDX bytes under a .gz name (it sniffs the gzip magic).
    std::fs::write(dir.join(format!("{split}-images-idx3-ubyte.gz")), img).unwrap();
    std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte.gz")), lab).unwrap();
}

fn tiny_vit(out: &Path, data: &Path, objective: Objective, steps: usize) -> TrainConfig {
    TrainConfig {
        name: "tiny-vit".into(),
        task: Task::FashionMnist {
            data_dir: Some(data.to_path_buf()),
            augment: Some(Augment { max_shift: 1, hflip: true }),
        },
        model: ModelConfig::vit(28, 7, 1, 10, 32, 2, 2, 64),
        objective,
        steps,
        batch_size: 16,
        optim: AdamWConfig { lr: 3e-3, warmup_steps: 5, ..AdamWConfig::default() },
        seed: 5,
        eval_every: 10,
        eval_samples: 40,
        final_eval_samples: 100,
        checkpoint_every: 5,
        out_dir: out.to_path_buf(),
        export: None,
        export_dtype: "f32".into(),
        resume: true,
        stop_after: None,
        report_steps: None,
    }
}

#[test]
fn vit_objectives_train_and_resume() {
    let data = tmp("idx");
    std::fs::create_dir_all(&data).unwrap();
    write_idx(&data, "train", 200);
    write_idx(&data, "t10k", 100);
    // Joint: learns the toy classes.
    let mut j = tiny_vit(&tmp("vj"), &data, Objective::Joint, 120);
    j.task = Task::FashionMnist { data_dir: Some(data.clone()), augment: None };
    let s = train(&j, false).unwrap();
    let xl = s.final_eval.iter().find(|e| e.name == "xl").unwrap();
    assert!(xl.accuracy > 0.6, "toy accuracy {}", xl.accuracy);
    // Sampled: one granularity per step.
    let s = train(&tiny_vit(&tmp("vs"), &data, Objective::Sampled, 12), false).unwrap();
    assert!(s.steps.iter().all(|l| l.losses.iter().filter(|x| x.is_some()).count() == 1));
    // Baseline: a plain model of the `m` width.
    let dir = tmp("vb");
    let s = train(&tiny_vit(&dir, &data, Objective::Baseline("m".into()), 12), false).unwrap();
    assert_eq!(s.granularities, vec!["m".to_string()]);
    let (st, _) = load_state(&dir.join("state.safetensors")).unwrap();
    assert_eq!(st.weights.config.d_ff, 16);
    // Resume with augmentation and epoch order: bit-identical.
    let full = train(&tiny_vit(&tmp("vfull"), &data, Objective::Joint, 16), false).unwrap();
    let kdir = tmp("vkill");
    let mut k = tiny_vit(&kdir, &data, Objective::Joint, 16);
    k.stop_after = Some(13);
    train(&k, false).unwrap();
    k.stop_after = None;
    let r = train(&k, false).unwrap();
    assert_eq!(r.start_step, 10);
    for (x, y) in r.steps.iter().zip(&full.steps[10..]) {
        assert_eq!(x.losses, y.losses, "step {}", x.step);
    }
}

#[test]
fn bench_times_joint_and_xl_only_steps() {
    let dir = tmp("bench");
    let cfg = tiny_lm(&dir, 10);
    let joint = matformer_train::bench(&cfg, 2).unwrap();
    let mut xl = cfg.clone();
    xl.objective = Objective::Baseline("xl".into());
    let single = matformer_train::bench(&xl, 2).unwrap();
    assert_eq!(joint.unit, "tok/s");
    assert!(joint.seconds_per_step > 0.0 && single.items_per_s > 0.0);
    assert!(!dir.exists(), "bench writes no files");
}
