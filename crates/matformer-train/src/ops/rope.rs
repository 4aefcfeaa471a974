//! Rotary position embeddings (rotate-half convention) and the backward pass (the inverse rotation).

use rayon::prelude::*;

/// `cos`/`sin` table `[seq, head_dim/2]` for positions `0..seq`, computed like the runtime's kernel.
pub fn rope_table(seq: usize, head_dim: usize, theta: f32) -> (Vec<f32>, Vec<f32>) {
    let half = head_dim / 2;
    let mut cos = vec![0.0; seq * half];
    let mut sin = vec![0.0; seq * half];
    for p in 0..seq {
        for i in 0..half {
            let inv = (theta as f64).powf(-((2 * i) as f64) / head_dim as f64);
            let a = p as f64 * inv;
            cos[p * half + i] = a.cos() as f32;
            sin[p * half + i] = a.sin() as f32;
        }
    }
    (cos, sin)
}

fn rotate(x: &mut [f32], seq: usize, n_heads: usize, head_dim: usize, cos: &[f32], sin: &[f32], inverse: bool) {
    let half = head_dim / 2;
    let row = n_heads * head_dim;
    assert_eq!(x.len() % (seq * row).max(1), 0, "rope: x is not whole sequences");
    x.par_chunks_mut(row).enumerate().for_each(|(r, xr)| {
        let p = r % seq;
        let (c, s) = (&cos[p * half..][..half], &sin[p * half..][..half]);
        for hx in xr.chunks_exact_mut(head_dim) {
            for i in 0..half {
                let (a, b) = (hx[i], hx[i + half]);
                let si = if inverse { -s[i] } else { s[i] };
                hx[i] = a * c[i] - b * si;
                hx[i + half] = b * c[i] + a * si;
            }
        }
    });
}

/// Rotate `x [B·T, H·hd]` in place; token `r` has position `r % seq`.
pub fn rope_forward(x: &mut [f32], seq: usize, n_heads: usize, head_dim: usize, cos: &[f32], sin: &[f32]) {
    rotate(x, seq, n_heads, head_dim, cos, sin, false);
}

/// Backward of [`rope_forward`]: the rotation is orthogonal, so the gradient is rotated back in place.
pub fn rope_backward(dx: &mut [f32], seq: usize, n_heads: usize, head_dim: usize, cos: &[f32], sin: &[f32]) {
    rotate(dx, seq, n_heads, head_dim, cos, sin, true);
}
