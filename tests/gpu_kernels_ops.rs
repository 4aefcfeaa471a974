//! Norm, RoPE, attention, elementwise, embedding, argmax and sampling WGSL kernels against the plain CPU
//! reference (matrix products and the FFN are in `gpu_kernels.rs`),
//! `matformer_cpu::reference::*` on random seeded shapes, including sizes that
//! are not multiples of the tiles (1, 7, 33, 130, ...), every FFN granularity
//! plus odd widths, and f32 / f16 (native and packed) / bf16 weights.
//!
//! All tests share one `GpuContext` (pipelines compile once per binary). They
//! skip with a printed reason when there is no adapter and fail when
//! `MATFORMER_REQUIRE_GPU=1`. On a CPU-only machine install
//! `mesa-vulkan-drivers` (lavapipe) to run them.
//!
//! Tolerances. The reference accumulates in f64 and rounds once, so it is the
//! correctly rounded f32 result; the kernels accumulate in f32. Half weights
//! are widened exactly on both sides, so f16/bf16 cases use the same
//! tolerances as f32 (both sides compute with identical weight values).
//! Each test states its bound next to the comparison.

#[path = "common/gpu.rs"]
mod gpu;

use gpu::{assert_close, gpu_or_skip};
#[path = "common/kernel_util.rs"]
mod kernel_util;

use kernel_util::{can_run, narrow, rand_vec, read, run, upload, widen};

use half::{bf16, f16};
use matformer_cpu::reference as cpu;
use matformer_cpu::WeightElem;
use matformer_kernels::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------- norms

fn norm_case<W: WeightElem + GpuWeight>(ctx: &GpuContext, load: Option<WeightLoad>, seed: u64) {
    if !can_run(ctx, load) {
        return;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    for (n, d) in [(1usize, 7usize), (5, 33), (3, 130), (2, 600)] {
        let x: Vec<f32> = rand_vec(&mut rng, n * d, -3.0, 3.0);
        let gamma: Vec<W> = narrow(&rand_vec(&mut rng, d, 0.5, 1.5));
        let beta: Vec<W> = narrow(&rand_vec(&mut rng, d, -0.5, 0.5));
        let gb = upload(ctx, &gamma, 1, d, load, None);
        let bb = upload(ctx, &beta, 1, d, load, None);
        let xb = ctx.upload_f32("x", &x).unwrap();
        let yb = ctx.storage_buffer("y", n * d).unwrap();
        let eps = 1e-5;
        let args = NormArgs { n, eps };
        // f32 sums over d <= 600 values of magnitude <= 3, then a normalisation
        // to O(1): absolute error ~1e-6; 2e-5 leaves margin for inverseSqrt.
        for with_beta in [false, true] {
            let op = LayerNormOp::new(ctx, (&xb).into(), &gb, with_beta.then_some(&bb), (&yb).into()).unwrap();
            run(ctx, |pass| op.record(ctx, pass, args));
            let mut want = vec![0.0; n * d];
            cpu::layernorm(&x, &gamma, with_beta.then_some(&beta[..]), &mut want, n, d, eps);
            assert_close(
                &read(ctx, &yb, n * d),
                &want,
                2e-5,
                1e-5,
                &format!("layernorm {} n={n} d={d} beta={with_beta}", gb.load().name()),
            );
        }
        let op = RmsNormOp::new(ctx, (&xb).into(), &gb, (&yb).into()).unwrap();
        run(ctx, |pass| op.record(ctx, pass, args));
        let mut want = vec![0.0; n * d];
        cpu::rmsnorm(&x, &gamma, &mut want, n, d, eps);
        assert_close(&read(ctx, &yb, n * d), &want, 2e-5, 1e-5, &format!("rmsnorm {} n={n} d={d}", gb.load().name()));
    }
}

#[test]
fn norms() {
    let Some(ctx) = gpu_or_skip() else { return };
    norm_case::<f32>(ctx, None, 41);
    norm_case::<f16>(ctx, Some(WeightLoad::F16Packed), 42);
    norm_case::<f16>(ctx, Some(WeightLoad::F16Native), 43);
    norm_case::<bf16>(ctx, None, 44);
}

// ---------------------------------------------------------------- rope + attention

#[test]
fn rope_positions_from_start() {
    let Some(ctx) = gpu_or_skip() else { return };
    let mut rng = StdRng::seed_from_u64(51);
    for (n, heads, hd, pos0, theta) in [
        (1usize, 4usize, 64usize, 0usize, 10000.0f32),
        (7, 3, 16, 5, 10000.0),
        (33, 2, 130, 100, 500000.0),
        (3, 1, 2, 300, 10000.0),
    ] {
        let x = rand_vec(&mut rng, n * heads * hd, -2.0, 2.0);
        let xb = ctx.upload_f32("x", &x).unwrap();
        let op = RopeOp::new(ctx, (&xb).into()).unwrap();
        run(ctx, |pass| op.record(ctx, pass, RopeArgs { n_tokens: n, n_heads: heads, head_dim: hd, pos0, theta }));
        let mut want = x.clone();
        let positions: Vec<usize> = (pos0..pos0 + n).collect();
        cpu::rope(&mut want, n, heads, hd, &positions, theta);
        // The reference computes the angle pos·θ^(-2i/hd) in f64; the kernel in
        // f32 with range reduction. For positions <= ~330 the f32 angle is off
        // by <= ~330·2⁻²³ ≈ 4e-5 rad, times |x| <= 2.
        assert_close(
            &read(ctx, &xb, x.len()),
            &want,
            1e-4,
            1e-4,
            &format!("rope n={n} heads={heads} hd={hd} pos0={pos0}"),
        );
    }
}

/// Attention tolerance: scores are f32 dot products over hd <= 64 of values
/// <= 1 (error ~1e-6), exp/normalisation in f32 with the online rescaling
/// (relative ~1e-6 per block): outputs (convex mixes of v in [-1, 1]) are
/// within 1e-5 absolute; 3e-5 leaves margin for the GPU's exp.
const ATT_ATOL: f32 = 3e-5;
const ATT_RTOL: f32 = 1e-4;

/// Prefill `n0` tokens, then decode `steps` tokens one by one, writing K/V
/// into a cache with `kv_write` in the same pass as the attention; also checks
/// a multi-token chunk after the decode steps (speculative-decoding verify).
#[allow(clippy::too_many_arguments)]
fn causal_case(
    ctx: &GpuContext,
    heads: usize,
    kv_heads: usize,
    hd: usize,
    n0: usize,
    steps: usize,
    chunk: usize,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let total = n0 + steps + chunk;
    let row = kv_heads * hd;
    let q_all = rand_vec(&mut rng, total * heads * hd, -1.0, 1.0);
    let k_all = rand_vec(&mut rng, total * row, -1.0, 1.0);
    let v_all = rand_vec(&mut rng, total * row, -1.0, 1.0);
    let cap = total + 5;
    let kc = ctx.storage_buffer("k cache", cap * row).unwrap();
    let vc = ctx.storage_buffer("v cache", cap * row).unwrap();
    let max_new = n0.max(chunk).max(1);
    let qb = ctx.storage_buffer("q", max_new * heads * hd).unwrap();
    let kn = ctx.storage_buffer("k new", max_new * row).unwrap();
    let vn = ctx.storage_buffer("v new", max_new * row).unwrap();
    let ob = ctx.storage_buffer("out", max_new * heads * hd).unwrap();
    let kw = KvWriteOp::new(ctx, (&kn).into(), (&kc).into()).unwrap();
    let vw = KvWriteOp::new(ctx, (&vn).into(), (&vc).into()).unwrap();
    let att = AttentionOp::new(ctx, (&qb).into(), (&kc).into(), (&vc).into(), (&ob).into()).unwrap();
    let mut pos = 0;
    let mut chunks = vec![n0];
    chunks.extend(std::iter::repeat_n(1, steps));
    chunks.push(chunk);
    for n in chunks {
        ctx.write_f32(&qb, 0, &q_all[pos * heads * hd..(pos + n) * heads * hd]).unwrap();
        ctx.write_f32(&kn, 0, &k_all[pos * row..(pos + n) * row]).unwrap();
        ctx.write_f32(&vn, 0, &v_all[pos * row..(pos + n) * row]).unwrap();
        let args = AttentionArgs {
            n_q: n,
            n_kv: pos + n,
            n_heads: heads,
            n_kv_heads: kv_heads,
            head_dim: hd,
            mask: AttentionMask::Causal { pos0: pos },
            scale: None,
        };
        run(ctx, |pass| {
            kw.record(ctx, pass, n, row, pos)?;
            vw.record(ctx, pass, n, row, pos)?;
            att.record(ctx, pass, args)
        });
        let mut want = vec![0.0; n * heads * hd];
        cpu::attention(
            &q_all[pos * heads * hd..(pos + n) * heads * hd],
            &k_all[..(pos + n) * row],
            &v_all[..(pos + n) * row],
            &mut want,
            n,
            pos + n,
            heads,
            kv_heads,
            hd,
            Some(pos),
        );
        let got = read(ctx, &ob, n * heads * hd);
        assert_close(
            &got,
            &want,
            ATT_ATOL,
            ATT_RTOL,
            &format!("causal attention heads={heads}/{kv_heads} hd={hd} pos0={pos} n={n}"),
        );
        pos += n;
    }
    // The cache holds exactly the rows written.
    assert_eq!(read(ctx, &kc, total * row), k_all);
    assert_eq!(read(ctx, &vc, total * row), v_all);
}

#[test]
fn attention_causal_prefill_then_decode_gqa() {
    let Some(ctx) = gpu_or_skip() else { return };
    // 70 prompt tokens span two key blocks of 64; GQA 4 query heads per kv head.
    causal_case(ctx, 8, 2, 16, 70, 3, 5, 61);
    // Multi-head (no grouping), odd head dim, a single-token prompt.
    causal_case(ctx, 3, 3, 33, 1, 2, 7, 62);
    // Multi-query, head dim 256 (4 dims per invocation), 130-token prompt.
    causal_case(ctx, 2, 1, 256, 130, 1, 1, 63);
}

#[test]
fn attention_bidirectional() {
    let Some(ctx) = gpu_or_skip() else { return };
    let mut rng = StdRng::seed_from_u64(64);
    for (n, heads, kv_heads, hd) in [(17usize, 3usize, 3usize, 64usize), (130, 4, 2, 8), (1, 1, 1, 7)] {
        let q = rand_vec(&mut rng, n * heads * hd, -1.0, 1.0);
        let k = rand_vec(&mut rng, n * kv_heads * hd, -1.0, 1.0);
        let v = rand_vec(&mut rng, n * kv_heads * hd, -1.0, 1.0);
        let (qb, kb, vb) =
            (ctx.upload_f32("q", &q).unwrap(), ctx.upload_f32("k", &k).unwrap(), ctx.upload_f32("v", &v).unwrap());
        let ob = ctx.storage_buffer("o", q.len()).unwrap();
        let op = AttentionOp::new(ctx, (&qb).into(), (&kb).into(), (&vb).into(), (&ob).into()).unwrap();
        let args = AttentionArgs {
            n_q: n,
            n_kv: n,
            n_heads: heads,
            n_kv_heads: kv_heads,
            head_dim: hd,
            mask: AttentionMask::Bidirectional,
            scale: None,
        };
        run(ctx, |pass| op.record(ctx, pass, args));
        let mut want = vec![0.0; q.len()];
        cpu::attention(&q, &k, &v, &mut want, n, n, heads, kv_heads, hd, None);
        assert_close(
            &read(ctx, &ob, q.len()),
            &want,
            ATT_ATOL,
            ATT_RTOL,
            &format!("bidirectional n={n} heads={heads}/{kv_heads} hd={hd}"),
        );
    }
}

// ---------------------------------------------------------------- elementwise

#[test]
fn softmax_rows() {
    let Some(ctx) = gpu_or_skip() else { return };
    let mut rng = StdRng::seed_from_u64(71);
    for (n, d) in [(1usize, 1usize), (3, 7), (5, 130), (2, 1000)] {
        let x = rand_vec(&mut rng, n * d, -10.0, 10.0);
        let xb = ctx.upload_f32("x", &x).unwrap();
        let op = SoftmaxOp::new(ctx, (&xb).into()).unwrap();
        run(ctx, |pass| op.record(ctx, pass, n, d));
        let mut want = x.clone();
        cpu::softmax(&mut want, n, d);
        // f32 exp (relative ~1e-7) and an f32 sum of d <= 1000 terms: relative
        // error ~d·2⁻²⁴ ≈ 6e-5 worst case on each probability.
        assert_close(&read(ctx, &xb, n * d), &want, 1e-7, 1e-4, &format!("softmax n={n} d={d}"));
    }
}

#[test]
fn gelu_both_modes() {
    let Some(ctx) = gpu_or_skip() else { return };
    let mut rng = StdRng::seed_from_u64(72);
    let mut x = rand_vec(&mut rng, 1000, -8.0, 8.0);
    x.extend([0.0, -0.0, 1e-8, -1e-8, 30.0, -30.0, 100.0, -100.0]);
    for mode in [GeluMode::Erf, GeluMode::Tanh] {
        let xb = ctx.upload_f32("x", &x).unwrap();
        let op = GeluOp::new(ctx, (&xb).into()).unwrap();
        run(ctx, |pass| op.record(ctx, pass, x.len(), mode));
        let mut want = x.clone();
        match mode {
            GeluMode::Erf => cpu::gelu(&mut want),
            GeluMode::Tanh => cpu::gelu_tanh(&mut want),
        }
        // erf via Abramowitz-Stegun 7.1.26 (|err| <= 1.5e-7) times 0.5|x| <= 4
        // plus f32 exp/tanh: absolute error <= ~1e-6; 3e-6 leaves margin.
        assert_close(&read(ctx, &xb, x.len()), &want, 3e-6, 1e-5, &format!("gelu {mode:?}"));
    }
}

#[test]
fn silu_mul_and_gated_gelu() {
    let Some(ctx) = gpu_or_skip() else { return };
    let mut rng = StdRng::seed_from_u64(73);
    let len = 7 * 33;
    let g = rand_vec(&mut rng, len, -9.0, 9.0);
    let u = rand_vec(&mut rng, len, -2.0, 2.0);
    for act in [GateAct::Silu, GateAct::GeluErf, GateAct::GeluTanh] {
        let gb = ctx.upload_f32("g", &g).unwrap();
        let ub = ctx.upload_f32("u", &u).unwrap();
        let op = SiluMulOp::new(ctx, (&gb).into(), (&ub).into()).unwrap();
        run(ctx, |pass| op.record(ctx, pass, len, act));
        let mut want = vec![0.0; len];
        match act {
            GateAct::Silu => cpu::silu_mul(&g, &u, &mut want),
            _ => {
                let mut a = g.clone();
                if act == GateAct::GeluErf {
                    cpu::gelu(&mut a);
                } else {
                    cpu::gelu_tanh(&mut a);
                }
                for i in 0..len {
                    want[i] = a[i] * u[i];
                }
            }
        }
        // Activation error as in gelu_both_modes (<= ~1e-6 relative to |g|<=9)
        // times |up| <= 2.
        assert_close(&read(ctx, &gb, len), &want, 1e-5, 1e-5, &format!("gated {act:?}"));
    }
}

#[test]
fn residual_add_bias_add_exact() {
    let Some(ctx) = gpu_or_skip() else { return };
    let mut rng = StdRng::seed_from_u64(74);
    let (n, m) = (7usize, 130usize);
    let a = rand_vec(&mut rng, n * m, -5.0, 5.0);
    let b = rand_vec(&mut rng, n * m, -5.0, 5.0);
    let (ab, bb) = (ctx.upload_f32("a", &a).unwrap(), ctx.upload_f32("b", &b).unwrap());
    let op = AddOp::new(ctx, (&ab).into(), (&bb).into()).unwrap();
    run(ctx, |pass| op.record(ctx, pass, n * m));
    let mut want = a.clone();
    cpu::add_inplace(&mut want, &b);
    // One f32 addition per element: bitwise identical.
    assert_eq!(read(ctx, &ab, n * m), want);

    let bias: Vec<bf16> = narrow(&rand_vec(&mut rng, m, -1.0, 1.0));
    let biasb = ctx.upload_vector("bias", &bias).unwrap();
    let op = BiasAddOp::new(ctx, (&bb).into(), &biasb).unwrap();
    run(ctx, |pass| op.record(ctx, pass, n, m));
    let mut want = b.clone();
    cpu::add_bias(&mut want, &bias, n, m);
    // Exact widening + one f32 addition: bitwise identical.
    assert_eq!(read(ctx, &bb, n * m), want);
}

#[test]
fn embedding_gather() {
    let Some(ctx) = gpu_or_skip() else { return };
    let mut rng = StdRng::seed_from_u64(75);
    let (vocab, d) = (130usize, 33usize);
    let ids: Vec<u32> = (0..9).map(|_| rng.random_range(0..vocab as u32)).chain([0, vocab as u32 - 1]).collect();
    let tf = rand_vec(&mut rng, vocab * d, -1.0, 1.0);
    let table: Vec<f16> = narrow(&tf);
    let idb = ctx.upload_u32("ids", &ids).unwrap();
    let ob = ctx.storage_buffer("out", ids.len() * d).unwrap();
    let mut want = vec![0.0; ids.len() * d];
    cpu::embedding(&table, &ids, d, &mut want);
    // Whole table in one binding, and split into 4 bindings (40 rows each).
    for split in [None, Some((d * 2 * 40) as u64)] {
        let tb = upload(ctx, &table, vocab, d, None, split);
        let op = EmbeddingOp::new(ctx, &tb, (&idb).into(), (&ob).into()).unwrap();
        run(ctx, |pass| op.record(ctx, pass, EmbeddingArgs { n: ids.len(), scale: 1.0 }));
        // A gather with exact widening: bitwise identical.
        assert_eq!(read(ctx, &ob, want.len()), want, "chunks={}", tb.chunk_count());
        // Power-of-two scale stays exact.
        run(ctx, |pass| op.record(ctx, pass, EmbeddingArgs { n: ids.len(), scale: 4.0 }));
        let scaled: Vec<f32> = want.iter().map(|v| v * 4.0).collect();
        assert_eq!(read(ctx, &ob, want.len()), scaled);
    }
    // Out-of-range ids give a zero row instead of reading out of bounds.
    let bad = ctx.upload_u32("bad ids", &[vocab as u32, 3]).unwrap();
    let tb = upload(ctx, &table, vocab, d, None, None);
    let op = EmbeddingOp::new(ctx, &tb, (&bad).into(), (&ob).into()).unwrap();
    run(ctx, |pass| op.record(ctx, pass, EmbeddingArgs { n: 2, scale: 1.0 }));
    let got = read(ctx, &ob, 2 * d);
    assert!(got[..d].iter().all(|&v| v == 0.0));
    assert_eq!(&got[d..], &widen(&table[3 * d..4 * d])[..]);
}

// ---------------------------------------------------------------- argmax + sampling

#[test]
fn argmax_rows() {
    let Some(ctx) = gpu_or_skip() else { return };
    let mut rng = StdRng::seed_from_u64(81);
    let d = 1000;
    let mut rows: Vec<Vec<f32>> = (0..4).map(|_| rand_vec(&mut rng, d, -5.0, 5.0)).collect();
    rows[1][3] = 9.0; // ties: the first index wins
    rows[1][700] = 9.0;
    rows[2][10] = f32::NAN; // NaN never wins
    rows[2][11] = 50.0;
    rows[3] = vec![f32::NEG_INFINITY; d];
    rows.push(vec![1.0]);
    for row in &rows {
        let xb = ctx.upload_f32("x", row).unwrap();
        let ob = ctx.storage_buffer("o", 1).unwrap();
        let op = ArgmaxOp::new(ctx, (&xb).into(), (&ob).into()).unwrap();
        run(ctx, |pass| op.record(ctx, pass, 1, row.len()));
        assert_eq!(ctx.read_u32(&ob, 0, 1).unwrap()[0] as usize, cpu::argmax(row));
    }
    // Several rows in one dispatch.
    let flat: Vec<f32> = rows[..3].concat();
    let xb = ctx.upload_f32("x", &flat).unwrap();
    let ob = ctx.storage_buffer("o", 3).unwrap();
    let op = ArgmaxOp::new(ctx, (&xb).into(), (&ob).into()).unwrap();
    run(ctx, |pass| op.record(ctx, pass, 3, d));
    let want: Vec<u32> = rows[..3].iter().map(|r| cpu::argmax(r) as u32).collect();
    assert_eq!(ctx.read_u32(&ob, 0, 3).unwrap(), want);
}

/// The kept set and its index-ordered CDF, computed in f64 on the host with
/// the kernel's documented semantics (top-k, then top-p of the top-k mass).
fn host_sampling_cdf(logits: &[f32], temperature: f32, top_k: usize, top_p: f32) -> Vec<f64> {
    let mx = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let p: Vec<f64> = logits.iter().map(|&l| ((l as f64 - mx) / temperature as f64).exp()).collect();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].partial_cmp(&logits[a]).unwrap());
    let k = if top_k == 0 { logits.len() } else { top_k.min(logits.len()) };
    let mut thr = logits[order[k - 1]];
    if top_p < 1.0 {
        let mass_k: f64 = order[..k].iter().map(|&i| p[i]).sum();
        let mut cum = 0.0;
        for &i in &order[..k] {
            cum += p[i];
            if cum >= top_p as f64 * mass_k {
                thr = logits[i];
                break;
            }
        }
    }
    let mut cdf = Vec::with_capacity(logits.len());
    let mut cum = 0.0;
    for (i, &l) in logits.iter().enumerate() {
        if l >= thr {
            cum += p[i];
        }
        cdf.push(cum);
    }
    let total = cum;
    cdf.iter().map(|c| c / total).collect()
}

#[test]
fn sampling_on_device() {
    let Some(ctx) = gpu_or_skip() else { return };
    let mut rng = StdRng::seed_from_u64(82);
    let d = 1000;
    let rows = 2;
    let logits = rand_vec(&mut rng, rows * d, -4.0, 4.0);
    let xb = ctx.upload_f32("logits", &logits).unwrap();
    let ob = ctx.storage_buffer("token", 1).unwrap();
    let op = SampleOp::new(ctx, (&xb).into(), (&ob).into()).unwrap();
    let draw = |row: usize, temperature: f32, top_k: usize, top_p: f32, u: f32| -> usize {
        run(ctx, |pass| op.record(ctx, pass, SampleArgs { d, row, temperature, top_k, top_p, u }));
        ctx.read_u32(&ob, 0, 1).unwrap()[0] as usize
    };
    let row1 = &logits[d..];
    // Greedy: temperature 0 or top-k 1 is the argmax whatever u is.
    assert_eq!(draw(1, 0.0, 0, 1.0, 0.7), cpu::argmax(row1));
    assert_eq!(draw(1, 0.8, 1, 1.0, 0.3), cpu::argmax(row1));
    for &(temperature, top_k, top_p) in
        &[(1.0f32, 0usize, 1.0f32), (0.7, 50, 1.0), (1.3, 0, 0.9), (0.9, 40, 0.8), (2.0, 3, 1.0)]
    {
        let cdf = host_sampling_cdf(row1, temperature, top_k, top_p);
        for u in [0.0f32, 0.013, 0.25, 0.5, 0.77, 0.999] {
            let got = draw(1, temperature, top_k, top_p, u);
            // The drawn index must be kept and its CDF interval must contain u,
            // up to f32 summation error in the kernel (1e-4 of the mass).
            let lo = if got == 0 { 0.0 } else { cdf[got - 1] };
            let hi = cdf[got];
            assert!(hi > lo, "T={temperature} k={top_k} p={top_p} u={u}: index {got} is not kept");
            assert!(
                lo - 1e-4 <= u as f64 && (u as f64) <= hi + 1e-4,
                "T={temperature} k={top_k} p={top_p} u={u}: index {got} covers [{lo}, {hi}]"
            );
        }
    }
    // Top-k = 3 only ever returns one of the 3 largest logits.
    let mut top3: Vec<usize> = (0..d).collect();
    top3.sort_by(|&a, &b| row1[b].partial_cmp(&row1[a]).unwrap());
    for i in 0..20 {
        let t = draw(1, 5.0, 3, 1.0, i as f32 / 20.0);
        assert!(top3[..3].contains(&t), "{t} not in top 3");
    }
    // Row 0 is independent of row 1.
    assert_eq!(draw(0, 0.0, 0, 1.0, 0.5), cpu::argmax(&logits[..d]));
}

// ---------------------------------------------------------------- errors, not panics

#[test]
fn bad_arguments_are_errors() {
    let Some(ctx) = gpu_or_skip() else { return };
    let w = ctx.upload_weights("w", &[0.0f32; 4 * 8], 4, 8).unwrap();
    let x = ctx.storage_buffer("x", 8).unwrap();
    let y = ctx.storage_buffer("y", 4).unwrap();
    let op = MatmulNtOp::new(ctx, MatmulBindings { x: (&x).into(), w: &w, bias: None, y: (&y).into() }).unwrap();
    let mut enc = ctx.encoder("t");
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        // m past the weight rows, k not the row length, y too small.
        for shape in
            [MatmulShape { n: 1, k: 8, m: 5 }, MatmulShape { n: 1, k: 7, m: 4 }, MatmulShape { n: 2, k: 8, m: 4 }]
        {
            assert!(matches!(op.record(ctx, &mut pass, shape), Err(KernelError::Shape(_))), "{shape:?}");
        }
        let att = AttentionOp::new(ctx, (&x).into(), (&x).into(), (&x).into(), (&y).into()).unwrap();
        let a = AttentionArgs {
            n_q: 1,
            n_kv: 1,
            n_heads: 1,
            n_kv_heads: 1,
            head_dim: 300,
            mask: AttentionMask::Bidirectional,
            scale: None,
        };
        assert!(att.record(ctx, &mut pass, a).is_err());
    }
    ctx.submit(enc).unwrap();
    // A bias with a different storage type than the weights is rejected.
    let b16 = ctx.upload_vector("b", &[f16::ZERO; 4]).unwrap();
    let r = MatmulNtOp::new(ctx, MatmulBindings { x: (&x).into(), w: &w, bias: Some(&b16), y: (&y).into() });
    assert!(matches!(r, Err(KernelError::Shape(_))), "{r:?}");
    // Reading past the end of a buffer is an error.
    assert!(ctx.read_f32(&y, 2, 4).is_err());
    // An op instance has one uniform buffer: recording it twice in one
    // submission with the same parameters is fine, with different ones an error.
    let add = AddOp::new(ctx, (&x).into(), (&y).into()).unwrap();
    let mut enc = ctx.encoder("twice");
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        let epoch = ctx.submission_epoch();
        add.record(ctx, &mut pass, 4).unwrap();
        add.record(ctx, &mut pass, 4).unwrap();
        let refused = add.record(ctx, &mut pass, 3);
        // Detection is per context epoch: a submit by a concurrently running
        // test may start a new epoch in between, so only assert when none did.
        if ctx.submission_epoch() == epoch {
            assert!(matches!(refused, Err(KernelError::Shape(_))), "{refused:?}");
        }
    }
    ctx.submit(enc).unwrap();
    // After a submit the instance takes new parameters.
    ctx.run_pass(|pass| add.record(ctx, pass, 3)).unwrap();
    ctx.check().unwrap();
}

#[test]
fn context_reports_adapter() {
    let Some(ctx) = gpu_or_skip() else { return };
    let line = ctx.info_line();
    assert!(line.contains(&ctx.adapter_info().name), "{line}");
    assert!(ctx.max_storage_buffer_binding_size() > 0);
    // Never the GL backend.
    assert_ne!(ctx.adapter_info().backend, wgpu::Backend::Gl);
    // Pool: a released buffer is handed out again.
    let b = ctx.acquire(1000, STORAGE_USAGE).unwrap();
    let size = b.size();
    ctx.release(b);
    let again = ctx.acquire(600, STORAGE_USAGE).unwrap();
    assert_eq!(again.size(), size);
}
