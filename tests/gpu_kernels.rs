//! Matrix-product and FFN WGSL kernels of `matformer-kernels` against the plain CPU reference
//! (the other ops are in `gpu_kernels_ops.rs`),
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

use kernel_util::{can_run, narrow, rand_vec, read, run, upload};

use half::{bf16, f16};
use matformer_cpu::reference as cpu;
use matformer_cpu::WeightElem;
use matformer_kernels::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Orient {
    Nt,
    Nn,
}

/// Matrix-product tolerance: f32 accumulation of k products with |x·w| <= 1
/// errs by at most ~k·2⁻²⁴·Σ|x·w| (worst case, ~1e-3 for k = 130) and
/// typically ~√k·2⁻²⁴·Σ|x·w| (~1e-5); the bound below sits between the two.
fn matmul_tol(k: usize) -> (f32, f32) {
    (2e-5 * (k as f32).sqrt().max(1.0) + 1e-5, 1e-4)
}

/// Runs one matrix op over `shapes` on both kernels (tiled and vector) and
/// compares with the reference. Rows of W past the largest active prefix are
/// NaN, so reading beyond the active prefix would poison the output.
#[allow(clippy::too_many_arguments)]
fn matmul_case<W: WeightElem + GpuWeight>(
    ctx: &GpuContext,
    orient: Orient,
    load: Option<WeightLoad>,
    with_bias: bool,
    shapes: &[(usize, usize, usize)],
    max_chunk_bytes: Option<u64>,
    expect_chunks: Option<usize>,
    seed: u64,
) {
    if !can_run(ctx, load) {
        return;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let n_max = shapes.iter().map(|s| s.0).max().unwrap();
    let k_max = shapes.iter().map(|s| s.1).max().unwrap();
    let m_max = shapes.iter().map(|s| s.2).max().unwrap();
    // NT: W [rows, k] with every shape's k equal; NN: W [rows, m].
    let (rows_used, row_len) = match orient {
        Orient::Nt => (m_max, k_max),
        Orient::Nn => (k_max, m_max),
    };
    for s in shapes {
        let fixed = if orient == Orient::Nt { s.1 } else { s.2 };
        assert_eq!(fixed, row_len, "test shapes must share the weight row length");
    }
    let rows = rows_used + 3;
    let mut wf = rand_vec(&mut rng, rows * row_len, -1.0, 1.0);
    for v in &mut wf[rows_used * row_len..] {
        *v = f32::NAN;
    }
    let w: Vec<W> = narrow(&wf);
    let bias: Vec<W> = narrow(&rand_vec(&mut rng, m_max, -1.0, 1.0));
    let x = rand_vec(&mut rng, n_max * k_max, -1.0, 1.0);

    let wb = upload(ctx, &w, rows, row_len, load, max_chunk_bytes);
    if let Some(c) = expect_chunks {
        assert_eq!(wb.chunk_count(), c, "weight split");
    }
    let bb = with_bias.then(|| {
        let b = ctx.upload_vector("bias", &bias).unwrap();
        match load {
            Some(l) => b.with_load(l).unwrap(),
            None => b,
        }
    });
    let xb = ctx.upload_f32("x", &x).unwrap();
    let yb = ctx.storage_buffer("y", n_max * m_max).unwrap();
    let bindings = MatmulBindings { x: (&xb).into(), w: &wb, bias: bb.as_ref(), y: (&yb).into() };
    enum Op {
        Nt(MatmulNtOp),
        Nn(MatmulNnOp),
    }
    let op = match orient {
        Orient::Nt => Op::Nt(MatmulNtOp::new(ctx, bindings).unwrap()),
        Orient::Nn => Op::Nn(MatmulNnOp::new(ctx, bindings).unwrap()),
    };
    for &(n, k, m) in shapes {
        // The reference reads exactly the active prefix of W.
        let mut want = vec![0.0; n * m];
        let xs = &x[..n * k];
        let bs = with_bias.then(|| &bias[..m]);
        match orient {
            Orient::Nt => cpu::matmul_nt(xs, &w[..m * k], bs, &mut want, n, k, m),
            Orient::Nn => cpu::matmul_nn(xs, &w[..k * m], bs, &mut want, n, k, m),
        }
        let shape = MatmulShape { n, k, m };
        for path in [MatmulPath::Tiled, MatmulPath::Vector] {
            // Poison y so a missed element is caught.
            ctx.write_f32(&yb, 0, &vec![f32::NAN; n * m]).unwrap();
            run(ctx, |pass| match &op {
                Op::Nt(o) => o.record_with(ctx, pass, shape, path),
                Op::Nn(o) => o.record_with(ctx, pass, shape, path),
            });
            let got = read(ctx, &yb, n * m);
            let (atol, rtol) = matmul_tol(k);
            let what = format!(
                "{orient:?} {} bias={with_bias} chunks={} {shape:?} {path:?}",
                wb.load().name(),
                wb.chunk_count()
            );
            assert_close(&got, &want, atol, rtol, &what);
        }
    }
}

/// Shapes for NT (k fixed = 33) and NN (m fixed = 33): n, k, m not multiples of the tiles.
const NT_SHAPES: &[(usize, usize, usize)] = &[(1, 33, 7), (7, 33, 130), (33, 33, 1), (130, 33, 65), (4, 33, 64)];
const NN_SHAPES: &[(usize, usize, usize)] = &[(1, 7, 33), (7, 130, 33), (33, 1, 33), (130, 65, 33), (4, 64, 33)];

// ---------------------------------------------------------------- matrix products

#[test]
fn matmul_nt_f32() {
    let Some(ctx) = gpu_or_skip() else { return };
    matmul_case::<f32>(ctx, Orient::Nt, None, false, NT_SHAPES, None, None, 1);
    matmul_case::<f32>(ctx, Orient::Nt, None, true, NT_SHAPES, None, None, 2);
}

#[test]
fn matmul_nt_half() {
    let Some(ctx) = gpu_or_skip() else { return };
    matmul_case::<f16>(ctx, Orient::Nt, Some(WeightLoad::F16Native), true, NT_SHAPES, None, None, 3);
    matmul_case::<f16>(ctx, Orient::Nt, Some(WeightLoad::F16Packed), false, NT_SHAPES, None, None, 4);
    matmul_case::<f16>(ctx, Orient::Nt, Some(WeightLoad::F16Bits), true, NT_SHAPES, None, None, 5);
    matmul_case::<bf16>(ctx, Orient::Nt, None, true, NT_SHAPES, None, None, 6);
}

#[test]
fn matmul_nn_f32() {
    let Some(ctx) = gpu_or_skip() else { return };
    matmul_case::<f32>(ctx, Orient::Nn, None, false, NN_SHAPES, None, None, 11);
    matmul_case::<f32>(ctx, Orient::Nn, None, true, NN_SHAPES, None, None, 12);
}

#[test]
fn matmul_nn_half() {
    let Some(ctx) = gpu_or_skip() else { return };
    matmul_case::<f16>(ctx, Orient::Nn, Some(WeightLoad::F16Native), false, NN_SHAPES, None, None, 13);
    matmul_case::<f16>(ctx, Orient::Nn, Some(WeightLoad::F16Packed), true, NN_SHAPES, None, None, 14);
    matmul_case::<bf16>(ctx, Orient::Nn, None, false, NN_SHAPES, None, None, 15);
}

#[test]
fn matmul_weights_split_over_bindings() {
    let Some(ctx) = gpu_or_skip() else { return };
    // NT: W [133, 33] f32 with 50 rows per binding -> 3 bindings.
    matmul_case::<f32>(ctx, Orient::Nt, None, true, NT_SHAPES, Some(33 * 4 * 50), Some(3), 21);
    // Packed f16 with an odd row length: rows per binding rounded down to even
    // (41 -> 40) so no u32 word straddles two bindings -> 4 bindings.
    matmul_case::<f16>(ctx, Orient::Nt, Some(WeightLoad::F16Packed), false, NT_SHAPES, Some(33 * 2 * 41), Some(4), 22);
    // NN: W [133, 33] bf16, 60 rows per binding -> 3 bindings; k crosses them.
    matmul_case::<bf16>(ctx, Orient::Nn, None, false, NN_SHAPES, Some(33 * 2 * 60), Some(3), 23);
}

#[test]
fn weights_larger_than_the_binding_limit_are_split_not_rejected() {
    let Some(ctx) = gpu_or_skip() else { return };
    // Planned with this adapter's own limit (no allocation): a matrix 2.5x
    // the largest binding is split over 3 bindings.
    let max = ctx.max_storage_buffer_binding_size().min(ctx.max_buffer_size());
    let row_len = 1024usize;
    let rows = (max as usize / (row_len * 4)) * 5 / 2;
    let plan = plan_weight_split(WeightType::F32, rows, row_len, max).unwrap();
    assert_eq!(plan.chunks, 3, "{plan:?}");
    // Beyond MAX_WEIGHT_CHUNKS bindings it is a clear error, not a panic.
    let too_many = ctx.upload_weights_split("probe", &[0.0f32; 9 * 4], 9, 4, 16);
    assert!(matches!(too_many, Err(KernelError::Limit(_))), "{too_many:?}");
}

// ---------------------------------------------------------------- FFN at every granularity

/// A MatFormer FFN block, `down(act(gate(x)) * up(x))`, recorded in ONE pass
/// for every width: d_ff/8, /4, /2, full and odd widths, with the same op
/// instances (only uniforms change). Rows of the neuron-major weights at or
/// past the active width are overwritten with NaN before each run, so reading
/// outside the active prefix would poison the result.
fn ffn_case<W: WeightElem + GpuWeight>(ctx: &GpuContext, n: usize, act: GateAct, seed: u64) {
    let (d_model, d_ff) = (48usize, 136usize);
    let mut rng = StdRng::seed_from_u64(seed);
    let wg: Vec<W> = narrow(&rand_vec(&mut rng, d_ff * d_model, -0.3, 0.3));
    let wu: Vec<W> = narrow(&rand_vec(&mut rng, d_ff * d_model, -0.3, 0.3));
    let wd: Vec<W> = narrow(&rand_vec(&mut rng, d_ff * d_model, -0.3, 0.3));
    let x = rand_vec(&mut rng, n * d_model, -1.0, 1.0);
    let gate_w = ctx.upload_weights("gate", &wg, d_ff, d_model).unwrap();
    let up_w = ctx.upload_weights("up", &wu, d_ff, d_model).unwrap();
    let down_w = ctx.upload_weights("down", &wd, d_ff, d_model).unwrap();
    let xb = ctx.upload_f32("x", &x).unwrap();
    let gb = ctx.storage_buffer("g", n * d_ff).unwrap();
    let ub = ctx.storage_buffer("u", n * d_ff).unwrap();
    let yb = ctx.storage_buffer("y", n * d_model).unwrap();
    let gate =
        MatmulNtOp::new(ctx, MatmulBindings { x: (&xb).into(), w: &gate_w, bias: None, y: (&gb).into() }).unwrap();
    let up = MatmulNtOp::new(ctx, MatmulBindings { x: (&xb).into(), w: &up_w, bias: None, y: (&ub).into() }).unwrap();
    let actop = SiluMulOp::new(ctx, (&gb).into(), (&ub).into()).unwrap();
    let down =
        MatmulNnOp::new(ctx, MatmulBindings { x: (&gb).into(), w: &down_w, bias: None, y: (&yb).into() }).unwrap();
    let poison = |buf: &WeightBuffer, src: &[W], width: usize| {
        let nan: Vec<W> = vec![W::from_f32(f32::NAN); (d_ff - width) * d_model];
        let mut rows = src[..width * d_model].to_vec();
        rows.extend_from_slice(&nan);
        ctx.write_bytes(&buf.buffers()[0], 0, bytemuck::cast_slice(&rows)).unwrap();
    };
    for width in [d_ff / 8, d_ff / 4, d_ff / 2, d_ff, 1, 37, 101] {
        poison(&gate_w, &wg, width);
        poison(&up_w, &wu, width);
        poison(&down_w, &wd, width);
        run(ctx, |pass| {
            gate.record(ctx, pass, MatmulShape { n, k: d_model, m: width })?;
            up.record(ctx, pass, MatmulShape { n, k: d_model, m: width })?;
            actop.record(ctx, pass, n * width, act)?;
            down.record(ctx, pass, MatmulShape { n, k: width, m: d_model })
        });
        let got = read(ctx, &yb, n * d_model);

        let mut g = vec![0.0; n * width];
        let mut u = vec![0.0; n * width];
        cpu::matmul_nt(&x, &wg[..width * d_model], None, &mut g, n, d_model, width);
        cpu::matmul_nt(&x, &wu[..width * d_model], None, &mut u, n, d_model, width);
        let mut h = vec![0.0; n * width];
        match act {
            GateAct::Silu => cpu::silu_mul(&g, &u, &mut h),
            GateAct::GeluErf | GateAct::GeluTanh => {
                if act == GateAct::GeluErf {
                    cpu::gelu(&mut g);
                } else {
                    cpu::gelu_tanh(&mut g);
                }
                for ((o, a), b) in h.iter_mut().zip(&g).zip(&u) {
                    *o = a * b;
                }
            }
        }
        let mut want = vec![0.0; n * d_model];
        cpu::matmul_nn(&h, &wd[..width * d_model], None, &mut want, n, width, d_model);
        // Three chained f32 products (k = 48, 48, width <= 136) of values <= ~1:
        // each within matmul_tol; the chain stays below 2e-4 absolute.
        assert_close(&got, &want, 2e-4, 1e-3, &format!("ffn {} n={n} width={width} {act:?}", W::TYPE.name()));
    }
    poison(&gate_w, &wg, d_ff);
}

#[test]
fn ffn_every_granularity_decode_and_prefill() {
    let Some(ctx) = gpu_or_skip() else { return };
    ffn_case::<f32>(ctx, 1, GateAct::Silu, 31);
    ffn_case::<f16>(ctx, 9, GateAct::Silu, 32);
    ffn_case::<bf16>(ctx, 1, GateAct::GeluTanh, 33);
    ffn_case::<f32>(ctx, 70, GateAct::GeluErf, 34);
}
