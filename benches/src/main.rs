//! `matformer-bench`: measures, in one run, what `cargo xtask bench` reports (JSON + a table).
//!
//! Usage: `matformer-bench [--quick] [--out results.json] [--torch torch.json]`

mod alloc_count;
mod cpu;
mod elastic;
mod report;

#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;

use std::path::PathBuf;

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let mut quick = false;
    let mut out = PathBuf::from("target/bench/results.json");
    let mut torch: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--out" => out = args.next().context("--out needs a path")?.into(),
            "--torch" => torch = Some(args.next().context("--torch needs a path")?.into()),
            other => anyhow::bail!("unknown argument `{other}` (expected --quick, --out PATH, --torch PATH)"),
        }
    }
    let torch_json = match &torch {
        Some(p) => Some(serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?),
        None => None,
    };
    let results = cpu::run(quick)?;
    let elastic = elastic::run(quick)?;
    let mut json = serde_json::json!({ "cpu": results, "elastic": elastic, "threads": rayon::current_num_threads(),
        "quick": quick });
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
