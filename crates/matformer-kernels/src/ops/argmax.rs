//! `argmax`: per-row index of the maximum (first on ties, NaN ignored) as u32.

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::{fold, to_u32};
use crate::error::{ensure, Result};
use crate::kernel::{BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant};

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/argmax.wgsl");

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
    /// `[n, d]` f32 (read).
    pub const X: u32 = 1;
    /// `[n]` u32 results.
    pub const OUT: u32 = 2;
}

/// Workgroup grid: one 256-wide workgroup per row, folded.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    fold(p.n as u64, max_per_dim)
}

/// A bound argmax.
#[derive(Debug)]
pub struct ArgmaxOp {
    kernel: Kernel,
    x_len: usize,
    out_len: usize,
}

impl ArgmaxOp {
    /// Binds the rows `x` and the u32 output.
    pub fn new(ctx: &GpuContext, x: BufSlice<'_>, out: BufSlice<'_>) -> Result<Self> {
        Ok(ArgmaxOp {
            kernel: Kernel::new(
                ctx,
                ShaderVariant::new(OpKind::Argmax),
                std::mem::size_of::<Params>(),
                &[(binding::X, x), (binding::OUT, out)],
            )?,
            x_len: x.len(),
            out_len: out.len(),
        })
    }

    /// Records `out[r] = argmax(x[r, 0..d])` for `r < n`.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, n: usize, d: usize) -> Result<()> {
        ensure(n * d <= self.x_len && n <= self.out_len, || {
            format!("argmax: [{n}, {d}] does not fit x ({}) / out ({})", self.x_len, self.out_len)
        })?;
        let p = Params { n: to_u32(n, "n")?, d: to_u32(d, "d")?, _pad: [0; 2] };
        let groups = workgroups(&p, ctx.limits().max_compute_workgroups_per_dimension)?;
        self.kernel.record(ctx, pass, &p, groups)?;
        Ok(())
    }
}
