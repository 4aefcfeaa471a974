//! `rmsnorm`: `y = x / sqrt(mean(x²) + eps) * gamma` per row.

use crate::context::GpuContext;
use crate::dispatch::to_u32;
use crate::error::{ensure, Result};
use crate::kernel::{check_vector, BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant};
use crate::weight::WeightBuffer;

pub use super::layernorm::{workgroups, NormArgs, Params};

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/rmsnorm.wgsl");

/// Binding numbers.
pub mod binding {
    /// Input (f32, read).
    pub const X: u32 = 1;
    /// Output (f32).
    pub const Y: u32 = 2;
    /// Gain (weight type).
    pub const GAMMA: u32 = 3;
}

/// A bound RMSNorm over rows of length `gamma.len()`.
#[derive(Debug)]
pub struct RmsNormOp {
    kernel: Kernel,
    d: u32,
    x_len: usize,
    y_len: usize,
}

impl RmsNormOp {
    /// Binds `x`, `gamma` and `y` (must not alias x).
    pub fn new(ctx: &GpuContext, x: BufSlice<'_>, gamma: &WeightBuffer, y: BufSlice<'_>) -> Result<Self> {
        let d = gamma.len();
        check_vector("gamma", gamma, gamma.load(), d)?;
        let res = [(binding::X, x), (binding::Y, y), (binding::GAMMA, BufSlice::from(&gamma.buffers()[0]))];
        let variant = ShaderVariant::new(OpKind::RmsNorm).with_load(gamma.load());
        Ok(RmsNormOp {
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
            format!("rmsnorm: {need} elements needed, x has {}, y has {}", self.x_len, self.y_len)
        })?;
        let p = Params { n: to_u32(args.n, "n")?, d: self.d, eps: args.eps, _pad: 0 };
        let groups = workgroups(&p, ctx.limits().max_compute_workgroups_per_dimension)?;
        self.kernel.record(ctx, pass, &p, groups)?;
        Ok(())
    }
}
