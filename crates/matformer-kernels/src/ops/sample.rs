//! `sample`: temperature / top-k / top-p sampling of one logits row on the
//! device from a host-supplied uniform random number; writes one u32 token id.

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::to_u32;
use crate::error::{ensure, Result};
use crate::kernel::{BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant};

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/sample.wgsl");

/// Uniforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    /// Vocabulary size (row length).
    pub d: u32,
    /// Row of the logits buffer to sample.
    pub row: u32,
    /// Keep the k largest logits (0 = off; 1 = greedy).
    pub top_k: u32,
    /// Padding.
    pub _pad0: u32,
    /// Softmax temperature (<= 0 = greedy).
    pub temperature: f32,
    /// Nucleus mass (>= 1 = off).
    pub top_p: f32,
    /// Uniform random number in [0, 1).
    pub u: f32,
    /// Padding.
    pub _pad1: u32,
}

/// Binding numbers.
pub mod binding {
    /// Logits `[rows, d]` f32 (read).
    pub const X: u32 = 1;
    /// Result: `out[0]` = token id (u32).
    pub const OUT: u32 = 2;
}

/// Workgroup grid: a single 256-wide workgroup.
pub fn workgroups(_p: &Params) -> [u32; 3] {
    [1, 1, 1]
}

/// Sampling settings of one draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleArgs {
    /// Vocabulary size.
    pub d: usize,
    /// Logits row to sample.
    pub row: usize,
    /// Temperature (<= 0: greedy).
    pub temperature: f32,
    /// Top-k (0: off).
    pub top_k: usize,
    /// Top-p (>= 1: off).
    pub top_p: f32,
    /// Uniform random number in [0, 1) from the host RNG.
    pub u: f32,
}

/// A bound sampler.
#[derive(Debug)]
pub struct SampleOp {
    kernel: Kernel,
    x_len: usize,
}

impl SampleOp {
    /// Binds the logits and the one-element u32 output.
    pub fn new(ctx: &GpuContext, logits: BufSlice<'_>, out: BufSlice<'_>) -> Result<Self> {
        ensure(!out.is_empty(), || "sample: empty output".into())?;
        Ok(SampleOp {
            kernel: Kernel::new(
                ctx,
                ShaderVariant::new(OpKind::Sample),
                std::mem::size_of::<Params>(),
                &[(binding::X, logits), (binding::OUT, out)],
            )?,
            x_len: logits.len(),
        })
    }

    /// Records one draw into `out[0]`.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, a: SampleArgs) -> Result<()> {
        ensure((a.row + 1) * a.d <= self.x_len, || {
            format!("sample: row {} of {} does not fit {} logits", a.row, a.d, self.x_len)
        })?;
        let p = Params {
            d: to_u32(a.d, "d")?,
            row: to_u32(a.row, "row")?,
            top_k: to_u32(a.top_k, "top_k")?,
            _pad0: 0,
            temperature: a.temperature,
            top_p: a.top_p,
            u: a.u,
            _pad1: 0,
        };
        self.kernel.record(ctx, pass, &p, workgroups(&p))?;
        Ok(())
    }
}
