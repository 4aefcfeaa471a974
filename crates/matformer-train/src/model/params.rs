//! Helpers over f32 [`ModelWeights`]: typed slices, gradient containers of the same shape, and
//! mutable iteration over every tensor in canonical order.

use matformer_graph::{DType, Embeddings, ModelWeights, Tensor};

/// The f32 elements of a training tensor.
pub fn fs(t: &Tensor) -> &[f32] {
    t.f32_slice().expect("training tensors are f32")
}

/// The mutable f32 elements of a training tensor.
pub fn fsm(t: &mut Tensor) -> &mut [f32] {
    t.f32_slice_mut().expect("training tensors are f32")
}

/// An optional bias as f32.
pub fn ob(t: &Option<Tensor>) -> Option<&[f32]> {
    t.as_ref().map(fs)
}

/// An optional bias as mutable f32.
pub fn obm(t: &mut Option<Tensor>) -> Option<&mut [f32]> {
    t.as_mut().map(fsm)
}

/// Every tensor of `w`, mutably, in the order of [`ModelWeights::named_tensors`].
pub fn tensors_mut(w: &mut ModelWeights) -> Vec<&mut Tensor> {
    let mut out: Vec<&mut Tensor> = Vec::new();
    match &mut w.embed {
        Embeddings::Lm { tokens, positions } => {
            out.push(tokens);
            if let Some(p) = positions {
                out.push(p);
            }
        }
        Embeddings::Vit { patch, cls, positions } => {
            out.push(&mut patch.weight);
            if let Some(b) = &mut patch.bias {
                out.push(b);
            }
            out.push(cls);
            out.push(positions);
        }
    }
    for l in &mut w.layers {
        out.push(&mut l.attn_norm.weight);
        if let Some(b) = &mut l.attn_norm.bias {
            out.push(b);
        }
        for lin in [&mut l.q, &mut l.k, &mut l.v, &mut l.o] {
            out.push(&mut lin.weight);
            if let Some(b) = &mut lin.bias {
                out.push(b);
            }
        }
        out.push(&mut l.ffn_norm.weight);
        if let Some(b) = &mut l.ffn_norm.bias {
            out.push(b);
        }
        out.push(&mut l.up.weight);
        if let Some(b) = &mut l.up.bias {
            out.push(b);
        }
        if let Some(g) = &mut l.gate {
            out.push(g);
        }
        out.push(&mut l.down_t);
        if let Some(b) = &mut l.down_bias {
            out.push(b);
        }
    }
    out.push(&mut w.final_norm.weight);
    if let Some(b) = &mut w.final_norm.bias {
        out.push(b);
    }
    if let Some(h) = &mut w.head {
        out.push(&mut h.weight);
        if let Some(b) = &mut h.bias {
            out.push(b);
        }
    }
    out
}

/// An all-zero f32 copy of `w` (a gradient or optimizer-moment container).
pub fn zeros_like(w: &ModelWeights) -> ModelWeights {
    let mut z = w.to_dtype(DType::F32);
    zero(&mut z);
    z
}

/// Set every element to zero.
pub fn zero(w: &mut ModelWeights) {
    for t in tensors_mut(w) {
        fsm(t).fill(0.0);
    }
}

/// Whether AdamW applies weight decay to the tensor called `name`: matrices of linear layers (attention,
/// FFN, patch projection, untied head) decay; embeddings, positions, the class token, norms and biases do not.
pub fn decays(name: &str) -> bool {
    name.ends_with(".weight")
        && !name.contains("norm")
        && !name.starts_with("tok_embed")
        && !name.starts_with("pos_embed")
}
