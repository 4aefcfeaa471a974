//! `softmax`: row-wise softmax in place over `x[n, d]`.

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::{fold, to_u32};
use crate::error::{ensure, Result};
use crate::kernel::{BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant};

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/softmax.wgsl");

/// Uniforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    /// Rows.
    pub n: u32,
    /// Row length.
    pub d: u32,
    /// Padding.
    pub _pad: [u32; 2],
}

/// Binding numbers.
pub mod binding {
    /// `[n, d]` f32, in place.
    pub const X: u32 = 1;
}

/// Workgroup grid: one 256-wide workgroup per row, folded.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    fold(p.n as u64, max_per_dim)
}

/// A bound in-place softmax.
#[derive(Debug)]
pub struct SoftmaxOp {
    kernel: Kernel,
    x_len: usize,
}

impl SoftmaxOp {
    /// Binds `x`.
    pub fn new(ctx: &GpuContext, x: BufSlice<'_>) -> Result<Self> {
        Ok(SoftmaxOp {
            kernel: Kernel::new(
                ctx,
                ShaderVariant::new(OpKind::Softmax),
                std::mem::size_of::<Params>(),
                &[(binding::X, x)],
            )?,
            x_len: x.len(),
        })
    }

    /// Records the softmax of `n` rows of length `d`.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, n: usize, d: usize) -> Result<()> {
        ensure(n * d <= self.x_len, || format!("softmax: x holds {}, needs {}", self.x_len, n * d))?;
        let p = Params { n: to_u32(n, "n")?, d: to_u32(d, "d")?, _pad: [0; 2] };
        let groups = workgroups(&p, ctx.limits().max_compute_workgroups_per_dimension)?;
        self.kernel.record(ctx, pass, &p, groups)?;
        Ok(())
    }
}
