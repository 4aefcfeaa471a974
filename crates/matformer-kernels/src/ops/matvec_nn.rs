//! `matvec_nn`: decode kernel of `y = x·W`, one 64×4 workgroup per 64 output
//! columns (k split over 4 slices), 4 tokens per pass over W. Bound and
//! recorded through [`super::matmul_nn::MatmulNnOp`] (same bindings and uniforms).

pub use super::linear::Params;
use crate::error::Result;

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/matvec_nn.wgsl");

/// Columns per workgroup.
pub const COLS: u32 = 64;

/// Workgroup grid: `ceil(m / 64)` workgroups folded over x/y.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    crate::dispatch::fold(p.m.div_ceil(COLS) as u64, max_per_dim)
}
