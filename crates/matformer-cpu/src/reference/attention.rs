//! Reference scaled dot-product attention with grouped-query heads.

use crate::shape::{check_attention, visible_keys};

/// Multi-head attention. `q[n_q, n_heads, hd]`, `k`/`v` `[n_kv, n_kv_heads, hd]`,
/// `out[n_q, n_heads, hd]` (overwritten). Query head `h` reads kv head
/// `h / (n_heads / n_kv_heads)`. Scores are scaled by `1/sqrt(hd)`.
///
/// `causal_offset = Some(p0)`: query `i` sits at absolute position `p0 + i`
/// and sees keys `0..=p0 + i` (the KV-cache prefix plus itself; clamped to
/// `n_kv`). `None`: every query sees every key (bidirectional, ViT).
/// With `n_kv == 0` the output is zero.
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
    let group =
        check_attention("attention", q.len(), k.len(), v.len(), out.len(), n_q, n_kv, n_heads, n_kv_heads, head_dim);
    let hd = head_dim;
    let scale = 1.0 / (hd as f64).sqrt();
    let mut p = vec![0.0f64; n_kv];
    for i in 0..n_q {
        let nvis = visible_keys(i, n_kv, causal_offset);
        for h in 0..n_heads {
            let kvh = h / group;
            let qv = &q[(i * n_heads + h) * hd..][..hd];
            let mut max = f64::NEG_INFINITY;
            for (j, pj) in p.iter_mut().enumerate().take(nvis) {
                let kv = &k[(j * n_kv_heads + kvh) * hd..][..hd];
                let s: f64 = qv.iter().zip(kv).map(|(&a, &b)| a as f64 * b as f64).sum();
                *pj = s * scale;
                max = max.max(*pj);
            }
            let mut sum = 0.0;
            for pj in p.iter_mut().take(nvis) {
                *pj = (*pj - max).exp();
                sum += *pj;
            }
            let o = &mut out[(i * n_heads + h) * hd..][..hd];
            for (dd, od) in o.iter_mut().enumerate() {
                let mut acc = 0.0f64;
                for (j, &pj) in p.iter().enumerate().take(nvis) {
                    acc += pj * v[(j * n_kv_heads + kvh) * hd + dd] as f64;
                }
                *od = if nvis == 0 { 0.0 } else { (acc / sum) as f32 };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_key_returns_value() {
        let q = [0.3, -0.2];
        let k = [1.0, 2.0];
        let v = [5.0, -7.0];
        let mut out = [0.0; 2];
        attention(&q, &k, &v, &mut out, 1, 1, 1, 1, 2, Some(0));
        assert_eq!(out, [5.0, -7.0]);
    }

    #[test]
    fn causal_first_query_sees_only_first_key() {
        // two queries, two keys; query 0 (p0 = 0) must ignore key 1.
        let q = [1.0, 1.0, 1.0, 1.0];
        let k = [0.0, 0.0, 9.0, 9.0];
        let v = [1.0, 2.0, 3.0, 4.0];
        let mut out = [0.0; 4];
        attention(&q, &k, &v, &mut out, 2, 2, 1, 1, 2, Some(0));
        assert_eq!(&out[..2], &[1.0, 2.0]);
        // the second query prefers key 1 strongly
        assert!(out[2] > 2.9 && out[3] > 3.9);
        // equal scores average the values
        let mut out2 = [0.0; 2];
        attention(&[0.0, 0.0], &k, &v, &mut out2, 1, 2, 1, 1, 2, None);
        assert_eq!(out2, [2.0, 3.0]);
    }
}
