//! `matvec_nt`: decode kernel of `y = x·Wᵀ`, one 64-wide workgroup per output
//! column (row of W), 4 tokens per pass over W. Bound and recorded through
//! [`super::matmul_nt::MatmulNtOp`] (same bindings and uniforms).

pub use super::linear::Params;
use crate::error::Result;

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/matvec_nt.wgsl");

/// Workgroup grid: `m` workgroups folded over x/y.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    crate::dispatch::fold(p.m as u64, max_per_dim)
}
