//! The evaluation report's pipeline on a tiny MatLM: baselines are trained on demand (or their absence is
//! a clear error), every number it prints is measured, and the markdown states each claim's verdict.

use std::path::PathBuf;

use matformer_graph::ModelConfig;
use matformer_train::optim::AdamWConfig;
use matformer_train::report::{family_report, interpolate, markdown, ReportOptions};
use matformer_train::{train, Objective, Task, TrainConfig};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("matformer-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tiny(root: &std::path::Path) -> TrainConfig {
    let mut model = ModelConfig::gpt2_style(256, 32, 2, 2, 64, 32);
    model.granularities.truncate(4);
    TrainConfig {
        name: "tiny".into(),
        task: Task::Shakespeare { data_dir: None, seq_len: 32 },
        model,
        objective: Objective::Joint,
        steps: 12,
        batch_size: 8,
        optim: AdamWConfig { lr: 3e-3, warmup_steps: 2, ..AdamWConfig::default() },
        seed: 3,
        eval_every: 0,
        eval_samples: 8,
        final_eval_samples: 16,
        checkpoint_every: 0,
        out_dir: root.join("runs/tiny"),
        export: Some(root.join("models/tiny.safetensors")),
        export_dtype: "f32".into(),
        resume: true,
        stop_after: None,
    }
}

#[test]
fn report_compares_matformer_with_baselines_and_mix_n_match() {
    let root = tmp("lm");
    let cfg = tiny(&root);
    train(&cfg, false).unwrap();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut opts =
        ReportOptions { root: root.clone(), out_dir: root.join("report"), presets: vec![], train_missing: false };
    // The report reads the data relative to its root.
    std::os::unix::fs::symlink(repo.join("data"), root.join("data")).unwrap();

    let err = family_report(&cfg, &opts).unwrap_err().to_string();
    assert!(err.contains("baseline") && err.contains("--objective baseline:"), "{err}");

    opts.train_missing = true;
    let r = family_report(&cfg, &opts).unwrap();
    assert_eq!(r.rows.len(), 4);
    assert_eq!(r.eval_predictions, 16 * 32);
    for (i, row) in r.rows.iter().enumerate() {
        // A baseline of width w is exactly as big as the MatFormer submodel of width w.
        assert_eq!(row.baseline.params, row.matformer.params, "granularity {i}");
        assert!(row.matformer.loss.is_finite() && row.baseline.loss.is_finite());
        assert!((0.0..=1.0).contains(&row.matformer_vs_xl.agreement));
        assert!(row.matformer_vs_xl.kl >= -1e-9 && row.baseline_vs_xl.kl >= -1e-9);
        if i > 0 {
            assert!(row.matformer.params > r.rows[i - 1].matformer.params);
        }
    }
    let xl = r.rows.last().unwrap();
    assert_eq!((xl.matformer_vs_xl.agreement, xl.baseline_vs_xl.agreement), (1.0, 1.0));
    assert!(xl.matformer_vs_xl.kl.abs() < 1e-9);
    // Two layers, four granularities: each neighbouring pair mixes two ways.
    assert_eq!(r.mix.len(), 6);
    let named: Vec<(f64, f64)> = r.rows.iter().map(|row| (row.matformer.params as f64, row.matformer.loss)).collect();
    for m in &r.mix {
        assert!(m.eval.params > r.rows[0].matformer.params && m.eval.params < xl.matformer.params, "{}", m.spec);
        assert_eq!(m.line, interpolate(&named, m.eval.params as f64));
        assert!((m.gap - (m.eval.loss - m.line)).abs() < 1e-12);
    }
    // The baselines were trained with the same steps and saved where the report looks for them.
    assert!(root.join("runs/report/tiny-baseline-s.safetensors").is_file());

    let md = markdown::render(std::slice::from_ref(&r));
    assert!(md.contains("## tiny") && md.contains("`s,m`") && md.contains("The paper's claims, checked"), "{md}");
    let within = (0..4).filter(|&i| markdown::within_one_percent(&r, i)).count();
    assert!(md.contains(&format!("({within} of 4)")), "{md}");
    // A baseline file that does not match the preset (e.g. left over from an older preset) is refused.
    let base = root.join("runs/report");
    std::fs::copy(base.join("tiny-baseline-m.safetensors"), base.join("tiny-baseline-s.safetensors")).unwrap();
    let err = family_report(&cfg, &opts).unwrap_err().to_string();
    assert!(err.contains("tiny-baseline-s") && err.contains("stale"), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}
