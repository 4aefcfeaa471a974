//! Reference activations, evaluated in `f64`.

use crate::shape::check_len;

/// `sqrt(2/π)`, the GPT-2 tanh-GELU constant.
pub(crate) const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the tanh-GELU.
pub(crate) const GELU_TANH_C: f64 = 0.044_715;

/// Exact GELU in place: `x · Φ(x) = 0.5 · x · erfc(−x/√2)`. Written with
/// `erfc` (rather than `1 + erf`) so negative inputs keep full relative
/// precision.
pub fn gelu(x: &mut [f32]) {
    for v in x {
        let z = *v as f64;
        *v = (0.5 * z * libm::erfc(-z * std::f64::consts::FRAC_1_SQRT_2)) as f32;
    }
}

/// GPT-2 "gelu_new" in place:
/// `0.5 · x · (1 + tanh(√(2/π)·(x + 0.044715·x³)))`, evaluated as the
/// identical `x / (1 + exp(−2u))` to avoid cancellation for negative `x`.
pub fn gelu_tanh(x: &mut [f32]) {
    for v in x {
        let z = *v as f64;
        let u = SQRT_2_OVER_PI * (z + GELU_TANH_C * z * z * z);
        *v = (z / (1.0 + (-2.0 * u).exp())) as f32;
    }
}

/// `out = silu(gate) · up` with `silu(g) = g / (1 + exp(−g))` (Llama SwiGLU).
pub fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    check_len("silu_mul", "up", up.len(), gate.len());
    check_len("silu_mul", "out", out.len(), gate.len());
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        let g = g as f64;
        *o = (g / (1.0 + (-g).exp()) * u as f64) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let mut x = [0.0, 1.0, -1.0, 3.0];
        gelu(&mut x);
        // GELU(1) = 0.8413447460685429
        assert_eq!(x[0], 0.0);
        assert!((x[1] as f64 - 0.841_344_746_068_543).abs() < 1e-7);
        assert!((x[2] as f64 + 0.158_655_253_931_457).abs() < 1e-7);
        let mut t = [1.0];
        gelu_tanh(&mut t);
        // gelu_new(1) = 0.8411919906082768
        assert!((t[0] as f64 - 0.841_191_990_608_276_8).abs() < 1e-7);
        let mut o = [0.0];
        silu_mul(&[1.0], &[2.0], &mut o);
        assert!((o[0] - 2.0 * 0.731_058_6).abs() < 1e-6);
    }
}
