//! Backward of the activations (vectorized, chunks in parallel).

use rayon::prelude::*;

use crate::fast::math::{exp, gelu_tanh_arg, normal_cdf, sigmoid};
use crate::fast::par::TASK_WORK;
use crate::fast::simd::{dispatch, fmadd};
use crate::reference::{GELU_TANH_C, SQRT_2_OVER_PI};
use crate::shape::check_len;

/// `1/√(2π)`.
const INV_SQRT_2PI: f32 = 0.398_942_3;

#[inline(always)]
fn gelu_bwd_impl<const FMA: bool>(dy: &[f32], x: &[f32], dx: &mut [f32]) {
    for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(x) {
        // d/dx x·Φ(x) = Φ(x) + x·φ(x)
        let pdf = INV_SQRT_2PI * exp::<FMA>(-0.5 * v * v);
        *d = fmadd::<FMA>(g, fmadd::<FMA>(v, pdf, normal_cdf::<FMA>(v)), *d);
    }
}

dispatch! {
    fn gelu_bwd(dy: &[f32], x: &[f32], dx: &mut [f32]) => gelu_bwd_impl
}

#[inline(always)]
fn gelu_tanh_bwd_impl<const FMA: bool>(dy: &[f32], x: &[f32], dx: &mut [f32]) {
    const A: f32 = SQRT_2_OVER_PI as f32;
    const B3: f32 = (3.0 * SQRT_2_OVER_PI * GELU_TANH_C) as f32;
    for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(x) {
        // f = x·s with s = σ(2u): f' = s + 2x·e·s²·u', e = exp(−2u)
        let u2 = 2.0 * gelu_tanh_arg::<FMA>(v);
        let e = exp::<FMA>(-u2);
        let s = 1.0 / (1.0 + e);
        let du = fmadd::<FMA>(B3, v * v, A);
        let grad = fmadd::<FMA>(2.0 * v * (e * s) * s, du, s);
        *d = fmadd::<FMA>(g, grad, *d);
    }
}

dispatch! {
    fn gelu_tanh_bwd(dy: &[f32], x: &[f32], dx: &mut [f32]) => gelu_tanh_bwd_impl
}

#[inline(always)]
fn silu_mul_bwd_impl<const FMA: bool>(dout: &[f32], gate: &[f32], up: &[f32], dgate: &mut [f32], dup: &mut [f32]) {
    for ((((dg, du), &o), &g), &u) in dgate.iter_mut().zip(dup.iter_mut()).zip(dout).zip(gate).zip(up) {
        let s = sigmoid::<FMA>(g);
        let silu = g * s;
        // silu'(g) = s·(1 + g·(1 − s))
        let dsilu = s * fmadd::<FMA>(g, 1.0 - s, 1.0);
        *dg = fmadd::<FMA>(o * u, dsilu, *dg);
        *du = fmadd::<FMA>(o, silu, *du);
    }
}

dispatch! {
    fn silu_mul_bwd(dout: &[f32], gate: &[f32], up: &[f32], dgate: &mut [f32], dup: &mut [f32]) => silu_mul_bwd_impl
}

/// Runs an element-wise backward kernel over `(dy, x, dx)` in chunks.
fn unary(op: &str, dy: &[f32], x: &[f32], dx: &mut [f32], f: fn(&[f32], &[f32], &mut [f32])) {
    check_len(op, "x", x.len(), dy.len());
    check_len(op, "dx", dx.len(), dy.len());
    if dy.len() <= TASK_WORK {
        f(dy, x, dx);
    } else {
        dx.par_chunks_mut(TASK_WORK)
            .zip(dy.par_chunks(TASK_WORK).zip(x.par_chunks(TASK_WORK)))
            .for_each(|(d, (g, v))| f(g, v, d));
    }
}

/// Backward of [`crate::fast::gelu`]: accumulates `dx += dy·(Φ(x) + x·φ(x))`.
pub fn gelu_backward(dy: &[f32], x: &[f32], dx: &mut [f32]) {
    unary("gelu_backward", dy, x, dx, gelu_bwd);
}

/// Backward of [`crate::fast::gelu_tanh`]: accumulates `dx += dy·f'(x)`.
pub fn gelu_tanh_backward(dy: &[f32], x: &[f32], dx: &mut [f32]) {
    unary("gelu_tanh_backward", dy, x, dx, gelu_tanh_bwd);
}

/// Backward of [`crate::fast::silu_mul`] (`out = silu(gate)·up`):
/// accumulates `dgate += dout·up·silu'(gate)` and `dup += dout·silu(gate)`.
pub fn silu_mul_backward(dout: &[f32], gate: &[f32], up: &[f32], dgate: &mut [f32], dup: &mut [f32]) {
    let op = "silu_mul_backward";
    let n = dout.len();
    check_len(op, "gate", gate.len(), n);
    check_len(op, "up", up.len(), n);
    check_len(op, "dgate", dgate.len(), n);
    check_len(op, "dup", dup.len(), n);
    if n <= TASK_WORK {
        silu_mul_bwd(dout, gate, up, dgate, dup);
    } else {
        dgate
            .par_chunks_mut(TASK_WORK)
            .zip(dup.par_chunks_mut(TASK_WORK))
            .zip(dout.par_chunks(TASK_WORK))
            .zip(gate.par_chunks(TASK_WORK).zip(up.par_chunks(TASK_WORK)))
            .for_each(|(((dg, du), o), (g, u))| silu_mul_bwd(o, g, u, dg, du));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use crate::testutil::{assert_close, check_grad, project, rng, uniform};

    /// Central differences (step 1e-3) of the `f64` reference forward on
    /// inputs in [-4, 4]. Truncation error eps²·|f'''|/6 ≲ 1e-7; `f32`
    /// output rounding over a 2e-3 step gives ≲ 1e-4 absolute. Tolerance
    /// 1e-3 rel + 3e-4 abs.
    #[test]
    fn gradients_match_finite_differences() {
        let mut r = rng(61);
        let n = 64;
        let x: Vec<f32> = uniform(&mut r, n).iter().map(|v| v * 4.0).collect();
        let up = uniform(&mut r, n);
        let rr = uniform(&mut r, n);
        let (h, rt, at) = (1e-3, 1e-3, 3e-4);
        for (name, fwd, bwd) in [
            ("gelu", reference::gelu as fn(&mut [f32]), gelu_backward as fn(&[f32], &[f32], &mut [f32])),
            ("gelu_tanh", reference::gelu_tanh, gelu_tanh_backward),
        ] {
            let mut dx = vec![0.0; n];
            bwd(&rr, &x, &mut dx);
            let mut f = |p: &[f32]| {
                let mut y = p.to_vec();
                fwd(&mut y);
                project(&y, &rr)
            };
            check_grad(name, &x, &dx, &mut f, h, rt, at);
        }
        let (mut dg, mut du) = (vec![0.0; n], vec![0.0; n]);
        silu_mul_backward(&rr, &x, &up, &mut dg, &mut du);
        let sm = |g: &[f32], u: &[f32]| {
            let mut y = vec![0.0; n];
            reference::silu_mul(g, u, &mut y);
            project(&y, &rr)
        };
        check_grad("dgate", &x, &dg, &mut |p| sm(p, &up), h, rt, at);
        check_grad("dup", &up, &du, &mut |p| sm(&x, p), h, rt, at);
    }

    /// The parallel chunked path equals the single-chunk path and
    /// accumulates onto existing values.
    #[test]
    fn chunked_path_accumulates() {
        let mut r = rng(62);
        let n = 3 * TASK_WORK + 17;
        let x: Vec<f32> = uniform(&mut r, n).iter().map(|v| v * 6.0).collect();
        let dy = uniform(&mut r, n);
        let mut a = vec![1.0; n];
        gelu_backward(&dy, &x, &mut a);
        let mut b = vec![1.0; n];
        for s in (0..n).step_by(1000) {
            let e = (s + 1000).min(n);
            gelu_backward(&dy[s..e], &x[s..e], &mut b[s..e]);
        }
        assert_close("chunked", &a, &b, 0.0, 0.0);
        let (mut g1, mut u1) = (vec![0.5; n], vec![0.5; n]);
        silu_mul_backward(&dy, &x, &dy, &mut g1, &mut u1);
        let (mut g2, mut u2) = (vec![0.0; n], vec![0.0; n]);
        silu_mul_backward(&dy[..5], &x[..5], &dy[..5], &mut g2[..5], &mut u2[..5]);
        assert!((g1[0] - 0.5 - g2[0]).abs() < 1e-6 && (u1[4] - 0.5 - u2[4]).abs() < 1e-6);
    }
}
