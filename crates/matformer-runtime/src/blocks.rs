//! Pieces of a transformer block shared by the CPU LM and ViT executors.

use matformer_cpu::fast;
use matformer_graph::{FfnKind, Layer, TensorRef};

use crate::dispatch::{down_prefix, linear_prefix, with_elems};

/// Grow-only scratch buffer: returns the first `n` elements, allocating only when it must grow.
pub fn grow(buf: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if buf.len() < n {
        buf.resize(n, 0.0);
    }
    &mut buf[..n]
}

/// Buffers of the FFN's hidden activations.
#[derive(Default)]
pub struct FfnScratch {
    up: Vec<f32>,
    gate: Vec<f32>,
    act: Vec<f32>,
}

/// FFN over the first `width` neurons: `h` (normed input, `[n, d]`) is overwritten with the FFN output.
pub fn ffn_forward(kind: FfnKind, layer: &Layer, width: usize, h: &mut [f32], n: usize, s: &mut FfnScratch) {
    let d = layer.down_t.shape[1];
    let up = grow(&mut s.up, n * width);
    linear_prefix(h, &layer.up, width, up, n, d);
    let act = grow(&mut s.act, n * width);
    match kind {
        FfnKind::SwiGlu => {
            let gate = grow(&mut s.gate, n * width);
            let g = layer.gate.as_ref().expect("SwiGLU layer has a gate");
            with_elems!(g.prefix_rows(width), |gw| fast::matmul_nt(h, gw, None, gate, n, d, width));
            fast::silu_mul(gate, up, act);
        }
        FfnKind::Gelu => {
            act.copy_from_slice(up);
            fast::gelu(act);
        }
        FfnKind::GeluTanh => {
            act.copy_from_slice(up);
            fast::gelu_tanh(act);
        }
    }
    down_prefix(act, &layer.down_t, layer.down_bias.as_ref(), width, h, n);
}
