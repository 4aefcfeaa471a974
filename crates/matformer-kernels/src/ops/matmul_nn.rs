//! `matmul_nn`: tiled `y[n, m] = x[n, k]·W[k, m] (+ bias)` and the bound
//! [`MatmulNnOp`], which also owns the decode kernel of [`super::matvec_nn`].
//! Used for the FFN down projection stored neuron-major `[d_ff, d_model]`:
//! k is the active width, so only that prefix of rows is read.

use super::linear::{tiled_workgroups, LinearOp, Orientation};
pub use super::linear::{MatmulBindings, MatmulPath, MatmulShape, Params};
use crate::context::GpuContext;
use crate::error::Result;

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/matmul_nn.wgsl");

/// Workgroup grid of the tiled kernel: one 64×64 output tile per 16×16 workgroup.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    tiled_workgroups(p, max_per_dim)
}

/// A bound `y = x·W (+ bias)` with weights `[k_total, m]`.
#[derive(Debug)]
pub struct MatmulNnOp(LinearOp);

impl MatmulNnOp {
    /// Builds both pipelines (tiled + vector) and binds the buffers.
    pub fn new(ctx: &GpuContext, bindings: MatmulBindings<'_>) -> Result<Self> {
        LinearOp::new(ctx, Orientation::Nn, bindings).map(MatmulNnOp)
    }

    /// Validates `shape` against the bound buffers and returns the uniforms.
    pub fn params(&self, shape: MatmulShape) -> Result<Params> {
        self.0.params(shape)
    }

    /// Records `y[0..n, 0..m] = x[.., 0..k]·W[0..k] (+ bias)`, choosing the kernel by n.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, shape: MatmulShape) -> Result<()> {
        self.0.record(ctx, pass, shape, MatmulPath::Auto)
    }

    /// Like [`MatmulNnOp::record`] with an explicit kernel choice.
    pub fn record_with(
        &self,
        ctx: &GpuContext,
        pass: &mut wgpu::ComputePass<'_>,
        shape: MatmulShape,
        path: MatmulPath,
    ) -> Result<()> {
        self.0.record(ctx, pass, shape, path)
    }
}
