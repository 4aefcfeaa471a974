//! Reference rotary position embedding (Hugging Face Llama "rotate_half").

use crate::shape::check_rope;

/// The inverse frequency of pair `i < hd/2`: `theta^(-2i/hd)` in `f64`.
#[inline]
pub(crate) fn rope_inv_freq(i: usize, head_dim: usize, theta: f32) -> f64 {
    (theta as f64).powf(-((2 * i) as f64) / head_dim as f64)
}

/// The `(cos, sin)` of `angle = pos · inv_freq`, computed in `f64` then
/// rounded to `f32`. The fast path uses the same formula so both agree bit
/// for bit.
#[inline]
pub(crate) fn rope_cos_sin(pos: usize, inv_freq: f64) -> (f32, f32) {
    let angle = pos as f64 * inv_freq;
    (angle.cos() as f32, angle.sin() as f32)
}

/// Applies RoPE in place to `x[n_tokens, n_heads, head_dim]`; token `t` sits
/// at `positions[t]`. For each head vector `v` and `i < hd/2`:
/// `(v[i], v[i+hd/2]) ← (v[i]·cos − v[i+hd/2]·sin, v[i+hd/2]·cos + v[i]·sin)`
/// with `angle = pos · theta^(-2i/hd)`. `head_dim` must be even.
pub fn rope(x: &mut [f32], n_tokens: usize, n_heads: usize, head_dim: usize, positions: &[usize], theta: f32) {
    check_rope("rope", x.len(), n_tokens, n_heads, head_dim, positions.len());
    let half = head_dim / 2;
    for (t, &pos) in positions.iter().enumerate() {
        for h in 0..n_heads {
            let base = (t * n_heads + h) * head_dim;
            for i in 0..half {
                let (c, s) = rope_cos_sin(pos, rope_inv_freq(i, head_dim, theta));
                let a = x[base + i];
                let b = x[base + i + half];
                x[base + i] = a * c - b * s;
                x[base + i + half] = b * c + a * s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_zero_is_identity_and_norm_is_kept() {
        let orig: Vec<f32> = (0..16).map(|i| i as f32 * 0.1 - 0.7).collect();
        let mut x = orig.clone();
        rope(&mut x, 2, 2, 4, &[0, 0], 10000.0);
        assert_eq!(x, orig);
        rope(&mut x, 2, 2, 4, &[5, 1234], 10000.0);
        let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>();
        for (a, b) in x.chunks(4).zip(orig.chunks(4)) {
            assert!((norm(a) - norm(b)).abs() < 1e-5);
        }
    }

    #[test]
    fn first_pair_rotates_by_pos() {
        // i = 0 has frequency 1: angle = pos.
        let mut x = vec![1.0, 0.0, 0.0, 0.0];
        rope(&mut x, 1, 1, 4, &[1], 10000.0);
        assert!((x[0] - 1f32.cos()).abs() < 1e-6);
        assert!((x[2] - 1f32.sin()).abs() < 1e-6);
    }
}
