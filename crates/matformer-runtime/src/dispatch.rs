//! Bridges typed tensors (f32/f16/bf16) to the generic CPU kernels.

use matformer_cpu::fast;
use matformer_graph::{Linear, Norm, NormKind, Tensor, TensorRef};

/// Run `$body` with `$w` bound to the typed slice inside a [`TensorRef`].
macro_rules! with_elems {
    ($t:expr, |$w:ident| $body:expr) => {
        match $t {
            TensorRef::F32($w) => $body,
            TensorRef::F16($w) => $body,
            TensorRef::Bf16($w) => $body,
        }
    };
}
pub(crate) use with_elems;

/// y[n, rows] = x[n, k] · W[:rows]ᵀ + bias[:rows], using only the first `rows` output rows of `lin`.
pub fn linear_prefix(x: &[f32], lin: &Linear, rows: usize, y: &mut [f32], n: usize, k: usize) {
    with_elems!(lin.weight.prefix_rows(rows), |w| fast::matmul_nt(x, w, None, y, n, k, rows));
    if let Some(b) = &lin.bias {
        with_elems!(b.prefix_rows(rows), |b| fast::add_bias(y, b, n, rows));
    }
}

/// y = x · W + bias for a full linear layer.
pub fn linear(x: &[f32], lin: &Linear, y: &mut [f32], n: usize, k: usize) {
    linear_prefix(x, lin, lin.weight.shape[0], y, n, k)
}

/// y[n, d] = h[n, width] · down_t[:width] (+ bias): the FFN output with neuron-major storage.
pub fn down_prefix(h: &[f32], down_t: &Tensor, bias: Option<&Tensor>, width: usize, y: &mut [f32], n: usize) {
    let d = down_t.shape[1];
    with_elems!(down_t.prefix_rows(width), |w| fast::matmul_nn(h, w, None, y, n, width, d));
    if let Some(b) = bias {
        with_elems!(b.as_ref(), |b| fast::add_bias(y, b, n, d));
    }
}

/// Apply LayerNorm or RMSNorm.
pub fn norm(kind: NormKind, p: &Norm, x: &[f32], y: &mut [f32], n: usize, d: usize, eps: f32) {
    match kind {
        NormKind::LayerNorm => {
            // gamma and beta may differ in dtype (imported files), so the shift is a separate bias add.
            with_elems!(p.weight.as_ref(), |g| fast::layernorm(x, g, None, y, n, d, eps));
            if let Some(b) = &p.bias {
                with_elems!(b.as_ref(), |b| fast::add_bias(y, b, n, d));
            }
        }
        NormKind::RmsNorm => with_elems!(p.weight.as_ref(), |g| fast::rmsnorm(x, g, y, n, d, eps)),
    }
}
