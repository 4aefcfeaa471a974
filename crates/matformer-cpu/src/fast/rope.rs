//! Fast rotary position embedding: tokens in parallel, each token's
//! `cos`/`sin` computed once and shared by all its heads.

use super::par;
use crate::reference::{rope_cos_sin, rope_inv_freq};
use crate::shape::check_rope;

/// Applies RoPE in place to `x[n_tokens, n_heads, head_dim]` (Hugging Face
/// Llama "rotate_half"): for each head vector `v` and `i < hd/2`,
/// `(v[i], v[i+hd/2]) ← (v[i]·cos − v[i+hd/2]·sin, v[i+hd/2]·cos + v[i]·sin)`
/// with `angle = positions[t] · theta^(-2i/hd)` (computed in `f64`, so
/// results equal the reference bit for bit). `head_dim` must be even.
pub fn rope(x: &mut [f32], n_tokens: usize, n_heads: usize, head_dim: usize, positions: &[usize], theta: f32) {
    check_rope("rope", x.len(), n_tokens, n_heads, head_dim, positions.len());
    rotate(x, n_heads, head_dim, positions, theta, false);
}

/// Rotates every head vector by `+angle` (or `−angle` when `inverse`, the
/// RoPE backward pass). Shapes are checked by the callers.
pub(crate) fn rotate(x: &mut [f32], n_heads: usize, head_dim: usize, positions: &[usize], theta: f32, inverse: bool) {
    let half = head_dim / 2;
    let tok = n_heads * head_dim;
    if half == 0 || tok == 0 {
        return;
    }
    let inv_freq: Vec<f64> = (0..half).map(|i| rope_inv_freq(i, head_dim, theta)).collect();
    par::rows_mut(x, tok, 2 * tok + 40 * half, |t0, rows| {
        let mut cs = vec![(0.0f32, 0.0f32); half];
        for (t, xt) in rows.chunks_exact_mut(tok).enumerate() {
            for (c, &f) in cs.iter_mut().zip(&inv_freq) {
                let (co, si) = rope_cos_sin(positions[t0 + t], f);
                *c = (co, if inverse { -si } else { si });
            }
            for v in xt.chunks_exact_mut(head_dim) {
                let (lo, hi) = v.split_at_mut(half);
                for ((a, b), &(c, s)) in lo.iter_mut().zip(hi.iter_mut()).zip(&cs) {
                    let (x0, x1) = (*a, *b);
                    *a = x0 * c - x1 * s;
                    *b = x1 * c + x0 * s;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use crate::testutil::{rng, uniform};

    /// Both sides compute the same angles in `f64` and the same `f32`
    /// rotation, so the results must be identical (tolerance 0).
    #[test]
    fn matches_reference_exactly() {
        let mut r = rng(3);
        for &(n, h, hd) in &[(1, 1, 2), (7, 3, 8), (33, 4, 64), (130, 2, 128), (5, 7, 130)] {
            let x = uniform(&mut r, n * h * hd);
            let pos: Vec<usize> = (0..n).map(|i| 3 * i + 1000 * (i % 2)).collect();
            let (mut a, mut b) = (x.clone(), x.clone());
            rope(&mut a, n, h, hd, &pos, 10000.0);
            reference::rope(&mut b, n, h, hd, &pos, 10000.0);
            assert_eq!(a, b, "rope {n}x{h}x{hd}");
        }
    }

    #[test]
    #[should_panic(expected = "must be even")]
    fn odd_head_dim_panics() {
        rope(&mut [0.0; 3], 1, 1, 3, &[0], 10000.0);
    }
}
