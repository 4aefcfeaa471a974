//! MatViT forward on the CPU: logits and pooled embeddings for a batch of images.

use matformer_cpu::fast;
use matformer_graph::{Embeddings, Family, ModelWeights, Submodel, TensorRef};

use crate::blocks::{ffn_forward, grow, FfnScratch};
use crate::dispatch::{linear, norm, with_elems};
use crate::error::{Result, RuntimeError};

/// What a ViT returns for a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct VitOutput {
    /// Class logits `[batch, n_classes]`.
    pub logits: Vec<f32>,
    /// Pooled embeddings `[batch, d_model]`: the final-normed class token, for retrieval.
    pub pooled: Vec<f32>,
}

/// Run a MatViT on `images` (`[batch, channels, H, W]`, f32, already normalized) with submodel `sub`.
pub fn vit_forward(w: &ModelWeights, sub: &Submodel, images: &[f32], batch: usize) -> Result<VitOutput> {
    let cfg = &w.config;
    let Family::Vit { image_size, patch_size, channels, n_classes } = cfg.family else {
        return Err(RuntimeError::WrongFamily { expected: "MatViT", actual: "MatLM" });
    };
    sub.validate(cfg)?;
    let per_image = channels * image_size * image_size;
    if batch == 0 || images.len() != batch * per_image {
        return Err(RuntimeError::InvalidInput(format!(
            "expected {batch} images of {channels}x{image_size}x{image_size} = {} floats, got {}",
            batch * per_image,
            images.len()
        )));
    }
    let Embeddings::Vit { patch, cls, positions } = &w.embed else { unreachable!("ViT family has ViT embeddings") };
    let (d, hd) = (cfg.d_model, cfg.head_dim());
    let side = image_size / patch_size;
    let n_patch = side * side;
    let seq = n_patch + 1;
    let pdim = channels * patch_size * patch_size;
    let mut logits = vec![0.0; batch * n_classes];
    let mut pooled = vec![0.0; batch * d];
    let (mut patches, mut x, mut h, mut q, mut k, mut v, mut att) = Default::default();
    let mut ffn = FfnScratch::default();
    let cls = cls.to_f32_vec(); // widened once, not per image
    for b in 0..batch {
        let img = &images[b * per_image..(b + 1) * per_image];
        // Flatten patches channel-major (c, y, x), matching a PyTorch Conv2d weight reshaped to [d, c*p*p].
        let pt = grow(&mut patches, n_patch * pdim);
        for (pi, row) in pt.chunks_exact_mut(pdim).enumerate() {
            let (py, px) = (pi / side, pi % side);
            for c in 0..channels {
                for y in 0..patch_size {
                    let src = c * image_size * image_size + (py * patch_size + y) * image_size + px * patch_size;
                    let dst = c * patch_size * patch_size + y * patch_size;
                    row[dst..dst + patch_size].copy_from_slice(&img[src..src + patch_size]);
                }
            }
        }
        let xs: &mut [f32] = grow(&mut x, seq * d);
        linear(pt, patch, &mut xs[d..], n_patch, pdim);
        xs[..d].copy_from_slice(&cls);
        with_elems!(positions.as_ref(), |p| fast::add_bias(xs, p, 1, seq * d));
        for l in sub.active_layers() {
            let layer = &w.layers[l];
            let hs = grow(&mut h, seq * d);
            norm(cfg.norm, &layer.attn_norm, xs, hs, seq, d, cfg.norm_eps);
            let (qs, ks, vs) = (grow(&mut q, seq * d), grow(&mut k, seq * d), grow(&mut v, seq * d));
            linear(hs, &layer.q, qs, seq, d);
            linear(hs, &layer.k, ks, seq, d);
            linear(hs, &layer.v, vs, seq, d);
            let a = grow(&mut att, seq * d);
            fast::attention(qs, ks, vs, a, seq, seq, cfg.n_heads, cfg.n_heads, hd, None);
            linear(a, &layer.o, hs, seq, d);
            fast::add_inplace(xs, hs);
            norm(cfg.norm, &layer.ffn_norm, xs, hs, seq, d, cfg.norm_eps);
            ffn_forward(cfg.ffn, layer, sub.widths[l], hs, seq, &mut ffn);
            fast::add_inplace(xs, hs);
        }
        let pool = &mut pooled[b * d..(b + 1) * d];
        norm(cfg.norm, &w.final_norm, &xs[..d], pool, 1, d, cfg.norm_eps);
        let head = w.head.as_ref().expect("a ViT has a head");
        linear(pool, head, &mut logits[b * n_classes..(b + 1) * n_classes], 1, d);
    }
    Ok(VitOutput { logits, pooled })
}
