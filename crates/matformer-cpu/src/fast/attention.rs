//! Fast attention. Few queries (decode): one task per (query, head) with
//! SIMD dot products over the visible keys. Many queries (prefill, ViT):
//! one task per (block of 64 queries, head) computing the score block and
//! the output with two single-threaded `gemm` calls, skipping keys that no
//! query of the block can see.

use rayon::prelude::*;

use super::gemm::{col_major, gemm_raw, row_major, Layout};
use super::math::exp_shift_sum;
use super::par::{SendPtr, TASK_WORK};
use super::simd;
use crate::shape::{check_attention, visible_keys};

/// Queries per block in the blocked path.
const Q_BLOCK: usize = 64;
/// From this many queries on, the blocked (gemm) path is used.
const BLOCKED_MIN_QUERIES: usize = 16;

/// Sizes of one attention call.
#[derive(Clone, Copy)]
pub(crate) struct Dims {
    pub n_q: usize,
    pub n_kv: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub hd: usize,
    pub causal: Option<usize>,
}

impl Dims {
    /// Query heads per kv head.
    pub(crate) fn group(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }
}

/// Multi-head attention. `q[n_q, n_heads, hd]`, `k`/`v` `[n_kv, n_kv_heads, hd]`,
/// `out[n_q, n_heads, hd]` (overwritten). Query head `h` reads kv head
/// `h / (n_heads / n_kv_heads)`. Scores are scaled by `1/sqrt(hd)`; the
/// softmax subtracts the row maximum.
///
/// `causal_offset = Some(p0)`: query `i` sits at absolute position `p0 + i`
/// and sees keys `0..=p0 + i` (the KV-cache prefix plus itself; clamped to
/// `n_kv`). `None`: bidirectional (ViT). With `n_kv == 0` the output is zero.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    n_q: usize,
    n_kv: usize,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
    causal_offset: Option<usize>,
) {
    check_attention("attention", q.len(), k.len(), v.len(), out.len(), n_q, n_kv, n_heads, n_kv_heads, head_dim);
    let dims = Dims { n_q, n_kv, n_heads, n_kv_heads, hd: head_dim, causal: causal_offset };
    if n_q >= BLOCKED_MIN_QUERIES {
        blocked(q, k, v, out, dims);
    } else {
        per_query(q, k, v, out, dims);
    }
}

/// Softmax of the first `nvis` scores in place (the rest are zeroed);
/// returns nothing when `nvis == 0` (all zero).
fn softmax_prefix(s: &mut [f32], nvis: usize) {
    let (vis, hidden) = s.split_at_mut(nvis);
    hidden.fill(0.0);
    if nvis == 0 {
        return;
    }
    let max = simd::max(vis);
    let inv = 1.0 / exp_shift_sum(vis, max);
    for p in vis {
        *p *= inv;
    }
}

/// One task per (query, head).
pub(crate) fn per_query(q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], d: Dims) {
    let (hd, group) = (d.hd, d.group());
    if hd == 0 || out.is_empty() {
        return;
    }
    let kv_stride = d.n_kv_heads * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let body = |scores: &mut Vec<f32>, (idx, o): (usize, &mut [f32])| {
        let (i, h) = (idx / d.n_heads, idx % d.n_heads);
        let kvh = h / group;
        let nvis = visible_keys(i, d.n_kv, d.causal);
        o.fill(0.0);
        if nvis == 0 {
            return;
        }
        scores.resize(nvis, 0.0);
        let qv = &q[idx * hd..(idx + 1) * hd];
        simd::dot_rows_strided(scores, qv, &k[kvh * hd..], kv_stride);
        for s in scores.iter_mut() {
            *s *= scale;
        }
        softmax_prefix(scores, nvis);
        simd::axpy_rows_strided(o, scores, &v[kvh * hd..], kv_stride);
    };
    let work = d.n_kv * hd * 2;
    if out.len() / hd * work <= TASK_WORK {
        let mut scores = Vec::new();
        out.chunks_mut(hd).enumerate().for_each(|t| body(&mut scores, t));
    } else {
        out.par_chunks_mut(hd).enumerate().with_min_len((TASK_WORK / work.max(1)).max(1)).for_each_init(Vec::new, body);
    }
}

/// One task per (block of [`Q_BLOCK`] queries, head), two gemms each.
pub(crate) fn blocked(q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], d: Dims) {
    let (hd, group, nh) = (d.hd, d.group(), d.n_heads);
    if hd == 0 || out.is_empty() {
        return;
    }
    let tok = nh * hd;
    let kv_stride = d.n_kv_heads * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let n_blocks = d.n_q.div_ceil(Q_BLOCK);
    let op = SendPtr::new(out);
    let body = |s: &mut Vec<f32>, t: usize| {
        let (b, h) = (t / nh, t % nh);
        let kvh = h / group;
        let (i0, i1) = (b * Q_BLOCK, ((b + 1) * Q_BLOCK).min(d.n_q));
        let rows = i1 - i0;
        // keys visible to the last (most-seeing) query of the block
        let kv_eff = visible_keys(i1 - 1, d.n_kv, d.causal);
        s.resize(rows * kv_eff.max(1), 0.0);
        // SAFETY: q/k/v reads stay inside their slices (query rows i0..i1 of
        // head h; keys 0..kv_eff of kv head kvh). This task alone writes
        // out rows i0..i1 at head h; other tasks write other (block, head)
        // pairs, so the written elements are disjoint.
        unsafe {
            let o = op.get().add(i0 * tok + h * hd);
            if kv_eff == 0 {
                for r in 0..rows {
                    std::ptr::write_bytes(o.add(r * tok), 0, hd);
                }
                return;
            }
            gemm_raw(
                (rows, kv_eff, hd),
                s.as_mut_ptr(),
                row_major(kv_eff),
                q.as_ptr().add(i0 * tok + h * hd),
                row_major(tok),
                k.as_ptr().add(kvh * hd),
                col_major(kv_stride),
                false,
                scale,
                false,
            );
            for (r, row) in s.chunks_exact_mut(kv_eff).enumerate() {
                softmax_prefix(row, visible_keys(i0 + r, d.n_kv, d.causal));
            }
            gemm_raw(
                (rows, hd, kv_eff),
                o,
                row_major(tok),
                s.as_ptr(),
                row_major(kv_eff),
                v.as_ptr().add(kvh * hd),
                Layout { rs: kv_stride, cs: 1 },
                false,
                1.0,
                false,
            );
        }
    };
    let n_tasks = n_blocks * nh;
    if n_tasks == 1 {
        body(&mut Vec::new(), 0);
    } else {
        (0..n_tasks).into_par_iter().for_each_init(Vec::new, body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use crate::testutil::{assert_close, rng, uniform};

    /// Tolerance rtol 1e-4, atol 2e-6: outputs are convex combinations of
    /// values in [-1, 1]. Scores are `f32` dot products of length hd ≤ 130
    /// (relative error ~1e-6), exponentials are ~1 ulp, so the weights and
    /// outputs carry errors of a few 1e-7 relative to the value scale; the
    /// bound leaves margin while a wrong mask or head mapping gives O(0.1).
    #[test]
    fn both_paths_match_reference() {
        let mut r = rng(11);
        let cases = [
            // (n_q, n_kv, heads, kv_heads, hd, causal)
            (1, 1, 1, 1, 2, Some(0)),
            (1, 7, 4, 2, 8, Some(6)),
            (1, 33, 4, 1, 16, None),
            (7, 7, 2, 2, 16, Some(0)),
            (7, 40, 6, 3, 8, Some(33)),
            (33, 33, 4, 2, 32, Some(0)),
            (33, 130, 2, 1, 64, Some(97)),
            (130, 130, 3, 3, 16, None),
            (130, 130, 2, 2, 130, Some(0)),
            (70, 20, 2, 1, 8, Some(0)), // clamped: later queries see all keys
        ];
        for &(n_q, n_kv, nh, nkv, hd, causal) in &cases {
            let q = uniform(&mut r, n_q * nh * hd);
            let k: Vec<f32> = uniform(&mut r, n_kv * nkv * hd).iter().map(|v| v * 3.0).collect();
            let v = uniform(&mut r, n_kv * nkv * hd);
            let mut want = vec![0.0; q.len()];
            reference::attention(&q, &k, &v, &mut want, n_q, n_kv, nh, nkv, hd, causal);
            let d = Dims { n_q, n_kv, n_heads: nh, n_kv_heads: nkv, hd, causal };
            let mut got = vec![f32::NAN; q.len()];
            per_query(&q, &k, &v, &mut got, d);
            assert_close(&format!("per_query {n_q}/{n_kv}"), &got, &want, 1e-4, 2e-6);
            let mut got = vec![f32::NAN; q.len()];
            blocked(&q, &k, &v, &mut got, d);
            assert_close(&format!("blocked {n_q}/{n_kv}"), &got, &want, 1e-4, 2e-6);
            let mut got = vec![f32::NAN; q.len()];
            attention(&q, &k, &v, &mut got, n_q, n_kv, nh, nkv, hd, causal);
            assert_close(&format!("attention {n_q}/{n_kv}"), &got, &want, 1e-4, 2e-6);
        }
    }

    #[test]
    fn no_keys_gives_zero() {
        let mut out = vec![f32::NAN; 2 * 4];
        attention(&[1.0; 8], &[], &[], &mut out, 2, 0, 2, 1, 2, None);
        assert!(out.iter().all(|&x| x == 0.0));
        let mut out = vec![f32::NAN; 20 * 2];
        attention(&[1.0; 40], &[], &[], &mut out, 20, 0, 1, 1, 2, Some(0));
        assert!(out.iter().all(|&x| x == 0.0));
    }
}
