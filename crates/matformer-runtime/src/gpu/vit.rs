//! [`GpuVit`]: a MatViT on wgpu (logits and pooled embeddings), the GPU twin of [`crate::vit_forward`].

use std::sync::Arc;

use matformer_graph::{Embeddings, Family, ModelConfig, ModelWeights, Submodel};
use matformer_kernels::wgpu;
use matformer_kernels::{AddOp, AttentionArgs, AttentionMask, AttentionOp, GpuContext, Result as KResult};

use super::common::{
    activation, f32s, s, submit_and_read, Acts, BlockOps, Dims, LayerWeights, LinWeights, LinearOps, NormOp,
    NormWeights, Rec,
};
use crate::cpu_vit::VitOutput;
use crate::error::{Result, RuntimeError};

/// Images per submission: their patches are uploaded together and embedded by one matrix product, then
/// each image runs the blocks in turn inside the same command encoder.
pub const VIT_GROUP: usize = 16;

/// Every op instance of the ViT, built once.
struct VitOps {
    /// `[group * n_patch, pdim] -> [group * n_patch, d]` patch projection (+ bias).
    patch: LinearOps,
    /// `x += positions` (f32 copy of the position table).
    pos_add: AddOp,
    /// `x += h`.
    add: AddOp,
    layers: Vec<(BlockOps, AttentionOp)>,
    /// Final norm of the class token (row 0) into `pooled`.
    final_norm: NormOp,
    /// `logits = pooled·Wᵀ + b`.
    head: LinearOps,
}

/// A MatViT on a wgpu device. Weights are uploaded once in their stored dtype, buffers and ops are built
/// once; [`GpuVit::forward`] takes the submodel per call (switching costs nothing but uniforms) and reads
/// back only the logits and pooled embeddings.
pub struct GpuVit {
    ctx: Arc<GpuContext>,
    cfg: ModelConfig,
    dims: Dims,
    image_size: usize,
    patch_size: usize,
    channels: usize,
    n_classes: usize,
    n_patch: usize,
    pdim: usize,
    acts: Acts,
    cls: wgpu::Buffer,
    patches: wgpu::Buffer,
    pe: wgpu::Buffer,
    pooled: wgpu::Buffer,
    logits: wgpu::Buffer,
    out: wgpu::Buffer,
    ops: VitOps,
    scratch: Vec<f32>,
    _weights: (LinWeights, Vec<LayerWeights>, NormWeights, LinWeights, wgpu::Buffer),
}

impl GpuVit {
    /// Uploads a MatViT's weights and builds every buffer and op.
    pub fn new(ctx: Arc<GpuContext>, w: &ModelWeights) -> Result<Self> {
        let cfg = w.config.clone();
        let Family::Vit { image_size, patch_size, channels, n_classes } = cfg.family else {
            return Err(RuntimeError::WrongFamily { expected: "MatViT", actual: "MatLM" });
        };
        let Embeddings::Vit { patch, cls, positions } = &w.embed else {
            return Err(RuntimeError::InvalidInput("a ViT config with LM embeddings".into()));
        };
        let head = w.head.as_ref().ok_or_else(|| RuntimeError::InvalidInput("a ViT needs a head".into()))?;
        let dims = Dims::of(&cfg);
        if dims.hd > matformer_kernels::ops::attention::MAX_HEAD_DIM {
            return Err(RuntimeError::Gpu(format!("head_dim {} is above the attention kernel's maximum", dims.hd)));
        }
        let side = image_size / patch_size;
        let n_patch = side * side;
        let seq = n_patch + 1;
        let pdim = channels * patch_size * patch_size;
        let d = dims.d;
        let c = &*ctx;

        let patch_w = LinWeights::upload(c, "patch_embed", patch)?;
        let layers: Vec<LayerWeights> =
            w.layers.iter().enumerate().map(|(i, l)| LayerWeights::upload(c, i, l)).collect::<KResult<_>>()?;
        let final_norm = NormWeights::upload(c, "final_norm", &w.final_norm)?;
        let head_w = LinWeights::upload(c, "head", head)?;
        // The class token and the positions are added in f32 on the CPU too (widening is exact).
        let cls_f32 = c.upload_f32("cls_token", &cls.to_f32_vec())?;
        let pos_f32 = c.upload_f32("pos_embed", &positions.to_f32_vec())?;

        let acts = Acts::new(c, seq, &dims)?;
        let patches = activation(c, "patches", VIT_GROUP * n_patch * pdim)?;
        let pe = activation(c, "patch embeddings", VIT_GROUP * n_patch * d)?;
        let pooled = activation(c, "pooled", d)?;
        let logits = activation(c, "class logits", n_classes)?;
        let out = activation(c, "vit out", VIT_GROUP * (n_classes + d))?;

        let layer_ops = layers
            .iter()
            .map(|lw| {
                Ok((
                    BlockOps::new(c, &dims, lw, &acts)?,
                    AttentionOp::new(c, s(&acts.q), s(&acts.k), s(&acts.v), s(&acts.att))?,
                ))
            })
            .collect::<KResult<_>>()?;
        let ops = VitOps {
            patch: LinearOps::nt(c, s(&patches), &patch_w.w, patch_w.b.as_ref(), s(&pe))?,
            pos_add: AddOp::new(c, s(&acts.x), s(&pos_f32))?,
            add: AddOp::new(c, s(&acts.x), s(&acts.h))?,
            layers: layer_ops,
            final_norm: NormOp::new(c, dims.norm, s(&acts.x), &final_norm, s(&pooled))?,
            head: LinearOps::nt(c, s(&pooled), &head_w.w, head_w.b.as_ref(), s(&logits))?,
        };
        ctx.check()?;
        Ok(GpuVit {
            ctx,
            cfg,
            dims,
            image_size,
            patch_size,
            channels,
            n_classes,
            n_patch,
            pdim,
            acts,
            cls: cls_f32,
            patches,
            pe,
            pooled,
            logits,
            out,
            ops,
            scratch: Vec::new(),
            _weights: (patch_w, layers, final_norm, head_w, pos_f32),
        })
    }

    /// The model's config.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The device context.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Runs `images` (`[batch, channels, H, W]`, f32, normalized) with submodel `sub`; same contract and
    /// result as [`crate::vit_forward`].
    pub fn forward(&mut self, sub: &Submodel, images: &[f32], batch: usize) -> Result<VitOutput> {
        sub.validate(&self.cfg)?;
        let (c, is) = (self.channels, self.image_size);
        let per_image = c * is * is;
        if batch == 0 || images.len() != batch * per_image {
            return Err(RuntimeError::InvalidInput(format!(
                "expected {batch} images of {c}x{is}x{is} = {} floats, got {}",
                batch * per_image,
                images.len()
            )));
        }
        let (nc, d) = (self.n_classes, self.dims.d);
        let mut logits = Vec::with_capacity(batch * nc);
        let mut pooled = Vec::with_capacity(batch * d);
        for start in (0..batch).step_by(VIT_GROUP) {
            let g = (batch - start).min(VIT_GROUP);
            let out = self.run_group(sub, &images[start * per_image..(start + g) * per_image], g).map_err(|e| {
                self.ctx.discard_recording();
                RuntimeError::from(e)
            })?;
            logits.extend_from_slice(&out[..g * nc]);
            pooled.extend_from_slice(&out[VIT_GROUP * nc..VIT_GROUP * nc + g * d]);
        }
        Ok(VitOutput { logits, pooled })
    }

    /// Flattens patches channel-major (c, y, x) like a PyTorch conv weight reshaped to `[d, c*p*p]`.
    fn im2col(&mut self, images: &[f32], g: usize) {
        let (is, ps, pdim) = (self.image_size, self.patch_size, self.pdim);
        let side = is / ps;
        let per_image = self.channels * is * is;
        self.scratch.clear();
        self.scratch.resize(g * self.n_patch * pdim, 0.0);
        for b in 0..g {
            let img = &images[b * per_image..(b + 1) * per_image];
            let rows = &mut self.scratch[b * self.n_patch * pdim..(b + 1) * self.n_patch * pdim];
            for (pi, row) in rows.chunks_exact_mut(pdim).enumerate() {
                let (py, px) = (pi / side, pi % side);
                for ch in 0..self.channels {
                    for y in 0..ps {
                        let src = ch * is * is + (py * ps + y) * is + px * ps;
                        let dst = ch * ps * ps + y * ps;
                        row[dst..dst + ps].copy_from_slice(&img[src..src + ps]);
                    }
                }
            }
        }
    }

    /// One submission for `g <= VIT_GROUP` images; returns the `out` buffer (`[VIT_GROUP, n_classes]`
    /// logits, then `[VIT_GROUP, d]` pooled).
    fn run_group(&mut self, sub: &Submodel, images: &[f32], g: usize) -> KResult<Vec<f32>> {
        self.im2col(images, g);
        let ctx = &*self.ctx;
        ctx.write_f32(&self.patches, 0, &self.scratch)?;
        let (d, nc, np, dims) = (self.dims.d, self.n_classes, self.n_patch, self.dims);
        let seq = np + 1;
        let ops = &self.ops;
        let mut enc = ctx.encoder("matformer vit");
        {
            let mut pass = begin(&mut enc);
            ops.patch.record(ctx, &mut pass, g * np, self.pdim, d)?;
        }
        let f = 4u64;
        for i in 0..g {
            // x = [cls; patch embeddings of image i]
            enc.copy_buffer_to_buffer(&self.cls, 0, &self.acts.x, 0, d as u64 * f);
            enc.copy_buffer_to_buffer(
                &self.pe,
                (i * np * d) as u64 * f,
                &self.acts.x,
                d as u64 * f,
                (np * d) as u64 * f,
            );
            {
                let mut pass = begin(&mut enc);
                let mut r = Rec { ctx, pass: &mut pass, prof: None };
                r.op("pos", |c, p| ops.pos_add.record(c, p, seq * d))?;
                for l in sub.active_layers() {
                    let (block, attn) = &ops.layers[l];
                    block.record_qkv(&mut r, &dims, seq, true)?;
                    let args = AttentionArgs {
                        n_q: seq,
                        n_kv: seq,
                        n_heads: dims.n_heads,
                        n_kv_heads: dims.n_kv_heads,
                        head_dim: dims.hd,
                        mask: AttentionMask::Bidirectional,
                        scale: None,
                    };
                    r.op("attn.core", |c, p| attn.record(c, p, args))?;
                    block.record_out_and_ffn(&mut r, &dims, &ops.add, seq, sub.widths[l])?;
                }
                r.op("final_norm", |c, p| ops.final_norm.record(c, p, 1, dims.eps))?;
                r.op("head", |c, p| ops.head.record(c, p, 1, d, nc))?;
            }
            enc.copy_buffer_to_buffer(&self.logits, 0, &self.out, (i * nc) as u64 * f, nc as u64 * f);
            enc.copy_buffer_to_buffer(&self.pooled, 0, &self.out, (VIT_GROUP * nc + i * d) as u64 * f, d as u64 * f);
        }
        let bytes = submit_and_read(ctx, enc, &self.out, 0, self.out.size())?;
        Ok(f32s(&bytes))
    }
}

fn begin(enc: &mut wgpu::CommandEncoder) -> wgpu::ComputePass<'_> {
    enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("matformer vit"), timestamp_writes: None })
}

/// Runs a MatViT on the GPU of `ctx`: uploads the weights, runs [`GpuVit::forward`] and drops them again.
/// Build a [`GpuVit`] once instead when running several batches.
pub fn gpu_vit_forward(
    ctx: &Arc<GpuContext>,
    w: &ModelWeights,
    sub: &Submodel,
    images: &[f32],
    batch: usize,
) -> Result<VitOutput> {
    GpuVit::new(ctx.clone(), w)?.forward(sub, images, batch)
}
