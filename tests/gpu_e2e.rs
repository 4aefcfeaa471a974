//! End-to-end GPU executors against the CPU executors: MatLM (GPT-2 style and Llama style with GQA) and
//! MatViT logits at every granularity, on Mix'n'Match specs with odd widths and a skipped layer, with f32
//! and f16 weights (bf16 too for the LMs); KV-cache decode vs prefill (and chunked prefill) on the GPU;
//! switching submodel between decode steps; speculative decoding on two GPU executors; device-side argmax
//! and sampling; per-op profiling.
//!
//! All tests share one `GpuContext` (pipelines compile once per binary) and run one at a time. They skip
//! with a printed reason when there is no adapter and fail when `MATFORMER_REQUIRE_GPU=1`. The whole file
//! runs in a few seconds on lavapipe.
//!
//! Weights are random but not the "trivial" init (zero biases, unit norms): every bias and norm parameter
//! is random too, so a dropped or misbound bias/shift changes the result, and matrices are scaled like
//! 1/sqrt(fan-in) so activations and logits are O(1).
//!
//! Tolerances (GPU vs CPU). Both sides compute in f32 with f32 accumulation and widen f16 weights exactly
//! (so f16 cases use the f32 tolerance: both sides see identical weight values); they differ only by
//! summation order (tiled/vector GPU kernels vs. the CPU's blocked SIMD kernels, online vs. two-pass
//! softmax, the GPU's exp/tanh/erf). Over three layers with O(1) activations that is a few f32 ulps of the
//! O(1..10) intermediate sums: the largest error measured on lavapipe is 2.9e-6 absolute on O(0.1-3)
//! logits. We allow `5e-5 + 5e-5·|want|`, about 20x that, so that another adapter's FMA contraction or
//! transcendental functions do not make the tests flaky, while a real bug stays far outside: computing
//! the FFN with one neuron too few gives errors of 1e3-1e5x this tolerance.

#[path = "common/gpu.rs"]
mod gpu;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use gpu::{assert_close, gpu_required, max_scaled_err};
use matformer::graph::{DType, ModelConfig, ModelWeights, Submodel, Tensor};
use matformer::runtime::{
    generate, generate_on_device, gpu_vit_forward, lm_executor_with_fallback, sampling::argmax, speculative_generate,
    vit_forward, CpuLm, Device, GpuContext, GpuLm, GpuVit, LmExecutor, Logits, RuntimeError, SamplingParams,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Absolute logit tolerance (see the module docs: ~20x the largest error measured on lavapipe).
const LOGIT_ATOL: f32 = 5e-5;
/// Relative logit tolerance.
const LOGIT_RTOL: f32 = 5e-5;

static CTX: OnceLock<Result<Arc<GpuContext>, String>> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

/// The shared context as an `Arc` (executors hold one), with the skip/require policy of `common/gpu.rs`,
/// plus a guard that runs the tests of this file one at a time: some check that a step builds no pipeline
/// on the shared context, which a test running beside them would do (lavapipe gains nothing from
/// parallel tests on 2 cores anyway).
fn ctx_or_skip() -> Option<(MutexGuard<'static, ()>, Arc<GpuContext>)> {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ctx = CTX.get_or_init(|| {
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            std::env::set_var("XDG_RUNTIME_DIR", "/tmp");
        }
        match GpuContext::new() {
            Ok(c) => {
                eprintln!("GPU e2e tests run on: {}", c.info_line());
                Ok(Arc::new(c))
            }
            Err(e) => Err(e.to_string()),
        }
    });
    match ctx {
        Ok(c) => Some((serial, c.clone())),
        Err(reason) if gpu_required() => panic!("MATFORMER_REQUIRE_GPU=1 but no GPU context: {reason}"),
        Err(reason) => {
            eprintln!("skipping GPU test: {reason} (set MATFORMER_REQUIRE_GPU=1 to fail instead)");
            None
        }
    }
}

/// Random weights with random biases and norm parameters, matrices ~ U(±1/sqrt(fan-in)).
fn weights(cfg: &ModelConfig, seed: u64, dtype: DType) -> Arc<ModelWeights> {
    let base = ModelWeights::random(cfg.clone(), seed).unwrap();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37);
    let map = base
        .named_tensors()
        .into_iter()
        .map(|(name, t)| {
            let n = t.numel();
            let (lo, hi) = if name.contains("norm") && name.ends_with(".weight") {
                (0.5, 1.5)
            } else if name.ends_with(".bias") {
                (-0.2, 0.2)
            } else if name.contains("embed") || name == "cls_token" {
                (-1.0, 1.0)
            } else {
                let fan_in = if name.contains("down_t") { t.shape[0] } else { t.shape[1] } as f32;
                (-fan_in.sqrt().recip(), fan_in.sqrt().recip())
            };
            let data: Vec<f32> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
            (name, Tensor::from_f32(t.shape.clone(), data).to_dtype(dtype))
        })
        .collect();
    Arc::new(ModelWeights::from_tensors(cfg.clone(), map).unwrap())
}

fn gpt2() -> ModelConfig {
    ModelConfig::gpt2_style(96, 32, 3, 4, 64, 40)
}

fn llama() -> ModelConfig {
    ModelConfig::llama_style(96, 32, 3, 4, 2, 64, 40)
}

/// Every named granularity plus Mix'n'Match specs with odd widths and a skipped layer.
const SPECS: [&str; 6] = ["s", "m", "l", "xl", "13,-,37", "s,xl,m;skip=0"];

fn tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(0..vocab as u32)).collect()
}

#[test]
fn lm_logits_match_cpu_at_every_granularity() {
    let Some((_serial, ctx)) = ctx_or_skip() else { return };
    for cfg in [gpt2(), llama()] {
        for dtype in [DType::F32, DType::F16, DType::Bf16] {
            let w = weights(&cfg, 3, dtype);
            let mut g = GpuLm::new(ctx.clone(), &w).unwrap();
            let mut c = CpuLm::new(w.clone()).unwrap();
            let toks = tokens(11, 96, 4);
            let pipelines = ctx.pipeline_count();
            let mut worst = 0.0f32;
            for spec in SPECS {
                let sub = Submodel::parse(&cfg, spec).unwrap();
                for which in [Logits::All, Logits::Last] {
                    g.reset();
                    c.reset();
                    let got = g.forward(&toks, &sub, which).unwrap();
                    let want = c.forward(&toks, &sub, which).unwrap();
                    let what = format!("{:?} {dtype:?} {spec} {which:?}", cfg.ffn);
                    worst = worst.max(max_scaled_err(&got, &want, LOGIT_ATOL, LOGIT_RTOL));
                    assert_close(&got, &want, LOGIT_ATOL, LOGIT_RTOL, &what);
                    assert_eq!(g.cached_len(), toks.len());
                }
            }
            eprintln!("{:?} {dtype:?}: worst error {worst:.3}x the tolerance", cfg.ffn);
            // Switching submodel (six of them, two logits modes) built no pipeline.
            assert_eq!(ctx.pipeline_count(), pipelines, "switching submodel must not build pipelines");
        }
    }
}

#[test]
fn kv_cache_decode_equals_prefill_on_gpu() {
    let Some((_serial, ctx)) = ctx_or_skip() else { return };
    for cfg in [gpt2(), llama()] {
        let w = weights(&cfg, 5, DType::F32);
        let mut g = GpuLm::new(ctx.clone(), &w).unwrap();
        // Chunked prefill (4 tokens per submission) must equal one big submission too.
        let mut chunked = GpuLm::with_max_chunk(ctx.clone(), &w, 4).unwrap();
        assert_eq!(chunked.max_chunk(), 4);
        let toks = tokens(14, 96, 6);
        for spec in ["xl", "s", "13,-,37"] {
            let sub = Submodel::parse(&cfg, spec).unwrap();
            g.reset();
            let full = g.forward(&toks, &sub, Logits::All).unwrap();
            g.reset();
            let mut inc = g.forward(&toks[..5], &sub, Logits::All).unwrap();
            for &t in &toks[5..] {
                inc.extend(g.forward(&[t], &sub, Logits::All).unwrap());
            }
            // Same math in another grouping (vector vs tiled kernels, cache vs in-batch keys): f32
            // summation order only.
            assert_close(&inc, &full, LOGIT_ATOL, LOGIT_RTOL, &format!("{:?} {spec} decode", cfg.ffn));
            chunked.reset();
            let ch = chunked.forward(&toks, &sub, Logits::All).unwrap();
            assert_close(&ch, &full, LOGIT_ATOL, LOGIT_RTOL, &format!("{:?} {spec} chunked", cfg.ffn));
            chunked.reset();
            let last = chunked.forward(&toks, &sub, Logits::Last).unwrap();
            assert_close(
                &last,
                &full[13 * 96..],
                LOGIT_ATOL,
                LOGIT_RTOL,
                &format!("{:?} {spec} chunked last", cfg.ffn),
            );
            // Rolling back and re-running the tail gives the same logits (truncate moves the cache length).
            g.truncate(9);
            let again = g.forward(&toks[9..], &sub, Logits::All).unwrap();
            assert_close(&again, &full[9 * 96..], LOGIT_ATOL, LOGIT_RTOL, &format!("{:?} {spec} rollback", cfg.ffn));
        }
    }
}

#[test]
fn switching_submodel_between_decode_steps_matches_cpu() {
    let Some((_serial, ctx)) = ctx_or_skip() else { return };
    for cfg in [llama(), gpt2()] {
        let w = weights(&cfg, 8, DType::F16);
        let mut g = GpuLm::new(ctx.clone(), &w).unwrap();
        let mut c = CpuLm::new(w.clone()).unwrap();
        let subs: Vec<Submodel> = ["xl", "s", "m", "l", "s,xl,m", "xl;skip=1", "13,-,37"]
            .iter()
            .map(|s| Submodel::parse(&cfg, s).unwrap())
            .collect();
        let prompt = tokens(4, 96, 9);
        let rest = tokens(9, 96, 10);
        let pipelines = ctx.pipeline_count();
        let got = g.forward(&prompt, &subs[0], Logits::Last).unwrap();
        let want = c.forward(&prompt, &subs[0], Logits::Last).unwrap();
        assert_close(&got, &want, LOGIT_ATOL, LOGIT_RTOL, "prefill");
        for (i, &t) in rest.iter().enumerate() {
            let sub = &subs[(i + 1) % subs.len()];
            let got = g.forward(&[t], sub, Logits::Last).unwrap();
            let want = c.forward(&[t], sub, Logits::Last).unwrap();
            assert_close(&got, &want, LOGIT_ATOL, LOGIT_RTOL, &format!("{:?} step {i} ({sub})", cfg.ffn));
        }
        assert_eq!(ctx.pipeline_count(), pipelines, "switching submodel must not build pipelines");
    }
}

#[test]
fn speculative_decoding_on_gpu_equals_xl_greedy() {
    let Some((_serial, ctx)) = ctx_or_skip() else { return };
    let cfg = llama();
    let w = weights(&cfg, 21, DType::F32);
    // One context, one upload of the weights, two executors (draft and target keep separate KV caches).
    let mut target = GpuLm::new(ctx.clone(), &w).unwrap();
    let mut draft = target.fork().unwrap();
    // And a separately uploaded executor gives the same results as the fork.
    let mut draft2 = GpuLm::new(ctx.clone(), &w).unwrap();
    let xl = Submodel::full(&cfg);
    let prompt = [5u32, 9, 2, 33, 7];
    let greedy = generate(&mut target, &prompt, &xl, 24, &SamplingParams::default(), |_| {}).unwrap();
    for (spec, k) in [("s", 3), ("m,l,s;skip=1", 4)] {
        let d = Submodel::parse(&cfg, spec).unwrap();
        let g = speculative_generate(&mut draft, &mut target, &prompt, &d, &xl, k, 24, |_| {}).unwrap();
        assert_eq!(g.tokens, greedy.tokens, "draft {spec} k {k}");
        assert!(g.stats.verify_passes > 0);
        let g2 = speculative_generate(&mut draft2, &mut target, &prompt, &d, &xl, k, 24, |_| {}).unwrap();
        let counters = |g: &matformer::runtime::SpecGeneration| {
            (g.tokens.clone(), g.stop, g.stats.drafted, g.stats.accepted, g.stats.verify_passes)
        };
        assert_eq!(counters(&g2), counters(&g), "forked and separately uploaded drafts agree");
    }
    // The CPU's greedy text is the same (the logits agree to ~1e-5 and this prompt has no near-ties).
    let mut cpu = CpuLm::new(w).unwrap();
    let cpu_greedy = generate(&mut cpu, &prompt, &xl, 24, &SamplingParams::default(), |_| {}).unwrap();
    assert_eq!(cpu_greedy.tokens, greedy.tokens);
}

#[test]
fn device_argmax_and_sampling() {
    let Some((_serial, ctx)) = ctx_or_skip() else { return };
    let cfg = gpt2();
    let w = weights(&cfg, 13, DType::F16);
    let mut g = GpuLm::new(ctx.clone(), &w).unwrap();
    for (i, spec) in SPECS.iter().enumerate() {
        let sub = Submodel::parse(&cfg, spec).unwrap();
        let prompt = tokens(3 + i, 96, 20 + i as u64);
        g.reset();
        let host = argmax(&g.forward(&prompt, &sub, Logits::Last).unwrap()) as u32;
        g.reset();
        let dev = g.forward_argmax(&prompt, &sub).unwrap();
        assert_eq!(dev, host, "{spec}: device argmax reads the same logits buffer");
        assert_eq!(g.cached_len(), prompt.len());
        // Decode step: the same again, over the cache.
        let host = argmax(&g.forward(&[dev], &sub, Logits::Last).unwrap()) as u32;
        g.truncate(prompt.len());
        assert_eq!(g.forward_argmax(&[dev], &sub).unwrap(), host, "{spec} decode");
    }
    // Greedy generation with device-side argmax equals host-side greedy generation on the same executor.
    let sub = Submodel::parse(&cfg, "m").unwrap();
    let p = SamplingParams::default();
    let host = generate(&mut g, &[1, 2, 3], &sub, 12, &p, |_| {}).unwrap();
    let dev = generate_on_device(&mut g, &[1, 2, 3], &sub, 12, &p, |_| {}).unwrap();
    assert_eq!(dev, host);
    // Sampling on the device: top-k 3 only returns one of the 3 most likely tokens; same seed, same text.
    g.reset();
    let logits = g.forward(&[4, 5], &sub, Logits::Last).unwrap();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let sp = SamplingParams { temperature: 2.0, top_k: 3, top_p: 1.0, seed: 7 };
    for u in [0.0, 0.3, 0.6, 0.99] {
        g.truncate(0);
        let t = g.forward_sample(&[4, 5], &sub, &sp, u).unwrap() as usize;
        assert!(order[..3].contains(&t), "u={u}: token {t} is not in the top 3");
    }
    let sp = SamplingParams { temperature: 1.0, top_k: 0, top_p: 0.9, seed: 7 };
    let a = generate_on_device(&mut g, &[1, 2, 3], &sub, 10, &sp, |_| {}).unwrap();
    let b = generate_on_device(&mut g, &[1, 2, 3], &sub, 10, &sp, |_| {}).unwrap();
    assert_eq!(a, b);
    assert!(g.forward_sample(&[1], &sub, &sp, 1.0).is_err(), "u must be in [0, 1)");
}

/// Per-op GPU timestamps (for `cargo xtask bench`): every op of the step is labelled, counts follow the
/// submodel (a skipped layer records only its norm, K/V projections, rope and cache write), and profiling does not change the results. Times are
/// reported, not asserted (benchmarks measure, tests assert).
#[test]
fn profiling_labels_every_op() {
    let Some((_serial, ctx)) = ctx_or_skip() else { return };
    let cfg = llama();
    let w = weights(&cfg, 17, DType::F32);
    let mut g = GpuLm::new(ctx.clone(), &w).unwrap();
    let sub = Submodel::parse(&cfg, "s,-,xl").unwrap();
    let plain = g.forward(&[1, 2, 3], &sub, Logits::All).unwrap();
    g.set_profiling(true).unwrap();
    g.reset();
    let profiled = g.forward(&[1, 2, 3], &sub, Logits::All).unwrap();
    assert_eq!(profiled, plain, "profiling must not change the results");
    for t in [4, 5] {
        g.forward_argmax(&[t], &sub).unwrap();
    }
    let p = g.take_profile();
    assert_eq!(p.submissions, 3);
    if !p.timestamps {
        eprintln!("adapter has no timestamps inside passes: profile is empty");
        assert!(p.ops.is_empty());
        return;
    }
    let count = |label: &str| p.ops.iter().find(|o| o.label == label).map_or(0, |o| o.count);
    // Layer 1 is skipped: it still writes its keys and values (3 layers x 3 steps), but runs no attention
    // or FFN (2 active layers x 3 steps).
    for label in ["attn.norm", "attn.k", "attn.rope", "attn.kv_write"] {
        assert_eq!(count(label), 9, "{label}");
    }
    for label in ["attn.q", "attn.core", "ffn.up", "ffn.gate", "ffn.down"] {
        assert_eq!(count(label), 6, "{label}");
    }
    assert_eq!(count("residual"), 12);
    assert_eq!(count("embed"), 3);
    assert_eq!(count("head"), 3);
    assert_eq!(count("argmax"), 2);
    assert_eq!(p.dropped, 0);
    assert!(p.total_ns("ffn.") > 0.0 && p.total_ns("") >= p.total_ns("ffn."));
    for o in &p.ops {
        eprintln!("{:<14} x{:<3} {:>10.1} us", o.label, o.count, o.total_ns / 1e3);
    }
    assert!(g.take_profile().ops.is_empty(), "taking the profile starts a new one");
}

#[test]
fn vit_logits_and_pooled_match_cpu() {
    let Some((_serial, ctx)) = ctx_or_skip() else { return };
    // 12x12 RGB images in 4x4 patches: 9 patches + CLS = 10 positions.
    let cfg = ModelConfig::vit(12, 4, 3, 10, 32, 3, 4, 64);
    let mut rng = StdRng::seed_from_u64(31);
    for dtype in [DType::F32, DType::F16] {
        let w = weights(&cfg, 30, dtype);
        let mut gv = GpuVit::new(ctx.clone(), &w).unwrap();
        // 18 images: more than one submission group (VIT_GROUP = 16).
        let batch = 18;
        let images: Vec<f32> = (0..batch * 3 * 12 * 12).map(|_| rng.random_range(-1.0..1.0)).collect();
        for spec in SPECS {
            let sub = Submodel::parse(&cfg, spec).unwrap();
            let got = gv.forward(&sub, &images, batch).unwrap();
            let want = vit_forward(&w, &sub, &images, batch).unwrap();
            let what = format!("vit {dtype:?} {spec}");
            assert_close(&got.logits, &want.logits, LOGIT_ATOL, LOGIT_RTOL, &format!("{what} logits"));
            assert_close(&got.pooled, &want.pooled, LOGIT_ATOL, LOGIT_RTOL, &format!("{what} pooled"));
        }
    }
    // The one-shot helper gives the same as the held executor.
    let w = weights(&cfg, 30, DType::F32);
    let images: Vec<f32> = (0..2 * 3 * 12 * 12).map(|_| rng.random_range(-1.0..1.0)).collect();
    let sub = Submodel::parse(&cfg, "m").unwrap();
    let once = gpu_vit_forward(&ctx, &w, &sub, &images, 2).unwrap();
    let want = vit_forward(&w, &sub, &images, 2).unwrap();
    assert_close(&once.logits, &want.logits, LOGIT_ATOL, LOGIT_RTOL, "gpu_vit_forward");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let Some((_serial, ctx)) = ctx_or_skip() else { return };
    let cfg = gpt2();
    let w = weights(&cfg, 1, DType::F32);
    let mut g = GpuLm::new(ctx.clone(), &w).unwrap();
    let xl = Submodel::full(&cfg);
    assert!(matches!(g.forward(&[], &xl, Logits::Last), Err(RuntimeError::EmptyPrompt)));
    assert!(matches!(g.forward(&[96], &xl, Logits::Last), Err(RuntimeError::TokenOutOfVocab { .. })));
    assert!(matches!(g.forward(&[1; 41], &xl, Logits::Last), Err(RuntimeError::ContextOverflow { .. })));
    let mut bad = xl.clone();
    bad.widths[0] = 65;
    assert!(g.forward(&[1], &bad, Logits::Last).is_err());
    assert_eq!(g.cached_len(), 0, "failed calls leave the cache alone");
    // Filling the context exactly works; one more token is an error.
    g.forward(&[1; 40], &xl, Logits::Last).unwrap();
    assert!(matches!(g.forward(&[1], &xl, Logits::Last), Err(RuntimeError::ContextOverflow { .. })));
    // Wrong families.
    let vit = weights(&ModelConfig::vit(8, 4, 1, 10, 32, 1, 4, 64), 2, DType::F32);
    assert!(matches!(GpuLm::new(ctx.clone(), &vit), Err(RuntimeError::WrongFamily { .. })));
    assert!(matches!(GpuVit::new(ctx.clone(), &w), Err(RuntimeError::WrongFamily { .. })));
    let mut gv = GpuVit::new(ctx.clone(), &vit).unwrap();
    let sub = Submodel::full(&vit.config);
    assert!(matches!(gv.forward(&sub, &[0.0; 10], 1), Err(RuntimeError::InvalidInput(_))));
    // The executor built by the device helpers runs like the plain one.
    let mut f = lm_executor_with_fallback(&Device::Gpu(ctx.clone()), w.clone()).unwrap();
    g.reset();
    let a = g.forward(&[1, 2, 3], &xl, Logits::All).unwrap();
    let b = f.forward(&[1, 2, 3], &xl, Logits::All).unwrap();
    assert_eq!(a, b);
    assert!(f.device_name().starts_with("gpu"));
}

/// As on the CPU: a layer skipped at cached positions still wrote their keys and values, so a GPU
/// executor that served another request first agrees with the CPU when a later submodel runs the layer.
#[test]
fn skipped_layers_leave_no_stale_cache_rows() {
    let Some((_serial, ctx)) = ctx_or_skip() else { return };
    let cfg = gpt2();
    let w = weights(&cfg, 12, DType::F32);
    let skip = Submodel::parse(&cfg, "xl;skip=1").unwrap();
    let xl = Submodel::full(&cfg);
    let prompt = tokens(6, 96, 3);
    let mut g = GpuLm::new(ctx.clone(), &w).unwrap();
    g.forward(&tokens(8, 96, 4), &xl, Logits::Last).unwrap();
    g.reset();
    g.forward(&prompt, &skip, Logits::Last).unwrap();
    let got = g.forward(&[5], &xl, Logits::Last).unwrap();
    let mut c = CpuLm::new(w.clone()).unwrap();
    c.forward(&prompt, &skip, Logits::Last).unwrap();
    let want = c.forward(&[5], &xl, Logits::Last).unwrap();
    assert_close(&got, &want, LOGIT_ATOL, LOGIT_RTOL, "decode after a skipped-layer prefill");
}
