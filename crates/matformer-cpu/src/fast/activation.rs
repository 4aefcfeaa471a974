//! Fast activations: chunks in parallel, vectorized transcendental math.

use super::{math, par};
use crate::shape::check_len;

/// Exact GELU in place: `x·Φ(x) = 0.5·x·erfc(−x/√2)`. Uses a vectorized
/// `erfc` with relative error ≤ 1e-6 for x ≥ −4 and a few 1e-6 on the far
/// negative tail (where GELU itself is below 1e-4), i.e. an absolute error
/// below 1e-7·|x| everywhere.
pub fn gelu(x: &mut [f32]) {
    par::chunks_mut(x, |_, c| math::gelu_slice(c));
}

/// GPT-2 "gelu_new" in place: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
pub fn gelu_tanh(x: &mut [f32]) {
    par::chunks_mut(x, |_, c| math::gelu_tanh_slice(c));
}

/// `out = silu(gate)·up` with `silu(g) = g / (1 + exp(−g))` (Llama SwiGLU).
pub fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    check_len("silu_mul", "up", up.len(), gate.len());
    check_len("silu_mul", "out", out.len(), gate.len());
    par::chunks_mut(out, |off, o| {
        let end = off + o.len();
        math::silu_mul_slice(&gate[off..end], &up[off..end], o);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use crate::testutil::{assert_close, rng, uniform};

    /// Tolerance rtol 1e-5, atol 1e-30: the vectorized exp is ~1 ulp and the
    /// erfc fit 1.2e-7 relative, but the `f32` argument `-z²` of the
    /// exponential limits GELU's relative precision on the far negative
    /// tail to ~|x|²·2⁻²⁴ (≤ 6e-6 at |x| = 10). Elsewhere the errors are a
    /// few ulp. The test spans [-12, 12] and sizes around chunk boundaries.
    #[test]
    fn matches_reference() {
        let mut r = rng(5);
        for len in [1, 7, 33, 130, 40_000] {
            let x: Vec<f32> = uniform(&mut r, len).iter().map(|v| v * 12.0).collect();
            let up = uniform(&mut r, len);
            let (mut a, mut b) = (x.clone(), x.clone());
            gelu(&mut a);
            reference::gelu(&mut b);
            assert_close("gelu", &a, &b, 1e-5, 1e-30);
            let (mut a, mut b) = (x.clone(), x.clone());
            gelu_tanh(&mut a);
            reference::gelu_tanh(&mut b);
            assert_close("gelu_tanh", &a, &b, 1e-5, 1e-30);
            let (mut a, mut b) = (vec![0.0; len], vec![0.0; len]);
            silu_mul(&x, &up, &mut a);
            reference::silu_mul(&x, &up, &mut b);
            assert_close("silu_mul", &a, &b, 1e-5, 1e-30);
        }
    }
}
