//! `kv_write`: copies new K (or V) rows into the cache at a row offset, inside
//! the compute pass (a buffer copy would have to end the pass).

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::{elementwise, to_u32};
use crate::error::{ensure, Result};
use crate::kernel::{BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant};

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/kv_write.wgsl");

/// Uniforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    /// Rows to copy.
    pub n_rows: u32,
    /// Elements per row (`n_kv_heads * head_dim`).
    pub row_len: u32,
    /// Destination row of the first copied row (= start position).
    pub dst_row0: u32,
    /// Padding.
    pub _pad: u32,
}

/// Binding numbers.
pub mod binding {
    /// New rows `[n_rows, row_len]` (read).
    pub const SRC: u32 = 1;
    /// Cache `[capacity, row_len]`.
    pub const DST: u32 = 2;
}

/// Workgroup grid: one invocation per element, 256 per workgroup.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    elementwise(p.n_rows as u64 * p.row_len as u64, 256, max_per_dim)
}

/// A bound cache write.
#[derive(Debug)]
pub struct KvWriteOp {
    kernel: Kernel,
    src_len: usize,
    dst_len: usize,
}

impl KvWriteOp {
    /// Binds the new rows `src` and the cache `dst`.
    pub fn new(ctx: &GpuContext, src: BufSlice<'_>, dst: BufSlice<'_>) -> Result<Self> {
        Ok(KvWriteOp {
            kernel: Kernel::new(
                ctx,
                ShaderVariant::new(OpKind::KvWrite),
                std::mem::size_of::<Params>(),
                &[(binding::SRC, src), (binding::DST, dst)],
            )?,
            src_len: src.len(),
            dst_len: dst.len(),
        })
    }

    /// Records `dst[dst_row0 + r] = src[r]` for `r < n_rows`.
    pub fn record(
        &self,
        ctx: &GpuContext,
        pass: &mut wgpu::ComputePass<'_>,
        n_rows: usize,
        row_len: usize,
        dst_row0: usize,
    ) -> Result<()> {
        ensure(n_rows * row_len <= self.src_len && (dst_row0 + n_rows) * row_len <= self.dst_len, || {
            format!("kv_write: rows {dst_row0}..{} of {row_len} do not fit the cache", dst_row0 + n_rows)
        })?;
        let p = Params {
            n_rows: to_u32(n_rows, "n_rows")?,
            row_len: to_u32(row_len, "row_len")?,
            dst_row0: to_u32(dst_row0, "dst_row0")?,
            _pad: 0,
        };
        let groups = workgroups(&p, ctx.limits().max_compute_workgroups_per_dimension)?;
        self.kernel.record(ctx, pass, &p, groups)?;
        Ok(())
    }
}
