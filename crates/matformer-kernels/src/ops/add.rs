//! `add`: residual connection in place, `a += b`.

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::{elementwise, to_u32};
use crate::error::{ensure, Result};
use crate::kernel::{BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant};

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/add.wgsl");

/// Uniforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    /// Elements.
    pub len: u32,
    /// Padding.
    pub _pad: [u32; 3],
}

/// Binding numbers.
pub mod binding {
    /// Accumulator, in place.
    pub const A: u32 = 1;
    /// Addend (read).
    pub const B: u32 = 2;
}

/// Workgroup grid: one invocation per element, 256 per workgroup.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    elementwise(p.len as u64, 256, max_per_dim)
}

/// A bound in-place add.
#[derive(Debug)]
pub struct AddOp {
    kernel: Kernel,
    len: usize,
}

impl AddOp {
    /// Binds `a` (in/out) and `b` (distinct buffers or ranges).
    pub fn new(ctx: &GpuContext, a: BufSlice<'_>, b: BufSlice<'_>) -> Result<Self> {
        Ok(AddOp {
            kernel: Kernel::new(
                ctx,
                ShaderVariant::new(OpKind::Add),
                std::mem::size_of::<Params>(),
                &[(binding::A, a), (binding::B, b)],
            )?,
            len: a.len().min(b.len()),
        })
    }

    /// Records `a[i] += b[i]` for `i < len`.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, len: usize) -> Result<()> {
        ensure(len <= self.len, || format!("add: buffers hold {}, needs {len}", self.len))?;
        let p = Params { len: to_u32(len, "len")?, _pad: [0; 3] };
        let groups = workgroups(&p, ctx.limits().max_compute_workgroups_per_dimension)?;
        self.kernel.record(ctx, pass, &p, groups)?;
        Ok(())
    }
}
