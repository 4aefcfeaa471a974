//! The `matformer` binary end to end: every command, and clear errors (exit code 1, no panic) on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use matformer_graph::{checkpoint, ModelConfig, ModelWeights};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_matformer"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("matformer-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn fails_cleanly(args: &[&str], needle: &str) {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{args:?} should fail with exit code 1: {err}");
    assert!(err.contains(needle), "{args:?}: stderr `{err}` lacks `{needle}`");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

fn model(dir: &Path) -> String {
    let p = dir.join("lm.safetensors");
    let w = ModelWeights::random(ModelConfig::gpt2_style(256, 32, 2, 4, 64, 64), 1).unwrap();
    checkpoint::save(&w, &p).unwrap();
    p.display().to_string()
}

#[test]
fn info_generate_extract_eval() {
    let dir = tmp("all");
    let m = model(&dir);
    let info = ok(&["info", &m]);
    for needle in ["\"d_ff\": 64", "xl", "FLOPs/token"] {
        assert!(info.contains(needle), "info lacks {needle}: {info}");
    }
    let gen = |seed: &str| {
        ok(&["generate", "--model", &m, "--submodel", "s", "--prompt", "Hi", "--max-tokens", "12", "--seed", seed])
    };
    assert_eq!(gen("3"), gen("3"), "seeded generation must be reproducible");
    assert!(gen("3").starts_with("Hi"));
    let small = dir.join("small.safetensors").display().to_string();
    let out = ok(&["extract", "--model", &m, "--submodel", "s,m;skip=1", "--out", &small, "--dtype", "f16"]);
    assert!(out.contains("1 layers"), "{out}");
    assert!(ok(&["info", &small]).contains("F16"));
    let text = dir.join("t.txt");
    std::fs::write(&text, "To be, or not to be, that is the question.\n".repeat(4)).unwrap();
    let ev = ok(&["eval", "--model", &m, "--data", text.to_str().unwrap(), "--all"]);
    assert_eq!(
        ev.lines().filter(|l| l.contains("perplexity") || l.starts_with("s ") || l.starts_with("xl ")).count(),
        3,
        "{ev}"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tmp("bad");
    let m = model(&dir);
    fails_cleanly(&["generate", "--model", &m, "--submodel", "xxl"], "unknown granularity");
    fails_cleanly(&["generate", "--model", &m, "--submodel", "65"], "outside the model");
    fails_cleanly(&["generate", "--model", &m, "--prompt", ""], "empty");
    let long = "x".repeat(65);
    fails_cleanly(&["generate", "--model", &m, "--prompt", &long], "context length");
    fails_cleanly(&["info", "/nonexistent/model.safetensors"], "no such file");
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}").unwrap();
    fails_cleanly(&["info", garbage.to_str().unwrap()], "bad checkpoint");
    fails_cleanly(&["extract", "--model", &m, "--submodel", "s", "--out", "/proc/nope/x.safetensors"], "error");
    fails_cleanly(&["eval", "--model", &m, "--data", "/nonexistent.txt"], "nonexistent");
}

#[test]
fn plan_consistency_speculative_and_governed() {
    let dir = tmp("elastic");
    let m = model(&dir);
    let text = dir.join("t.txt");
    std::fs::write(&text, "Now is the winter of our discontent\n".repeat(8)).unwrap();
    let t = text.to_str().unwrap();
    let out = ok(&["plan", "--model", &m, "--budget", "params=40K"]);
    assert!(out.contains("best under Params(40000)"), "{out}");
    let csv = dir.join("table.csv");
    let out = ok(&[
        "plan",
        "--model",
        &m,
        "--budget",
        "flops=200K",
        "--data",
        t,
        "--max-evals",
        "2",
        "--export",
        csv.to_str().unwrap(),
    ]);
    assert!(out.contains("exported"), "{out}");
    let imported = ok(&["plan", "--model", &m, "--import", csv.to_str().unwrap(), "--data", t]);
    assert!(imported.lines().count() >= 2, "{imported}");
    fails_cleanly(&["plan", "--model", &m, "--budget", "watts=3"], "unknown budget kind");
    fails_cleanly(&["plan", "--model", &m, "--budget", "params=10"], "no submodel fits");
    let bad_csv = dir.join("bad.csv");
    std::fs::write(&bad_csv, "name,ffn_widths,skipped_layers\nx,\"[8]\",\"[]\"\n").unwrap();
    fails_cleanly(&["plan", "--model", &m, "--import", bad_csv.to_str().unwrap()], "but the model has 2 layers");
    let c = ok(&["consistency", "--model", &m, "--data", t]);
    assert!(c.contains("100.00%"), "xl agrees with itself: {c}");
    let greedy = ok(&["generate", "--model", &m, "--temperature", "0", "--max-tokens", "20", "--prompt", "ab"]);
    let spec = ok(&[
        "generate",
        "--model",
        &m,
        "--draft",
        "s",
        "--k",
        "3",
        "--max-tokens",
        "20",
        "--prompt",
        "ab",
        "--temperature",
        "0",
    ]);
    assert_eq!(greedy, spec, "speculative output must equal greedy xl output");
    let trace = dir.join("trace.csv");
    ok(&[
        "generate",
        "--model",
        &m,
        "--target-tps",
        "1000000",
        "--max-tokens",
        "10",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(csv.lines().count(), 11, "{csv}");
    assert!(csv.lines().last().unwrap().contains(",s,"), "an impossible target ends on the smallest rung: {csv}");
}

#[test]
fn train_resumes_and_exports_a_loadable_model() {
    let dir = tmp("train");
    let out = dir.join("run");
    let model = dir.join("m.safetensors");
    let (o, m) = (out.to_str().unwrap(), model.to_str().unwrap());
    let args = ["train", "matlm-shakespeare", "--steps", "2", "--batch", "1", "--out-dir", o, "--export", m];
    let first = ok(&args);
    assert!(first.contains("steps 0..2"), "{first}");
    // Asking for more steps resumes from the checkpoint instead of starting over.
    let mut more = args.to_vec();
    more[3] = "3";
    let second = ok(&more);
    assert!(second.contains("steps 2..3"), "{second}");
    assert!(ok(&["info", m]).contains("xl"));
    fails_cleanly(&["train", "no-such-preset"], "neither a preset");
    fails_cleanly(&["train", "matlm-shakespeare", "--objective", "greedy"], "unknown objective");
}
