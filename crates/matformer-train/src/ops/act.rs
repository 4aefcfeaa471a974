//! FFN activations (exact GELU, tanh GELU, SwiGLU) and their backward passes.

use rayon::prelude::*;

use super::ELEM_CHUNK;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_C: f32 = 0.044_715;
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// Which activation an FFN applies between its input and output projections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `0.5·x·(1 + erf(x/√2))`.
    Gelu,
    /// `0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))`.
    GeluTanh,
}

fn gelu(x: f32) -> f32 {
    0.5 * x * libm::erfcf(-x * std::f32::consts::FRAC_1_SQRT_2)
}

fn gelu_grad(x: f32) -> f32 {
    0.5 * libm::erfcf(-x * std::f32::consts::FRAC_1_SQRT_2) + x * INV_SQRT_2PI * (-0.5 * x * x).exp()
}

fn gelu_tanh(x: f32) -> f32 {
    let u = SQRT_2_OVER_PI * (x + GELU_C * x * x * x);
    x / (1.0 + (-2.0 * u).exp())
}

fn gelu_tanh_grad(x: f32) -> f32 {
    let u = SQRT_2_OVER_PI * (x + GELU_C * x * x * x);
    let t = u.tanh();
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `out = act(x)`.
pub fn act_forward(kind: Activation, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "act_forward: lengths differ");
    let f = match kind {
        Activation::Gelu => gelu,
        Activation::GeluTanh => gelu_tanh,
    };
    out.par_chunks_mut(ELEM_CHUNK).zip(x.par_chunks(ELEM_CHUNK)).for_each(|(o, x)| {
        for (o, &x) in o.iter_mut().zip(x) {
            *o = f(x);
        }
    });
}

/// `dx += dout · act'(x)`.
pub fn act_backward(kind: Activation, dout: &[f32], x: &[f32], dx: &mut [f32]) {
    assert!(dout.len() == x.len() && dx.len() == x.len(), "act_backward: lengths differ");
    let g = match kind {
        Activation::Gelu => gelu_grad,
        Activation::GeluTanh => gelu_tanh_grad,
    };
    dx.par_chunks_mut(ELEM_CHUNK).zip(x.par_chunks(ELEM_CHUNK)).zip(dout.par_chunks(ELEM_CHUNK)).for_each(
        |((dx, x), dout)| {
            for ((d, &x), &o) in dx.iter_mut().zip(x).zip(dout) {
                *d += o * g(x);
            }
        },
    );
}

/// SwiGLU: `out = silu(gate) · up`.
pub fn swiglu_forward(gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(gate.len() == up.len() && out.len() == up.len(), "swiglu_forward: lengths differ");
    out.par_chunks_mut(ELEM_CHUNK).zip(gate.par_chunks(ELEM_CHUNK)).zip(up.par_chunks(ELEM_CHUNK)).for_each(
        |((o, g), u)| {
            for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                *o = g * sigmoid(g) * u;
            }
        },
    );
}

/// Backward of [`swiglu_forward`]: `dgate += dout·up·silu'(gate)`, `dup += dout·silu(gate)`.
pub fn swiglu_backward(dout: &[f32], gate: &[f32], up: &[f32], dgate: &mut [f32], dup: &mut [f32]) {
    let n = dout.len();
    assert!(gate.len() == n && up.len() == n && dgate.len() == n && dup.len() == n, "swiglu_backward: lengths differ");
    dgate.par_chunks_mut(ELEM_CHUNK).zip(dup.par_chunks_mut(ELEM_CHUNK)).enumerate().for_each(|(c, (dg, du))| {
        let o = c * ELEM_CHUNK;
        for i in 0..dg.len() {
            let (g, u, d) = (gate[o + i], up[o + i], dout[o + i]);
            let s = sigmoid(g);
            dg[i] += d * u * s * (1.0 + g * (1.0 - s));
            du[i] += d * g * s;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        for &x in &[-3.0f32, -1.2, -0.3, 0.0, 0.4, 1.7, 3.5] {
            let h = 1e-3;
            let fd = |f: fn(f32) -> f32| (f(x + h) as f64 - f(x - h) as f64) / (2.0 * h as f64);
            assert!((fd(gelu) - gelu_grad(x) as f64).abs() < 2e-3, "gelu at {x}");
            assert!((fd(gelu_tanh) - gelu_tanh_grad(x) as f64).abs() < 2e-3, "gelu_tanh at {x}");
            let (mut dg, mut du) = ([0.0f32], [0.0f32]);
            swiglu_backward(&[1.0], &[x], &[0.7], &mut dg, &mut du);
            let silu = |g: f32| g * sigmoid(g) * 0.7;
            let fdg = (silu(x + h) as f64 - silu(x - h) as f64) / (2.0 * h as f64);
            assert!((fdg - dg[0] as f64).abs() < 2e-3, "swiglu gate at {x}");
            assert!((du[0] - x * sigmoid(x)).abs() < 1e-6);
        }
    }
}
