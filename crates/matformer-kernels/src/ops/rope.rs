//! `rope`: rotary position embedding in place, HF Llama `rotate_half`
//! convention; token i of the call has position `pos0 + i`.

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::{elementwise, to_u32};
use crate::error::{ensure, Result};
use crate::kernel::{BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant};

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/rope.wgsl");

/// Uniforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    /// Tokens.
    pub n_tokens: u32,
    /// Heads per token.
    pub n_heads: u32,
    /// Head dimension (even).
    pub head_dim: u32,
    /// Position of the first token.
    pub pos0: u32,
    /// RoPE base (10000 for Llama 2, 500000 for Llama 3, ...).
    pub theta: f32,
    /// Padding.
    pub _pad: [u32; 3],
}

/// Binding numbers.
pub mod binding {
    /// `[n_tokens, n_heads, head_dim]` f32, rotated in place.
    pub const X: u32 = 1;
}

/// Workgroup grid: one invocation per rotated pair, 256 per workgroup.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    let pairs = p.n_tokens as u64 * p.n_heads as u64 * (p.head_dim / 2) as u64;
    elementwise(pairs, 256, max_per_dim)
}

/// Arguments of one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeArgs {
    /// Tokens.
    pub n_tokens: usize,
    /// Heads per token (query heads for q, kv heads for k).
    pub n_heads: usize,
    /// Head dimension (even).
    pub head_dim: usize,
    /// Absolute position of the first token.
    pub pos0: usize,
    /// RoPE base.
    pub theta: f32,
}

/// A bound in-place RoPE.
#[derive(Debug)]
pub struct RopeOp {
    kernel: Kernel,
    x_len: usize,
}

impl RopeOp {
    /// Binds `x`.
    pub fn new(ctx: &GpuContext, x: BufSlice<'_>) -> Result<Self> {
        Ok(RopeOp {
            kernel: Kernel::new(
                ctx,
                ShaderVariant::new(OpKind::Rope),
                std::mem::size_of::<Params>(),
                &[(binding::X, x)],
            )?,
            x_len: x.len(),
        })
    }

    /// Records the rotation.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, a: RopeArgs) -> Result<()> {
        ensure(a.head_dim.is_multiple_of(2), || format!("rope: head_dim {} is odd", a.head_dim))?;
        let need = a.n_tokens * a.n_heads * a.head_dim;
        ensure(need <= self.x_len, || format!("rope: x holds {}, needs {need}", self.x_len))?;
        let p = Params {
            n_tokens: to_u32(a.n_tokens, "n_tokens")?,
            n_heads: to_u32(a.n_heads, "n_heads")?,
            head_dim: to_u32(a.head_dim, "head_dim")?,
            pos0: to_u32(a.pos0, "pos0")?,
            theta: a.theta,
            _pad: [0; 3],
        };
        let groups = workgroups(&p, ctx.limits().max_compute_workgroups_per_dimension)?;
        self.kernel.record(ctx, pass, &p, groups)?;
        Ok(())
    }
}
