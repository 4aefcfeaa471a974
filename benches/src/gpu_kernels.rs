//! GPU FFN kernels at each granularity: time relative to xl. Wall time around a submitted batch of
//! dispatches (timestamp queries are not wired in yet), so per-dispatch overhead is included.

use std::time::Instant;

use anyhow::Result;
use half::f16;
use matformer_kernels::{GpuContext, GpuWeight, MatmulBindings, MatmulNnOp, MatmulNtOp, MatmulShape};
use serde_json::{json, Value};

fn time_ffn<W: GpuWeight>(ctx: &GpuContext, conv: impl Fn(f32) -> W, n: usize, reps: usize) -> Result<Vec<Value>> {
    let (d, d_ff) = (768usize, 3072usize);
    let w: Vec<W> = (0..d_ff * d).map(|i| conv(((i % 19) as f32 - 9.0) * 1e-3)).collect();
    let up = ctx.upload_weights("bench.up", &w, d_ff, d)?;
    let down = ctx.upload_weights("bench.down_t", &w, d_ff, d)?;
    let x = ctx.upload_f32("bench.x", &vec![0.1; n * d])?;
    let h = ctx.storage_buffer("bench.h", n * d_ff)?;
    let y = ctx.storage_buffer("bench.y", n * d)?;
    let up_op = MatmulNtOp::new(ctx, MatmulBindings { x: (&x).into(), w: &up, bias: None, y: (&h).into() })?;
    let down_op = MatmulNnOp::new(ctx, MatmulBindings { x: (&h).into(), w: &down, bias: None, y: (&y).into() })?;
    let mut out = vec![];
    for width in [d_ff / 8, d_ff / 4, d_ff / 2, d_ff] {
        let run = || -> Result<f64> {
            let t0 = Instant::now();
            ctx.run_pass(|pass| {
                for _ in 0..reps {
                    up_op.record(ctx, pass, MatmulShape { n, k: d, m: width })?;
                    down_op.record(ctx, pass, MatmulShape { n, k: width, m: d })?;
                }
                Ok(())
            })?;
            ctx.wait()?;
            Ok(t0.elapsed().as_secs_f64() / reps as f64)
        };
        run()?; // compile + warm up
        let mut t: Vec<f64> = (0..3).map(|_| run()).collect::<Result<_>>()?;
        t.sort_by(f64::total_cmp);
        out.push((width, t[1]));
    }
    let full = out.last().expect("four widths").1;
    Ok(out.into_iter().map(|(w, t)| json!({ "width": w, "us": t * 1e6, "ratio_to_xl": t / full })).collect())
}

/// FFN (up + down) kernel time per granularity on the GPU, f32 and f16 weights, decode (n=1) and prefill (n=64).
pub fn run(quick: bool) -> Result<Value> {
    let ctx = match GpuContext::new() {
        Ok(c) => c,
        Err(e) => return Ok(json!({ "skipped": format!("no GPU adapter: {e}") })),
    };
    eprintln!("[bench] GPU: {}", ctx.info_line());
    let reps = if quick || ctx.is_software() { 4 } else { 50 };
    let mut rows = vec![];
    for n in [1usize, 64] {
        rows.push(json!({ "dtype": "f32", "n": n, "widths": time_ffn(&ctx, |v| v, n, reps)? }));
        rows.push(json!({ "dtype": "f16", "n": n, "widths": time_ffn(&ctx, f16::from_f32, n, reps)? }));
    }
    Ok(
        json!({ "adapter": ctx.info_line(), "software": ctx.is_software(), "timing": "wall clock per dispatch batch", "ffn": rows }),
    )
}

/// End-to-end decode on the GPU per granularity (tokens/s), with the CPU path's beside it, and the
/// timestamp-query profile of every op at each granularity relative to xl.
pub fn decode(quick: bool) -> Result<Value> {
    use std::sync::Arc;

    use matformer_graph::{ModelConfig, ModelWeights, Submodel};
    use matformer_runtime::gpu::{generate_on_device, GpuLm};
    use matformer_runtime::{generate, CpuLm, LmExecutor, SamplingParams};

    let ctx = match GpuContext::new() {
        Ok(c) => Arc::new(c),
        Err(e) => return Ok(json!({ "skipped": format!("no GPU adapter: {e}") })),
    };
    // Small on a software adapter (lavapipe runs shaders on the CPU); GPT-2-small-sized on real hardware.
    let cfg = if quick || ctx.is_software() {
        ModelConfig::gpt2_style(4096, 256, 4, 4, 1024, 128)
    } else {
        ModelConfig::gpt2_style(50257, 768, 12, 12, 3072, 1024)
    };
    let w = ModelWeights::random(cfg.clone(), 0)?;
    let mut gpu = GpuLm::new(ctx.clone(), &w)?;
    let w = Arc::new(w);
    let mut cpu = CpuLm::new(w.clone())?;
    let steps = if ctx.is_software() { 16 } else { 64 };
    let prompt: Vec<u32> = (0..8).collect();
    let greedy = SamplingParams::default();
    let mut rows = vec![];
    let mut profiles = vec![];
    for g in &cfg.granularities {
        let sub = Submodel::named(&cfg, &g.name)?;
        generate_on_device(&mut gpu, &prompt, &sub, 2, &greedy, |_| {})?; // warm up pipelines
        let t0 = Instant::now();
        generate_on_device(&mut gpu, &prompt, &sub, steps, &greedy, |_| {})?;
        let gpu_tps = steps as f64 / t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        generate(&mut cpu, &prompt, &sub, steps, &greedy, |_| {})?;
        let cpu_tps = steps as f64 / t0.elapsed().as_secs_f64();
        rows.push(json!({ "submodel": g.name, "gpu_tokens_per_s": gpu_tps, "cpu_tokens_per_s": cpu_tps }));
        // Per-op device time from timestamp queries (when the adapter has them).
        gpu.set_profiling(true)?;
        gpu.reset();
        gpu.forward_argmax(&prompt, &sub)?;
        gpu.take_profile();
        for i in 0..8u32 {
            gpu.forward_argmax(&[i], &sub)?;
        }
        let p = gpu.take_profile();
        gpu.set_profiling(false)?;
        profiles.push((g.name.clone(), p));
    }
    let xl = &profiles.last().expect("granularities").1;
    let labels = ["ffn.up", "ffn.act", "ffn.down", "attn.core", "attn.q", "head"];
    let per_op: Vec<Value> = profiles
        .iter()
        .map(|(name, p)| {
            let ops: serde_json::Map<String, Value> = labels
                .iter()
                .map(|l| ((*l).to_string(), json!({ "us": p.total_ns(l) / 8e3, "ratio_to_xl": p.total_ns(l) / xl.total_ns(l).max(1.0) })))
                .collect();
            json!({ "submodel": name, "timestamps": p.timestamps, "ffn_ratio_to_xl": p.total_ns("ffn.") / xl.total_ns("ffn.").max(1.0), "ops": ops })
        })
        .collect();
    Ok(json!({ "model_params": Submodel::full(&cfg).params(&cfg), "decode": rows, "profile": per_op }))
}
