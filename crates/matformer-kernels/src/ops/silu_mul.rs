//! `silu_mul`: gated FFN activation in place, `gate = act(gate) * up` with
//! act = SiLU (SwiGLU), exact GELU or tanh GELU (GeGLU). With the active width
//! as part of `len = n_tokens * width`, the work is ∝ the width.

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::{elementwise, to_u32};
use crate::error::{ensure, Result};
use crate::kernel::{BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant};

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/silu_mul.wgsl");

/// Gate activation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GateAct {
    /// SiLU (Llama).
    #[default]
    Silu = 0,
    /// Exact GELU.
    GeluErf = 1,
    /// tanh GELU (Gemma).
    GeluTanh = 2,
}

/// Uniforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    /// Elements.
    pub len: u32,
    /// [`GateAct`] as u32.
    pub mode: u32,
    /// Padding.
    pub _pad: [u32; 2],
}

/// Binding numbers.
pub mod binding {
    /// Gate pre-activations; receives the result.
    pub const GATE: u32 = 1;
    /// Up projection (read).
    pub const UP: u32 = 2;
}

/// Workgroup grid: one invocation per element, 256 per workgroup.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    elementwise(p.len as u64, 256, max_per_dim)
}

/// A bound gated activation.
#[derive(Debug)]
pub struct SiluMulOp {
    kernel: Kernel,
    len: usize,
}

impl SiluMulOp {
    /// Binds `gate` (in/out) and `up` (distinct buffers or ranges).
    pub fn new(ctx: &GpuContext, gate: BufSlice<'_>, up: BufSlice<'_>) -> Result<Self> {
        Ok(SiluMulOp {
            kernel: Kernel::new(
                ctx,
                ShaderVariant::new(OpKind::SiluMul),
                std::mem::size_of::<Params>(),
                &[(binding::GATE, gate), (binding::UP, up)],
            )?,
            len: gate.len().min(up.len()),
        })
    }

    /// Records `gate[i] = act(gate[i]) * up[i]` for `i < len`.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, len: usize, act: GateAct) -> Result<()> {
        ensure(len <= self.len, || format!("silu_mul: buffers hold {}, needs {len}", self.len))?;
        let p = Params { len: to_u32(len, "len")?, mode: act as u32, _pad: [0; 2] };
        let groups = workgroups(&p, ctx.limits().max_compute_workgroups_per_dimension)?;
        self.kernel.record(ctx, pass, &p, groups)?;
        Ok(())
    }
}
