//! `attention`: softmax(q·kᵀ·scale)·v over a KV cache, causal (decoder, with a
//! start position) or bidirectional (ViT), with grouped-query attention.

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::to_u32;
use crate::error::{ensure, Result};
use crate::kernel::{BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant};

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/attention.wgsl");

/// Largest supported head dimension.
pub const MAX_HEAD_DIM: usize = 256;

/// Uniforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    /// Queries.
    pub n_q: u32,
    /// Valid cache rows (keys).
    pub n_kv: u32,
    /// Query heads.
    pub n_heads: u32,
    /// KV heads (divides n_heads).
    pub n_kv_heads: u32,
    /// Head dimension.
    pub head_dim: u32,
    /// Absolute position of query 0 (causal mode).
    pub pos0: u32,
    /// 1 = causal, 0 = bidirectional.
    pub causal: u32,
    /// Score scale, usually `1 / sqrt(head_dim)`.
    pub scale: f32,
}

/// Binding numbers.
pub mod binding {
    /// Queries `[n_q, n_heads, head_dim]`.
    pub const Q: u32 = 1;
    /// Key cache `[positions, n_kv_heads, head_dim]`.
    pub const K: u32 = 2;
    /// Value cache `[positions, n_kv_heads, head_dim]`.
    pub const V: u32 = 3;
    /// Output `[n_q, n_heads, head_dim]`.
    pub const OUT: u32 = 4;
}

/// Workgroup grid: `[n_heads, n_q, 1]`, one 64-wide workgroup per (head, query).
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    ensure(p.n_heads <= max_per_dim && p.n_q <= max_per_dim, || {
        format!("attention: {} heads x {} queries exceed {max_per_dim}", p.n_heads, p.n_q)
    })?;
    Ok([p.n_heads, p.n_q, 1])
}

/// Masking mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionMask {
    /// Query i (absolute position `pos0 + i`) sees keys `0..=pos0 + i`.
    Causal {
        /// Absolute position of the first query.
        pos0: usize,
    },
    /// Every query sees all `n_kv` keys.
    Bidirectional,
}

/// Arguments of one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionArgs {
    /// Queries.
    pub n_q: usize,
    /// Valid keys in the cache (`pos0 + n_q` after writing the new rows).
    pub n_kv: usize,
    /// Query heads.
    pub n_heads: usize,
    /// KV heads.
    pub n_kv_heads: usize,
    /// Head dimension (<= 256).
    pub head_dim: usize,
    /// Masking.
    pub mask: AttentionMask,
    /// Score scale; `None` = `1 / sqrt(head_dim)`.
    pub scale: Option<f32>,
}

/// A bound attention.
#[derive(Debug)]
pub struct AttentionOp {
    kernel: Kernel,
    lens: [usize; 4],
}

impl AttentionOp {
    /// Binds queries, the K and V caches and the output (must not alias q).
    pub fn new(ctx: &GpuContext, q: BufSlice<'_>, k: BufSlice<'_>, v: BufSlice<'_>, out: BufSlice<'_>) -> Result<Self> {
        let res = [(binding::Q, q), (binding::K, k), (binding::V, v), (binding::OUT, out)];
        Ok(AttentionOp {
            kernel: Kernel::new(ctx, ShaderVariant::new(OpKind::Attention), std::mem::size_of::<Params>(), &res)?,
            lens: [q.len(), k.len(), v.len(), out.len()],
        })
    }

    /// Records attention for `a.n_q` queries.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, a: AttentionArgs) -> Result<()> {
        ensure(a.head_dim <= MAX_HEAD_DIM, || format!("attention: head_dim {} > {MAX_HEAD_DIM}", a.head_dim))?;
        ensure(a.n_kv_heads > 0 && a.n_heads.is_multiple_of(a.n_kv_heads), || {
            format!("attention: {} heads not a multiple of {} kv heads", a.n_heads, a.n_kv_heads)
        })?;
        let q_need = a.n_q * a.n_heads * a.head_dim;
        let kv_need = a.n_kv * a.n_kv_heads * a.head_dim;
        let [ql, kl, vl, ol] = self.lens;
        ensure(q_need <= ql && q_need <= ol && kv_need <= kl && kv_need <= vl, || {
            format!("attention: buffers too small for {a:?}")
        })?;
        let (causal, pos0) = match a.mask {
            AttentionMask::Causal { pos0 } => (1, pos0),
            AttentionMask::Bidirectional => (0, 0),
        };
        let p = Params {
            n_q: to_u32(a.n_q, "n_q")?,
            n_kv: to_u32(a.n_kv, "n_kv")?,
            n_heads: to_u32(a.n_heads, "n_heads")?,
            n_kv_heads: to_u32(a.n_kv_heads, "n_kv_heads")?,
            head_dim: to_u32(a.head_dim, "head_dim")?,
            pos0: to_u32(pos0, "pos0")?,
            causal,
            scale: a.scale.unwrap_or(1.0 / (a.head_dim as f32).sqrt()),
        };
        let groups = workgroups(&p, ctx.limits().max_compute_workgroups_per_dimension)?;
        self.kernel.record(ctx, pass, &p, groups)?;
        Ok(())
    }
}
