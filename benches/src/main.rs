//! `matformer-bench`: measures, in one run, what `cargo xtask bench` reports (JSON + a table).
//!
//! Usage: `matformer-bench [--quick] [--device cpu|gpu] [--out results.json] [--torch torch.json]`
//! `--device gpu` adds the GPU sections (kernel time per granularity, end-to-end decode) to the CPU ones.

mod alloc_count;
mod cpu;
mod elastic;
mod gpu_kernels;
mod report;
mod training;

#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;

use std::path::PathBuf;

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let mut quick = false;
    let mut out = PathBuf::from("target/bench/results.json");
    let mut torch: Option<PathBuf> = None;
    let mut gpu = false;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--only" => only = Some(args.next().context("--only needs cpu, elastic, training or gpu")?),
            "--out" => out = args.next().context("--out needs a path")?.into(),
            "--torch" => torch = Some(args.next().context("--torch needs a path")?.into()),
            "--device" => match args.next().as_deref() {
                Some("gpu") => gpu = true,
                Some("cpu") => gpu = false,
                other => anyhow::bail!("--device takes cpu or gpu, got {other:?}"),
            },
            other => anyhow::bail!(
                "unknown argument `{other}` (expected --quick, --device cpu|gpu, --only SECTION, --out PATH, --torch PATH)"
            ),
        }
    }
    let torch_json = match &torch {
        Some(p) => Some(serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?),
        None => None,
    };
    if let Some(o) = &only {
        anyhow::ensure!(
            ["cpu", "elastic", "training", "gpu"].contains(&o.as_str()),
            "--only takes cpu, elastic, training or gpu, got `{o}`"
        );
        gpu |= o == "gpu";
    }
    let wanted = |section: &str| only.as_deref().is_none_or(|o| o == section);
    let mut json = serde_json::json!({ "threads": rayon::current_num_threads(), "quick": quick });
    if wanted("cpu") {
        json["cpu"] = cpu::run(quick)?;
    }
    if wanted("elastic") {
        json["elastic"] = elastic::run(quick)?;
    }
    if wanted("training") {
        json["training"] = training::run(quick)?;
    }
    if gpu && wanted("gpu") {
        json["gpu"] = gpu_kernels::run(quick)?;
        json["gpu"]["e2e"] = gpu_kernels::decode(quick)?;
    }
    if let Some(t) = &torch_json {
        json["torch"] = t.clone();
    }
    report::print(&json);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&json)?)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
