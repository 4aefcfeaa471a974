//! The evaluation report's pipeline on a tiny MatLM: baselines are trained on demand (or their absence is
//! a clear error), every number it prints is measured, and the markdown states each claim's verdict.

use std::path::PathBuf;

use matformer_graph::ModelConfig;
use matformer_train::optim::AdamWConfig;
use matformer_train::report::{family_report, interpolate, markdown, merge, FamilyReport, ReportOptions};
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
        report_steps: None,
    }
}

/// A root with the tiny preset's shipped model trained, and the repository's data linked in (the report
/// reads the data relative to its root).
fn shipped_tiny(name: &str) -> (PathBuf, TrainConfig, ReportOptions) {
    let root = tmp(name);
    let cfg = tiny(&root);
    train(&cfg, false).unwrap();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::os::unix::fs::symlink(repo.join("data"), root.join("data")).unwrap();
    let opts =
        ReportOptions { root: root.clone(), out_dir: root.join("report"), presets: vec![], train_missing: false };
    (root, cfg, opts)
}

#[test]
fn report_compares_matformer_with_baselines_and_mix_n_match() {
    let (root, cfg, mut opts) = shipped_tiny("lm");

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

#[test]
fn report_steps_compare_a_shorter_run_and_list_the_shipped_model_beside_it() {
    let (root, shipped, mut opts) = shipped_tiny("short");
    let cfg = TrainConfig { report_steps: Some(6), ..shipped };
    let err = family_report(&cfg, &opts).unwrap_err().to_string();
    assert!(err.contains("6-step MatFormer run") && err.contains("--steps 6"), "{err}");

    opts.train_missing = true;
    let r = family_report(&cfg, &opts).unwrap();
    assert_eq!(r.steps, 6);
    assert_eq!(r.model, PathBuf::from("runs/report/tiny-joint.safetensors"));
    let sh = r.shipped.as_ref().expect("the shipped model is not the compared one");
    assert_eq!((sh.model.clone(), sh.steps), (PathBuf::from("models/tiny.safetensors"), 12));
    assert_eq!(sh.rows.len(), r.rows.len());
    for ((e, a), row) in sh.rows.iter().zip(&r.rows) {
        assert_eq!((e.params, e.width), (row.matformer.params, row.matformer.width));
        // Twice the steps of the same recipe: a different model, measured, not copied.
        assert_ne!(e.loss, row.matformer.loss);
        assert!((0.0..=1.0).contains(&a.agreement));
    }
    assert_eq!(sh.rows.last().unwrap().1.agreement, 1.0);
    let md = markdown::render(std::slice::from_ref(&r));
    assert!(
        md.contains("### The shipped model") && md.contains("`models/tiny.safetensors`, trained 12 steps (2×"),
        "{md}"
    );

    // Baselines left over from a recipe with another step count hold the same model shapes, and are refused.
    let longer = TrainConfig { report_steps: Some(8), ..cfg.clone() };
    std::fs::remove_file(root.join("runs/report/tiny-joint.safetensors")).unwrap();
    std::fs::remove_dir_all(root.join("runs/report/tiny-joint")).unwrap();
    let err = family_report(&longer, &opts).unwrap_err().to_string();
    assert!(err.contains("tiny-baseline-s") && err.contains("another recipe") && err.contains("stale"), "{err}");

    // A section kept in report.json reads back to the same bits, so keeping it does not drift.
    let text = serde_json::to_string(&r).unwrap();
    let back: FamilyReport = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
    // report.json written before `shipped` existed still reads, and a regenerated family replaces only its own.
    let mut old = serde_json::to_value(&r).unwrap();
    old.as_object_mut().unwrap().remove("shipped");
    let mut other: FamilyReport = serde_json::from_value(old).unwrap();
    assert!(other.shipped.is_none());
    other.preset = "other".into();
    let mut reports = vec![other.clone(), r.clone()];
    let mut again = r.clone();
    again.steps = 99;
    merge(&mut reports, again);
    assert_eq!(reports.iter().map(|x| (x.preset.as_str(), x.steps)).collect::<Vec<_>>(), [("other", 6), ("tiny", 99)]);
    let _ = std::fs::remove_dir_all(&root);
}
