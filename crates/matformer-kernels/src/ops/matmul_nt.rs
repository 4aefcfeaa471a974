//! `matmul_nt`: tiled `y[n, m] = x[n, k]·W[m, k]ᵀ (+ bias)` and the bound
//! [`MatmulNtOp`], which also owns the decode kernel of [`super::matvec_nt`].
//! Used for attention projections, the FFN up/gate projections (m = active
//! width: only that prefix of the neuron-major `[d_ff, d_model]` rows is read),
//! the LM head and ViT patch embedding.

use super::linear::{tiled_workgroups, LinearOp, Orientation};
pub use super::linear::{MatmulBindings, MatmulPath, MatmulShape, Params};
use crate::context::GpuContext;
use crate::error::Result;

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/matmul_nt.wgsl");

/// Workgroup grid of the tiled kernel: one 64×64 output tile per 16×16 workgroup.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    tiled_workgroups(p, max_per_dim)
}

/// A bound `y = x·Wᵀ (+ bias)` with weights `[m_total, k]`.
#[derive(Debug)]
pub struct MatmulNtOp(LinearOp);

impl MatmulNtOp {
    /// Builds both pipelines (tiled + vector) and binds the buffers.
    pub fn new(ctx: &GpuContext, bindings: MatmulBindings<'_>) -> Result<Self> {
        LinearOp::new(ctx, Orientation::Nt, bindings).map(MatmulNtOp)
    }

    /// Validates `shape` against the bound buffers and returns the uniforms.
    pub fn params(&self, shape: MatmulShape) -> Result<Params> {
        self.0.params(shape)
    }

    /// Records `y[0..n, 0..m] = x·W[0..m]ᵀ (+ bias)`, choosing the kernel by n.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, shape: MatmulShape) -> Result<()> {
        self.0.record(ctx, pass, shape, MatmulPath::Auto)
    }

    /// Like [`MatmulNtOp::record`] with an explicit kernel choice.
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
