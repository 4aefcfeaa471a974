//! Multi-head (grouped-query) self-attention over a batch of equal-length sequences, saving the softmax
//! probabilities for the backward pass. Each (sequence, head) is a few small GEMMs; sequences run in
//! parallel, heads of one sequence in order (so GQA key/value gradients accumulate deterministically).

use rayon::prelude::*;

use super::matmul::gemm_strided;

/// Shapes of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnDims {
    /// Sequences in the batch.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (divides `n_heads`).
    pub n_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Causal mask (query `i` sees keys `0..=i`).
    pub causal: bool,
}

impl AttnDims {
    fn check(&self, q: usize, k: usize, v: usize, out: usize, probs: usize) {
        let (b, t, h, kv, hd) = (self.batch, self.seq, self.n_heads, self.n_kv_heads, self.head_dim);
        assert!(kv > 0 && h % kv == 0, "attention: n_kv_heads must divide n_heads");
        assert_eq!(q, b * t * h * hd, "attention: q has the wrong length");
        assert_eq!(k, b * t * kv * hd, "attention: k has the wrong length");
        assert_eq!(v, b * t * kv * hd, "attention: v has the wrong length");
        assert_eq!(out, b * t * h * hd, "attention: out has the wrong length");
        assert_eq!(probs, b * h * t * t, "attention: probs has the wrong length");
    }
}

/// `out = softmax(q·kᵀ/√hd [+ causal mask])·v`; q, out `[B·T, H·hd]`, k, v `[B·T, KV·hd]`, probs `[B, H, T, T]`.
pub fn attention_forward(q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], probs: &mut [f32], dims: AttnDims) {
    dims.check(q.len(), k.len(), v.len(), out.len(), probs.len());
    let AttnDims { seq: t, n_heads: h, n_kv_heads: kvh, head_dim: hd, causal, .. } = dims;
    if t == 0 {
        return;
    }
    let (qs, kvs) = (h * hd, kvh * hd);
    let group = h / kvh;
    let scale = 1.0 / (hd as f32).sqrt();
    out.par_chunks_mut(t * qs).zip(probs.par_chunks_mut(h * t * t)).enumerate().for_each(|(b, (ob, pb))| {
        let (qb, kb, vb) = (&q[b * t * qs..][..t * qs], &k[b * t * kvs..][..t * kvs], &v[b * t * kvs..][..t * kvs]);
        for head in 0..h {
            let kh = head / group;
            let p = &mut pb[head * t * t..][..t * t];
            // SAFETY: q/k slices cover T rows of stride qs/kvs; p is [T,T] and exclusively borrowed.
            unsafe {
                gemm_strided(
                    (t, t, hd),
                    p.as_mut_ptr(),
                    (t, 1),
                    qb.as_ptr().add(head * hd),
                    (qs, 1),
                    kb.as_ptr().add(kh * hd),
                    (1, kvs),
                    false,
                    false,
                );
            }
            for (i, row) in p.chunks_exact_mut(t).enumerate() {
                let vis = if causal { i + 1 } else { t };
                let mut max = f32::NEG_INFINITY;
                for s in &mut row[..vis] {
                    *s *= scale;
                    max = max.max(*s);
                }
                let mut sum = 0.0f32;
                for s in &mut row[..vis] {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                let inv = 1.0 / sum;
                for s in &mut row[..vis] {
                    *s *= inv;
                }
                row[vis..].fill(0.0);
            }
            // SAFETY: p is [T,T]; v rows have stride kvs; ob rows have stride qs and this head's columns
            // are written by this task only.
            unsafe {
                gemm_strided(
                    (t, hd, t),
                    ob.as_mut_ptr().add(head * hd),
                    (qs, 1),
                    p.as_ptr(),
                    (t, 1),
                    vb.as_ptr().add(kh * hd),
                    (kvs, 1),
                    false,
                    false,
                );
            }
        }
    });
}

/// Backward of [`attention_forward`]: accumulates into `dq`, `dk`, `dv`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    dout: &[f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
    dims: AttnDims,
) {
    dims.check(q.len(), k.len(), v.len(), dout.len(), probs.len());
    assert!(dq.len() == q.len() && dk.len() == k.len() && dv.len() == v.len(), "attention_backward: grad lengths");
    let AttnDims { seq: t, n_heads: h, n_kv_heads: kvh, head_dim: hd, .. } = dims;
    if t == 0 {
        return;
    }
    let (qs, kvs) = (h * hd, kvh * hd);
    let group = h / kvh;
    let scale = 1.0 / (hd as f32).sqrt();
    dq.par_chunks_mut(t * qs).zip(dk.par_chunks_mut(t * kvs)).zip(dv.par_chunks_mut(t * kvs)).enumerate().for_each(
        |(b, ((dqb, dkb), dvb))| {
            let qb = &q[b * t * qs..][..t * qs];
            let kb = &k[b * t * kvs..][..t * kvs];
            let vb = &v[b * t * kvs..][..t * kvs];
            let dob = &dout[b * t * qs..][..t * qs];
            let mut ds = vec![0.0f32; t * t];
            for head in 0..h {
                let kh = head / group;
                let p = &probs[(b * h + head) * t * t..][..t * t];
                // SAFETY (all GEMMs below): operands are sub-matrices of this sequence's slices with the
                // strides given; destinations are exclusively borrowed by this task.
                unsafe {
                    // dP = dO · Vᵀ
                    gemm_strided(
                        (t, t, hd),
                        ds.as_mut_ptr(),
                        (t, 1),
                        dob.as_ptr().add(head * hd),
                        (qs, 1),
                        vb.as_ptr().add(kh * hd),
                        (1, kvs),
                        false,
                        false,
                    );
                    // dV += Pᵀ · dO
                    gemm_strided(
                        (t, hd, t),
                        dvb.as_mut_ptr().add(kh * hd),
                        (kvs, 1),
                        p.as_ptr(),
                        (1, t),
                        dob.as_ptr().add(head * hd),
                        (qs, 1),
                        true,
                        false,
                    );
                }
                // dS = P ⊙ (dP − rowsum(P ⊙ dP)), times the score scale.
                for (pr, dr) in p.chunks_exact(t).zip(ds.chunks_exact_mut(t)) {
                    let dot: f32 = pr.iter().zip(dr.iter()).map(|(&a, &b)| a * b).sum();
                    for (d, &pv) in dr.iter_mut().zip(pr) {
                        *d = pv * (*d - dot) * scale;
                    }
                }
                unsafe {
                    // dQ += dS · K
                    gemm_strided(
                        (t, hd, t),
                        dqb.as_mut_ptr().add(head * hd),
                        (qs, 1),
                        ds.as_ptr(),
                        (t, 1),
                        kb.as_ptr().add(kh * hd),
                        (kvs, 1),
                        true,
                        false,
                    );
                    // dK += dSᵀ · Q
                    gemm_strided(
                        (t, hd, t),
                        dkb.as_mut_ptr().add(kh * hd),
                        (kvs, 1),
                        ds.as_ptr(),
                        (1, t),
                        qb.as_ptr().add(head * hd),
                        (qs, 1),
                        true,
                        false,
                    );
                }
            }
        },
    );
}
