//! One pre-norm transformer block: forward with saved activations, and its backward pass.
//! The FFN uses only the first `width` neurons (rows of the neuron-major `up`, `gate`, `down_t`).

use matformer_graph::{FfnKind, Layer, ModelConfig, NormKind};

use super::params::{fs, fsm, ob, obm};
use crate::ops::act::{act_backward, act_forward, swiglu_backward, swiglu_forward, Activation};
use crate::ops::attention::{attention_backward, attention_forward, AttnDims};
use crate::ops::matmul::{linear_backward, matmul_nn, matmul_nt, matmul_tn};
use crate::ops::norm::{norm_backward, norm_forward, NormParams};
use crate::ops::rope::{rope_backward, rope_forward};
use crate::ops::{add_bias, add_inplace, colsum_accumulate};

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
    /// RoPE `(cos, sin)` tables `[seq, head_dim/2]`, when the model rotates queries and keys.
    pub rope: Option<(&'a [f32], &'a [f32])>,
}

impl BlockCtx<'_> {
    fn rows(&self) -> usize {
        self.batch * self.seq
    }
    fn attn_dims(&self) -> AttnDims {
        AttnDims {
            batch: self.batch,
            seq: self.seq,
            n_heads: self.cfg.n_heads,
            n_kv_heads: self.cfg.n_kv_heads,
            head_dim: self.cfg.head_dim(),
            causal: self.causal,
        }
    }
}

/// Activations one block keeps for its backward pass.
#[derive(Default)]
pub struct BlockActs {
    x_in: Vec<f32>,
    ln1: Vec<f32>,
    mean1: Vec<f32>,
    rstd1: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    probs: Vec<f32>,
    att: Vec<f32>,
    x_mid: Vec<f32>,
    ln2: Vec<f32>,
    mean2: Vec<f32>,
    rstd2: Vec<f32>,
    up: Vec<f32>,
    gate: Vec<f32>,
    act: Vec<f32>,
    width: usize,
}

/// Scratch buffers of the backward pass, shared by all blocks.
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

/// Resize to `n` elements (contents unspecified unless zeroed by the caller).
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

pub(crate) fn norm_params(kind: NormKind, w: &matformer_graph::Norm) -> NormParams<'_> {
    match kind {
        NormKind::LayerNorm => NormParams::Layer { gamma: fs(&w.weight), beta: ob(&w.bias) },
        NormKind::RmsNorm => NormParams::Rms { gamma: fs(&w.weight) },
    }
}

fn linear_fwd(x: &[f32], w: &matformer_graph::Linear, rows: usize, y: &mut [f32], n: usize, k: usize) {
    matmul_nt(x, &fs(&w.weight)[..rows * k], y, n, k, rows, false);
    if let Some(b) = ob(&w.bias) {
        add_bias(y, &b[..rows], n, rows);
    }
}

/// Forward one block in place on the residual stream `x [B·T, d]`, saving activations into `a`.
pub fn block_forward(ctx: BlockCtx<'_>, layer: &Layer, width: usize, x: &mut [f32], a: &mut BlockActs) {
    let cfg = ctx.cfg;
    let (n, d, hd) = (ctx.rows(), cfg.d_model, cfg.head_dim());
    let (qd, kvd) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
    a.width = width;
    a.x_in.clear();
    a.x_in.extend_from_slice(x);
    // Attention.
    norm_forward(
        norm_params(cfg.norm, &layer.attn_norm),
        x,
        sized(&mut a.ln1, n * d),
        sized(&mut a.mean1, n),
        sized(&mut a.rstd1, n),
        n,
        d,
        cfg.norm_eps,
    );
    linear_fwd(&a.ln1, &layer.q, qd, sized(&mut a.q, n * qd), n, d);
    linear_fwd(&a.ln1, &layer.k, kvd, sized(&mut a.k, n * kvd), n, d);
    linear_fwd(&a.ln1, &layer.v, kvd, sized(&mut a.v, n * kvd), n, d);
    if let Some((cos, sin)) = ctx.rope {
        rope_forward(&mut a.q, ctx.seq, cfg.n_heads, hd, cos, sin);
        rope_forward(&mut a.k, ctx.seq, cfg.n_kv_heads, hd, cos, sin);
    }
    let t = ctx.seq;
    attention_forward(
        &a.q,
        &a.k,
        &a.v,
        sized(&mut a.att, n * qd),
        sized(&mut a.probs, ctx.batch * cfg.n_heads * t * t),
        ctx.attn_dims(),
    );
    let mut tmp = vec![0.0f32; n * d];
    linear_fwd(&a.att, &layer.o, d, &mut tmp, n, qd);
    add_inplace(x, &tmp);
    a.x_mid.clear();
    a.x_mid.extend_from_slice(x);
    // FFN over the active prefix of neurons.
    norm_forward(
        norm_params(cfg.norm, &layer.ffn_norm),
        x,
        sized(&mut a.ln2, n * d),
        sized(&mut a.mean2, n),
        sized(&mut a.rstd2, n),
        n,
        d,
        cfg.norm_eps,
    );
    linear_fwd(&a.ln2, &layer.up, width, sized(&mut a.up, n * width), n, d);
    let act = sized(&mut a.act, n * width);
    match cfg.ffn {
        FfnKind::SwiGlu => {
            let g = layer.gate.as_ref().expect("SwiGLU layer has a gate");
            let gate = sized(&mut a.gate, n * width);
            matmul_nt(&a.ln2, &fs(g)[..width * d], gate, n, d, width, false);
            swiglu_forward(gate, &a.up, act);
        }
        FfnKind::Gelu => act_forward(Activation::Gelu, &a.up, act),
        FfnKind::GeluTanh => act_forward(Activation::GeluTanh, &a.up, act),
    }
    matmul_nn(act, &fs(&layer.down_t)[..width * d], &mut tmp, n, width, d, false);
    if let Some(b) = ob(&layer.down_bias) {
        add_bias(&mut tmp, b, n, d);
    }
    add_inplace(x, &tmp);
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
    let (n, d, hd) = (ctx.rows(), cfg.d_model, cfg.head_dim());
    let (qd, kvd) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
    let w = a.width;
    let ln = cfg.norm == NormKind::LayerNorm;
    // FFN down projection: y = act · down_t[:w] + b.
    if let Some(db) = obm(&mut g.down_bias) {
        colsum_accumulate(dx, db, n, d);
    }
    let dact = sized(&mut s.dact, n * w);
    matmul_nt(dx, &fs(&layer.down_t)[..w * d], dact, n, d, w, false);
    matmul_tn(&a.act, dx, &mut fsm(&mut g.down_t)[..w * d], n, w, d, true);
    let dup = zeroed(&mut s.dup, n * w);
    let dln = zeroed(&mut s.dln, n * d);
    match cfg.ffn {
        FfnKind::SwiGlu => {
            let dgate = zeroed(&mut s.dgate, n * w);
            swiglu_backward(&s.dact, &a.gate, &a.up, dgate, dup);
            let gw = layer.gate.as_ref().expect("SwiGLU layer has a gate");
            let gg = g.gate.as_mut().expect("SwiGLU grads have a gate");
            linear_backward(dgate, &a.ln2, &fs(gw)[..w * d], Some(dln), &mut fsm(gg)[..w * d], None, n, d, w);
        }
        FfnKind::Gelu => act_backward(Activation::Gelu, &s.dact, &a.up, dup),
        FfnKind::GeluTanh => act_backward(Activation::GeluTanh, &s.dact, &a.up, dup),
    }
    linear_backward(
        dup,
        &a.ln2,
        &fs(&layer.up.weight)[..w * d],
        Some(dln),
        &mut fsm(&mut g.up.weight)[..w * d],
        obm(&mut g.up.bias).map(|b| &mut b[..w]),
        n,
        d,
        w,
    );
    norm_backward(
        ln,
        dln,
        &a.x_mid,
        &a.mean2,
        &a.rstd2,
        fs(&layer.ffn_norm.weight),
        dx,
        fsm(&mut g.ffn_norm.weight),
        obm(&mut g.ffn_norm.bias),
        n,
        d,
    );
    // Attention output projection.
    let datt = zeroed(&mut s.datt, n * qd);
    linear_backward(dx, &a.att, fs(&layer.o.weight), Some(datt), fsm(&mut g.o.weight), obm(&mut g.o.bias), n, qd, d);
    let (dq, dk, dv) = (zeroed(&mut s.dq, n * qd), zeroed(&mut s.dk, n * kvd), zeroed(&mut s.dv, n * kvd));
    attention_backward(&s.datt, &a.q, &a.k, &a.v, &a.probs, dq, dk, dv, ctx.attn_dims());
    if let Some((cos, sin)) = ctx.rope {
        rope_backward(dq, ctx.seq, cfg.n_heads, hd, cos, sin);
        rope_backward(dk, ctx.seq, cfg.n_kv_heads, hd, cos, sin);
    }
    let dln = zeroed(&mut s.dln, n * d);
    for (dy, lw, lg, m) in
        [(&*dq, &layer.q, &mut g.q, qd), (&*dk, &layer.k, &mut g.k, kvd), (&*dv, &layer.v, &mut g.v, kvd)]
    {
        linear_backward(dy, &a.ln1, fs(&lw.weight), Some(dln), fsm(&mut lg.weight), obm(&mut lg.bias), n, d, m);
    }
    norm_backward(
        ln,
        dln,
        &a.x_in,
        &a.mean1,
        &a.rstd1,
        fs(&layer.attn_norm.weight),
        dx,
        fsm(&mut g.attn_norm.weight),
        obm(&mut g.attn_norm.bias),
        n,
        d,
    );
}
