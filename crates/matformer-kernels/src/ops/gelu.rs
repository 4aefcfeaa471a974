//! `gelu`: GELU in place, exact (erf) or tanh approximation (a uniform).

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::{elementwise, to_u32};
use crate::error::{ensure, Result};
use crate::kernel::{BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant};

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/gelu.wgsl");

/// GELU flavour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GeluMode {
    /// `0.5 x (1 + erf(x / √2))` (erf to 1.5e-7).
    #[default]
    Erf = 0,
    /// `0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³)))`.
    Tanh = 1,
}

/// Uniforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    /// Elements.
    pub len: u32,
    /// [`GeluMode`] as u32.
    pub mode: u32,
    /// Padding.
    pub _pad: [u32; 2],
}

/// Binding numbers.
pub mod binding {
    /// f32, in place.
    pub const X: u32 = 1;
}

/// Workgroup grid: one invocation per element, 256 per workgroup.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    elementwise(p.len as u64, 256, max_per_dim)
}

/// A bound in-place GELU.
#[derive(Debug)]
pub struct GeluOp {
    kernel: Kernel,
    x_len: usize,
}

impl GeluOp {
    /// Binds `x`.
    pub fn new(ctx: &GpuContext, x: BufSlice<'_>) -> Result<Self> {
        Ok(GeluOp {
            kernel: Kernel::new(
                ctx,
                ShaderVariant::new(OpKind::Gelu),
                std::mem::size_of::<Params>(),
                &[(binding::X, x)],
            )?,
            x_len: x.len(),
        })
    }

    /// Records GELU over the first `len` elements.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, len: usize, mode: GeluMode) -> Result<()> {
        ensure(len <= self.x_len, || format!("gelu: x holds {}, needs {len}", self.x_len))?;
        let p = Params { len: to_u32(len, "len")?, mode: mode as u32, _pad: [0; 2] };
        let groups = workgroups(&p, ctx.limits().max_compute_workgroups_per_dimension)?;
        self.kernel.record(ctx, pass, &p, groups)?;
        Ok(())
    }
}
