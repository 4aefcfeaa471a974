//! `bias_add`: `y[r, c] += bias[c]` in place; bias has the weight type.

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::{elementwise, to_u32};
use crate::error::{ensure, Result};
use crate::kernel::{check_vector, BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant};
use crate::weight::WeightBuffer;

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/bias_add.wgsl");

/// Uniforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    /// Rows.
    pub n: u32,
    /// Row length (bias length used).
    pub m: u32,
    /// Padding.
    pub _pad: [u32; 2],
}

/// Binding numbers.
pub mod binding {
    /// `[n, m]` f32, in place.
    pub const Y: u32 = 1;
    /// Bias (weight type).
    pub const BIAS: u32 = 2;
}

/// Workgroup grid: one invocation per element, 256 per workgroup.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    elementwise(p.n as u64 * p.m as u64, 256, max_per_dim)
}

/// A bound bias add.
#[derive(Debug)]
pub struct BiasAddOp {
    kernel: Kernel,
    y_len: usize,
    bias_len: usize,
}

impl BiasAddOp {
    /// Binds `y` and a single-binding `bias`.
    pub fn new(ctx: &GpuContext, y: BufSlice<'_>, bias: &WeightBuffer) -> Result<Self> {
        check_vector("bias", bias, bias.load(), 0)?;
        let res = [(binding::Y, y), (binding::BIAS, BufSlice::from(&bias.buffers()[0]))];
        Ok(BiasAddOp {
            kernel: Kernel::new(
                ctx,
                ShaderVariant::new(OpKind::BiasAdd).with_load(bias.load()),
                std::mem::size_of::<Params>(),
                &res,
            )?,
            y_len: y.len(),
            bias_len: bias.len(),
        })
    }

    /// Records `y[r, c] += bias[c]` for `r < n`, `c < m`.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, n: usize, m: usize) -> Result<()> {
        ensure(n * m <= self.y_len && m <= self.bias_len, || {
            format!("bias_add: [{n}, {m}] does not fit y ({}) / bias ({})", self.y_len, self.bias_len)
        })?;
        let p = Params { n: to_u32(n, "n")?, m: to_u32(m, "m")?, _pad: [0; 2] };
        let groups = workgroups(&p, ctx.limits().max_compute_workgroups_per_dimension)?;
        self.kernel.record(ctx, pass, &p, groups)?;
        Ok(())
    }
}
