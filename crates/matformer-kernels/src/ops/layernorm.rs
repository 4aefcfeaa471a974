//! `layernorm`: `y = (x - mean) / sqrt(var + eps) * gamma (+ beta)` per row.

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::{fold, to_u32};
use crate::error::{ensure, Result};
use crate::kernel::{check_vector, BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant, FLAG_BETA};
use crate::weight::WeightBuffer;

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/layernorm.wgsl");

/// Uniforms (shared with rmsnorm).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    /// Rows.
    pub n: u32,
    /// Row length.
    pub d: u32,
    /// Epsilon added to the variance.
    pub eps: f32,
    /// Padding.
    pub _pad: u32,
}

/// Binding numbers.
pub mod binding {
    /// Input (f32, read).
    pub const X: u32 = 1;
    /// Output (f32).
    pub const Y: u32 = 2;
    /// Gain (weight type).
    pub const GAMMA: u32 = 3;
    /// Optional shift (weight type).
    pub const BETA: u32 = 4;
}

/// Workgroup grid: one 256-wide workgroup per row, folded.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    fold(p.n as u64, max_per_dim)
}

/// Arguments of one call (also used by rmsnorm).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormArgs {
    /// Rows.
    pub n: usize,
    /// Epsilon.
    pub eps: f32,
}

/// A bound layernorm over rows of length `gamma.len()`.
#[derive(Debug)]
pub struct LayerNormOp {
    kernel: Kernel,
    d: u32,
    x_len: usize,
    y_len: usize,
}

impl LayerNormOp {
    /// Binds `x`, `gamma`, optional `beta` (same load path) and `y` (must not alias x).
    pub fn new(
        ctx: &GpuContext,
        x: BufSlice<'_>,
        gamma: &WeightBuffer,
        beta: Option<&WeightBuffer>,
        y: BufSlice<'_>,
    ) -> Result<Self> {
        let d = gamma.len();
        check_vector("gamma", gamma, gamma.load(), d)?;
        let mut res = vec![(binding::X, x), (binding::Y, y), (binding::GAMMA, BufSlice::from(&gamma.buffers()[0]))];
        if let Some(b) = beta {
            check_vector("beta", b, gamma.load(), d)?;
            res.push((binding::BETA, BufSlice::from(&b.buffers()[0])));
        }
        let variant = ShaderVariant::new(OpKind::LayerNorm).with_load(gamma.load()).with_flags(if beta.is_some() {
            FLAG_BETA
        } else {
            0
        });
        Ok(LayerNormOp {
            kernel: Kernel::new(ctx, variant, std::mem::size_of::<Params>(), &res)?,
            d: to_u32(d, "d")?,
            x_len: x.len(),
            y_len: y.len(),
        })
    }

    /// Records the normalisation of `args.n` rows.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, args: NormArgs) -> Result<()> {
        let need = args.n * self.d as usize;
        ensure(need <= self.x_len && need <= self.y_len, || {
            format!("layernorm: {need} elements needed, x has {}, y has {}", self.x_len, self.y_len)
        })?;
        let p = Params { n: to_u32(args.n, "n")?, d: self.d, eps: args.eps, _pad: 0 };
        let groups = workgroups(&p, ctx.limits().max_compute_workgroups_per_dimension)?;
        self.kernel.record(ctx, pass, &p, groups)?;
        Ok(())
    }
}
