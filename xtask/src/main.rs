//! `cargo xtask <task>`: the project's scripted chores.
//!
//! - `bench [--quick] [--device cpu|gpu]`: run the benchmark suite (and PyTorch's, when `.venv-ref` exists), print a table,
//!   write `target/bench/results.json`.
//! - `validate-shaders`: parse and validate every WGSL kernel variant with naga (no device needed).
//! - `train-demo [preset...]`: reproduce the shipped models (`matlm-shakespeare`, `matvit-fashion`).
//! - `report [--no-train] [--out DIR] [preset...]`: the paper-style evaluation report (MatFormer vs
//!   independently trained baselines, Mix'n'Match, consistency) as `report/README.md` plus PNGs; trains the
//!   missing runs first (resumable, in `runs/report/`) unless `--no-train`. Naming presets regenerates only
//!   their sections and keeps the others from `report/report.json`.
//! - `test-kernels`: run the GPU kernel and end-to-end GPU test suites (`MATFORMER_REQUIRE_GPU=1` makes them
//!   fail instead of skipping when there is no adapter).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("[xtask] {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn bench(args: &[String]) -> Result<()> {
    let root = root();
    let quick = args.iter().any(|a| a == "--quick");
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let mut bench_args: Vec<String> = vec!["--out".into(), out_dir.join("results.json").display().to_string()];
    if quick {
        bench_args.push("--quick".into());
    }
    if let Some(i) = args.iter().position(|a| a == "--device") {
        bench_args.push("--device".into());
        bench_args.push(args.get(i + 1).cloned().context("--device needs cpu or gpu")?);
    }
    let python = root.join(".venv-ref/bin/python");
    if python.exists() {
        let torch_out = out_dir.join("torch.json");
        let mut cmd = Command::new(&python);
        cmd.arg(root.join("scripts/bench_torch.py"));
        if quick {
            cmd.arg("--quick");
        }
        let output = cmd.output().context("running scripts/bench_torch.py")?;
        if output.status.success() {
            std::fs::write(&torch_out, &output.stdout)?;
            bench_args.extend(["--torch".into(), torch_out.display().to_string()]);
        } else {
            eprintln!("[xtask] PyTorch benchmark failed:\n{}", String::from_utf8_lossy(&output.stderr));
        }
    } else {
        eprintln!("[xtask] no .venv-ref: skipping the PyTorch comparison (see scripts/README.md)");
    }
    run(Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["run", "--release", "-q", "-p", "matformer-bench", "--"])
        .args(&bench_args))
}

fn validate_shaders() -> Result<()> {
    let variants = matformer_kernels::all_variants();
    let mut failed = 0;
    for v in &variants {
        if let Err(e) = v.validate() {
            eprintln!("{}: {e}", v.label());
            failed += 1;
        }
    }
    println!("{} shader variants validated, {failed} failed", variants.len());
    if failed > 0 {
        bail!("{failed} shader variants failed validation");
    }
    Ok(())
}

fn test_kernels() -> Result<()> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root()).args(["test", "--release", "--test", "gpu_kernels", "--test", "gpu_kernels_ops"]);
    if root().join("tests/gpu_e2e.rs").exists() {
        cmd.args(["--test", "gpu_e2e"]);
    }
    run(cmd.env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into())))
}

/// Reproduce the shipped models: each preset trains (resuming from `runs/<name>` if interrupted) and
/// exports to `models/`.
fn train_demo(args: &[String]) -> Result<()> {
    let presets: Vec<&str> = if args.is_empty() {
        vec!["matlm-shakespeare", "matvit-fashion"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    for p in presets {
        run(Command::new(env!("CARGO")).current_dir(root()).args([
            "run",
            "--release",
            "-p",
            "matformer-cli",
            "--",
            "train",
            p,
        ]))?;
    }
    Ok(())
}

fn report(args: &[String]) -> Result<()> {
    let root = root();
    let mut opts = matformer_train::report::ReportOptions {
        out_dir: root.join("report"),
        root: root.clone(),
        presets: Vec::new(),
        train_missing: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--no-train" => opts.train_missing = false,
            "--out" => opts.out_dir = root.join(it.next().context("--out needs a directory")?),
            p if !p.starts_with('-') => opts.presets.push(p.to_string()),
            other => bail!("unknown report argument `{other}` (expected --no-train, --out DIR, presets)"),
        }
    }
    if opts.presets.is_empty() {
        opts.presets = vec!["matlm-shakespeare".into(), "matvit-fashion".into()];
    }
    matformer_train::report::run(&opts)?;
    println!("wrote {}", opts.out_dir.join("README.md").display());
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("validate-shaders") => validate_shaders(),
        Some("test-kernels") => test_kernels(),
        Some("train-demo") => train_demo(&args[1..]),
        Some("report") => report(&args[1..]),
        _ => bail!(
            "usage: cargo xtask <bench [--quick] [--device cpu|gpu] | validate-shaders | test-kernels | \
             train-demo [preset...] | report [--no-train] [--out DIR] [preset...]>"
        ),
    }
}
