//! CPU measurements: memory bandwidth, GEMM rates, FFN scaling with width, decode per granularity.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use half::f16;
use matformer_cpu::{fast, WeightElem};
use matformer_graph::{DType, ModelConfig, ModelWeights, Submodel};
use matformer_runtime::{CpuLm, LmExecutor, Logits};
use rayon::prelude::*;
use serde_json::{json, Value};

/// Median of `reps` timings of `f`, in seconds, after one warm-up call.
pub fn median_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Streaming read bandwidth (GB/s): a parallel sum over a buffer far larger than the caches.
fn bandwidth(quick: bool) -> f64 {
    let n = if quick { 32 << 20 } else { 128 << 20 }; // f32 elements: 128 MiB or 512 MiB
    let buf: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    let secs = median_secs(if quick { 3 } else { 7 }, || {
        let s: f32 = buf.par_chunks(1 << 16).map(sum_lanes).sum();
        black_box(s);
    });
    (n * 4) as f64 / secs / 1e9
}

/// Sum with independent vector accumulators so the loop is limited by memory, not by add latency.
/// Explicit AVX where available: LLVM tends to emit narrow code for plain lane-array loops.
fn sum_lanes(c: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX (checked above).
            return unsafe { sum_avx(c) };
        }
    }
    let mut acc = [0.0f32; 16];
    for ch in c.chunks_exact(16) {
        for i in 0..16 {
            acc[i] += ch[i];
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn sum_avx(c: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); 4];
    let chunks = c.chunks_exact(32);
    for ch in chunks {
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: `ch` has 32 floats, so each 8-float load at 8*j is in bounds.
            *a = _mm256_add_ps(*a, unsafe { _mm256_loadu_ps(ch.as_ptr().add(8 * j)) });
        }
    }
    let mut out = [0.0f32; 8];
    let total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    // SAFETY: `out` holds 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), total) };
    out.iter().sum()
}

fn gemm_rate<W: WeightElem>(n: usize, k: usize, m: usize, reps: usize, conv: impl Fn(f32) -> W) -> f64 {
    let x: Vec<f32> = (0..n * k).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
    let w: Vec<W> = (0..m * k).map(|i| conv(((i % 17) as f32 - 8.0) * 0.01)).collect();
    let mut y = vec![0.0f32; n * m];
    let secs = median_secs(reps, || fast::matmul_nt(&x, &w, None, &mut y, n, k, m));
    2.0 * (n * k * m) as f64 / secs / 1e9
}

/// GFLOP/s of y[n,m] = x[n,768]·W[m,768]ᵀ on the FFN shapes of a GPT-2-small-sized model.
fn gemm(quick: bool) -> Value {
    let mut rows = vec![];
    for n in [1usize, 64, 512] {
        for m in [384usize, 768, 1536, 3072] {
            let reps = if quick {
                3
            } else if n == 1 {
                50
            } else {
                9
            };
            let f32_rate = gemm_rate(n, 768, m, reps, |v| v);
            let f16_rate = gemm_rate(n, 768, m, reps, f16::from_f32);
            rows.push(json!({ "n": n, "m": m, "f32_gflops": f32_rate, "f16_weights_gflops": f16_rate }));
        }
    }
    Value::Array(rows)
}

/// One FFN (up, GELU, down) for one token at each width: time relative to the full width.
fn ffn_scaling(quick: bool) -> Value {
    let (d, d_ff) = (768, 3072);
    let up: Vec<f32> = (0..d_ff * d).map(|i| ((i % 19) as f32 - 9.0) * 1e-3).collect();
    let down: Vec<f32> = up.clone();
    let x = vec![0.1f32; d];
    let mut h = vec![0.0f32; d_ff];
    let mut y = vec![0.0f32; d];
    let reps = if quick { 20 } else { 200 };
    let mut times = vec![];
    for w in [d_ff / 8, d_ff / 4, d_ff / 2, d_ff] {
        let t = median_secs(reps, || {
            fast::matmul_nt(&x, &up[..w * d], None, &mut h[..w], 1, d, w);
            fast::gelu_tanh(&mut h[..w]);
            fast::matmul_nn(&h[..w], &down[..w * d], None, &mut y, 1, w, d);
        });
        times.push((w, t));
    }
    let full = times.last().unwrap().1;
    Value::Array(
        times.iter().map(|(w, t)| json!({ "width": w, "us": t * 1e6, "ratio_to_xl": t / full, "ideal": *w as f64 / d_ff as f64 })).collect(),
    )
}

/// Bytes one decode step must read: every weight the submodel touches (the token table only for the tied
/// head) plus the KV cache.
fn bytes_per_token(cfg: &ModelConfig, sub: &Submodel, dtype: DType, ctx: usize) -> f64 {
    let weights = sub.params(cfg) as f64 - (cfg.max_seq_len() * cfg.d_model) as f64; // learned positions: one row
    let kv = 2 * sub.active_layers().count() * ctx * cfg.n_kv_heads * cfg.head_dim() * 4;
    weights * dtype.size() as f64 + kv as f64
}

/// Decode ms/token per granularity for a ~100M-parameter GPT-2-small-shaped MatLM, f32 and f16.
fn decode(quick: bool, bw_gbs: f64) -> Result<Value> {
    let cfg = if quick {
        ModelConfig::gpt2_style(8192, 384, 6, 6, 1536, 256)
    } else {
        ModelConfig::gpt2_style(50257, 768, 12, 12, 3072, 1024)
    };
    eprintln!("[bench] building a random MatLM with {} parameters", Submodel::full(&cfg).params(&cfg));
    let base = ModelWeights::random(cfg.clone(), 0)?;
    let (prompt_len, steps) = if quick { (8, 8) } else { (16, 32) };
    let prompt: Vec<u32> = (0..prompt_len as u32).collect();
    let (mut rows, mut verify) = (vec![], vec![]);
    for dtype in [DType::F32, DType::F16] {
        let w = Arc::new(if dtype == DType::F32 { base.clone() } else { base.to_dtype(dtype) });
        let mut exec = CpuLm::new(w)?;
        for g in &cfg.granularities {
            let sub = Submodel::named(&cfg, &g.name)?;
            exec.reset();
            exec.forward(&prompt, &sub, Logits::Last)?;
            let start = Instant::now();
            for i in 0..steps {
                black_box(exec.forward(&[(i % 100) as u32], &sub, Logits::Last)?);
            }
            let ms = start.elapsed().as_secs_f64() * 1e3 / steps as f64;
            let ctx = prompt_len + steps / 2;
            let roofline_ms = bytes_per_token(&cfg, &sub, dtype, ctx) / (bw_gbs * 1e9) * 1e3;
            rows.push(json!({
                "dtype": format!("{dtype:?}").to_lowercase(), "submodel": g.name, "ffn_width": g.width,
                "params": sub.params(&cfg), "ms_per_token": ms, "tokens_per_s": 1e3 / ms,
                "roofline_ms": roofline_ms, "roofline_fraction": roofline_ms / ms,
            }));
            eprintln!("[bench] decode {dtype:?} {}: {ms:.2} ms/token", g.name);
        }
        // A speculative verify pass: k+1 tokens with every row's logits, relative to one xl decode step.
        // On a memory-bound model it should cost little more than one step (each weight is read once).
        let xl = Submodel::full(&cfg);
        let xl_ms = rows.last().map_or(f64::NAN, |r| r["ms_per_token"].as_f64().unwrap_or(f64::NAN));
        for k in [2usize, 4, 6] {
            let batch: Vec<u32> = (0..=k as u32).collect();
            let reps = if quick { 3 } else { 8 };
            let mut best = f64::INFINITY;
            for _ in 0..reps {
                let keep = exec.cached_len();
                let start = Instant::now();
                black_box(exec.forward(&batch, &xl, Logits::All)?);
                best = best.min(start.elapsed().as_secs_f64() * 1e3);
                exec.truncate(keep);
            }
            verify.push(json!({ "dtype": format!("{dtype:?}").to_lowercase(), "k": k, "ms": best,
                "xl_steps": best / xl_ms }));
        }
    }
    Ok(json!({ "model": { "d_model": cfg.d_model, "n_layers": cfg.n_layers, "d_ff": cfg.d_ff,
        "vocab": cfg.n_outputs(), "params": Submodel::full(&cfg).params(&cfg) }, "prompt_tokens": prompt_len,
        "decoded_tokens": steps, "rows": rows, "verify": verify }))
}

/// Run every CPU measurement.
pub fn run(quick: bool) -> Result<Value> {
    eprintln!("[bench] memory bandwidth");
    let bw = bandwidth(quick);
    eprintln!("[bench] GEMM");
    let gemm = gemm(quick);
    eprintln!("[bench] FFN scaling");
    let ffn = ffn_scaling(quick);
    let decode = decode(quick, bw)?;
    Ok(json!({ "bandwidth_gbs": bw, "gemm": gemm, "ffn_scaling": ffn, "decode": decode }))
}
