//! One pre-norm transformer block on top of `matformer_cpu`: the forward pass (the runtime's `fast`
//! kernels) keeps the activations its backward pass (`matformer_cpu::backward`) needs. The FFN uses only
//! the first `width` neurons (rows of the neuron-major `up`, `gate`, `down_t`).

use matformer_cpu::{backward as bw, fast};
use matformer_graph::{FfnKind, Layer, Linear, ModelConfig, Norm, NormKind};
use rayon::prelude::*;

use super::params::{fs, fsm, ob, obm};

/// Shapes and options shared by every block of one forward pass.
#[derive(Clone, Copy)]
pub struct BlockCtx<'a> {
    /// Model config.
    pub cfg: &'a ModelConfig,
    /// Sequences in the batch.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq: usize,
    /// Causal attention (MatLM) or full (MatViT).
    pub causal: bool,
    /// RoPE theta and the position of every row (`r % seq`), when the model rotates queries and keys.
    pub rope: Option<(f32, &'a [usize])>,
}

impl BlockCtx<'_> {
    fn rows(&self) -> usize {
        self.batch * self.seq
    }
}

/// Activations one block keeps for its backward pass (norm statistics and attention probabilities are
/// recomputed by the backward kernels).
#[derive(Default)]
pub struct BlockActs {
    x_in: Vec<f32>,
    ln1: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    x_mid: Vec<f32>,
    ln2: Vec<f32>,
    up: Vec<f32>,
    gate: Vec<f32>,
    act: Vec<f32>,
    width: usize,
}

/// Scratch buffers shared by all blocks.
#[derive(Default)]
pub struct BlockScratch {
    dln: Vec<f32>,
    datt: Vec<f32>,
    dq: Vec<f32>,
    dk: Vec<f32>,
    dv: Vec<f32>,
    dact: Vec<f32>,
    dup: Vec<f32>,
    dgate: Vec<f32>,
}

/// Resize to `n` elements (contents unspecified: the caller overwrites them).
pub(crate) fn sized(buf: &mut Vec<f32>, n: usize) -> &mut [f32] {
    buf.resize(n, 0.0);
    &mut buf[..n]
}

/// Resize to `n` zeroed elements.
pub(crate) fn zeroed(buf: &mut Vec<f32>, n: usize) -> &mut [f32] {
    buf.clear();
    buf.resize(n, 0.0);
    &mut buf[..]
}

/// `y = norm(x)` (LayerNorm with its shift, or RMSNorm).
pub(crate) fn norm_fwd(kind: NormKind, p: &Norm, x: &[f32], y: &mut [f32], n: usize, d: usize, eps: f32) {
    match kind {
        NormKind::LayerNorm => fast::layernorm(x, fs(&p.weight), ob(&p.bias), y, n, d, eps),
        NormKind::RmsNorm => fast::rmsnorm(x, fs(&p.weight), y, n, d, eps),
    }
}

/// Backward of [`norm_fwd`]: `dx += …`, parameter gradients into `g`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn norm_bwd(
    kind: NormKind,
    p: &Norm,
    g: &mut Norm,
    dy: &[f32],
    x: &[f32],
    dx: &mut [f32],
    n: usize,
    d: usize,
    eps: f32,
) {
    match kind {
        NormKind::LayerNorm => {
            bw::layernorm_backward(dy, x, fs(&p.weight), dx, fsm(&mut g.weight), obm(&mut g.bias), n, d, eps)
        }
        NormKind::RmsNorm => bw::rmsnorm_backward(dy, x, fs(&p.weight), dx, fsm(&mut g.weight), n, d, eps),
    }
}

/// `y = x · W[:rows]ᵀ + b[:rows]`.
fn linear_fwd(x: &[f32], w: &Linear, rows: usize, y: &mut [f32], n: usize, k: usize) {
    fast::matmul_nt(x, &fs(&w.weight)[..rows * k], ob(&w.bias).map(|b| &b[..rows]), y, n, k, rows);
}

/// Forward one block in place on the residual stream `x [B·T, d]`, saving activations into `a`.
pub fn block_forward(ctx: BlockCtx<'_>, layer: &Layer, width: usize, x: &mut [f32], a: &mut BlockActs) {
    let cfg = ctx.cfg;
    let (n, d, hd, t) = (ctx.rows(), cfg.d_model, cfg.head_dim(), ctx.seq);
    let (qd, kvd) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
    a.width = width;
    a.x_in.clear();
    a.x_in.extend_from_slice(x);
    // Attention.
    norm_fwd(cfg.norm, &layer.attn_norm, x, sized(&mut a.ln1, n * d), n, d, cfg.norm_eps);
    linear_fwd(&a.ln1, &layer.q, qd, sized(&mut a.q, n * qd), n, d);
    linear_fwd(&a.ln1, &layer.k, kvd, sized(&mut a.k, n * kvd), n, d);
    linear_fwd(&a.ln1, &layer.v, kvd, sized(&mut a.v, n * kvd), n, d);
    if let Some((theta, pos)) = ctx.rope {
        fast::rope(&mut a.q, n, cfg.n_heads, hd, pos, theta);
        fast::rope(&mut a.k, n, cfg.n_kv_heads, hd, pos, theta);
    }
    let att = sized(&mut a.att, n * qd);
    let causal = if ctx.causal { Some(0) } else { None };
    let (q, k, v) = (&a.q, &a.k, &a.v);
    // Sequences are independent: run them in parallel (each call's own reductions have a fixed order).
    att.par_chunks_mut(t * qd).enumerate().for_each(|(b, out)| {
        let (qs, ks) = (b * t * qd..(b + 1) * t * qd, b * t * kvd..(b + 1) * t * kvd);
        fast::attention(&q[qs], &k[ks.clone()], &v[ks], out, t, t, cfg.n_heads, cfg.n_kv_heads, hd, causal);
    });
    let tmp = sized(&mut a.up, n * d); // borrowed as scratch until the FFN overwrites it
    linear_fwd(&a.att, &layer.o, d, tmp, n, qd);
    fast::add_inplace(x, tmp);
    a.x_mid.clear();
    a.x_mid.extend_from_slice(x);
    // FFN over the active prefix of neurons.
    norm_fwd(cfg.norm, &layer.ffn_norm, x, sized(&mut a.ln2, n * d), n, d, cfg.norm_eps);
    linear_fwd(&a.ln2, &layer.up, width, sized(&mut a.up, n * width), n, d);
    let act = sized(&mut a.act, n * width);
    match cfg.ffn {
        FfnKind::SwiGlu => {
            let g = layer.gate.as_ref().expect("SwiGLU layer has a gate");
            let gate = sized(&mut a.gate, n * width);
            fast::matmul_nt(&a.ln2, &fs(g)[..width * d], None, gate, n, d, width);
            fast::silu_mul(gate, &a.up, act);
        }
        FfnKind::Gelu => {
            act.copy_from_slice(&a.up);
            fast::gelu(act);
        }
        FfnKind::GeluTanh => {
            act.copy_from_slice(&a.up);
            fast::gelu_tanh(act);
        }
    }
    let mut out = vec![0.0f32; n * d];
    fast::matmul_nn(act, &fs(&layer.down_t)[..width * d], ob(&layer.down_bias), &mut out, n, width, d);
    fast::add_inplace(x, &out);
}

/// Backward of [`block_forward`]: on entry `dx` holds ∂L/∂(block output), on exit ∂L/∂(block input).
/// Parameter gradients accumulate into `g` (only the first `width` FFN rows are touched).
pub fn block_backward(
    ctx: BlockCtx<'_>,
    layer: &Layer,
    g: &mut Layer,
    dx: &mut [f32],
    a: &BlockActs,
    s: &mut BlockScratch,
) {
    let cfg = ctx.cfg;
    let (n, d, hd, t) = (ctx.rows(), cfg.d_model, cfg.head_dim(), ctx.seq);
    let (qd, kvd) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
    let w = a.width;
    // FFN down projection: y = act · down_t[:w] + b.
    let dact = zeroed(&mut s.dact, n * w);
    bw::matmul_nn_backward(
        dx,
        &a.act,
        &fs(&layer.down_t)[..w * d],
        dact,
        &mut fsm(&mut g.down_t)[..w * d],
        obm(&mut g.down_bias),
        n,
        w,
        d,
    );
    let dup = zeroed(&mut s.dup, n * w);
    let dln = zeroed(&mut s.dln, n * d);
    match cfg.ffn {
        FfnKind::SwiGlu => {
            let dgate = zeroed(&mut s.dgate, n * w);
            bw::silu_mul_backward(&s.dact, &a.gate, &a.up, dgate, dup);
            let gw = layer.gate.as_ref().expect("SwiGLU layer has a gate");
            let gg = g.gate.as_mut().expect("SwiGLU grads have a gate");
            bw::matmul_nt_backward(dgate, &a.ln2, &fs(gw)[..w * d], dln, &mut fsm(gg)[..w * d], None, n, d, w);
        }
        FfnKind::Gelu => bw::gelu_backward(&s.dact, &a.up, dup),
        FfnKind::GeluTanh => bw::gelu_tanh_backward(&s.dact, &a.up, dup),
    }
    bw::matmul_nt_backward(
        dup,
        &a.ln2,
        &fs(&layer.up.weight)[..w * d],
        dln,
        &mut fsm(&mut g.up.weight)[..w * d],
        obm(&mut g.up.bias).map(|b| &mut b[..w]),
        n,
        d,
        w,
    );
    norm_bwd(cfg.norm, &layer.ffn_norm, &mut g.ffn_norm, dln, &a.x_mid, dx, n, d, cfg.norm_eps);
    // Attention output projection.
    let datt = zeroed(&mut s.datt, n * qd);
    bw::matmul_nt_backward(dx, &a.att, fs(&layer.o.weight), datt, fsm(&mut g.o.weight), obm(&mut g.o.bias), n, qd, d);
    let (dq, dk, dv) = (zeroed(&mut s.dq, n * qd), zeroed(&mut s.dk, n * kvd), zeroed(&mut s.dv, n * kvd));
    let causal = if ctx.causal { Some(0) } else { None };
    let datt = &s.datt;
    dq.par_chunks_mut(t * qd).zip(dk.par_chunks_mut(t * kvd)).zip(dv.par_chunks_mut(t * kvd)).enumerate().for_each(
        |(b, ((dqb, dkb), dvb))| {
            let (qs, ks) = (b * t * qd..(b + 1) * t * qd, b * t * kvd..(b + 1) * t * kvd);
            bw::attention_backward(
                &datt[qs.clone()],
                &a.q[qs],
                &a.k[ks.clone()],
                &a.v[ks],
                dqb,
                dkb,
                dvb,
                t,
                t,
                cfg.n_heads,
                cfg.n_kv_heads,
                hd,
                causal,
            );
        },
    );
    if let Some((theta, pos)) = ctx.rope {
        bw::rope_backward(dq, n, cfg.n_heads, hd, pos, theta);
        bw::rope_backward(dk, n, cfg.n_kv_heads, hd, pos, theta);
    }
    let dln = zeroed(&mut s.dln, n * d);
    for (dy, lw, lg, m) in
        [(&*dq, &layer.q, &mut g.q, qd), (&*dk, &layer.k, &mut g.k, kvd), (&*dv, &layer.v, &mut g.v, kvd)]
    {
        bw::matmul_nt_backward(dy, &a.ln1, fs(&lw.weight), dln, fsm(&mut lg.weight), obm(&mut lg.bias), n, d, m);
    }
    norm_bwd(cfg.norm, &layer.attn_norm, &mut g.attn_norm, dln, &a.x_in, dx, n, d, cfg.norm_eps);
}
