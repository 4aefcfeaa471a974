//! `embedding`: `out[i, :] = table[ids[i], :] * scale` (token embedding gather;
//! `scale` covers Gemma-style `sqrt(d_model)` scaling). The table may be split
//! over several bindings like any weight matrix.

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::{elementwise, to_u32};
use crate::error::{ensure, Result};
use crate::kernel::{weight_entries, BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant};
use crate::weight::WeightBuffer;

/// WGSL template.
pub const TEMPLATE: &str = include_str!("../../../../shaders/embedding.wgsl");

/// Uniforms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    /// Tokens.
    pub n: u32,
    /// Embedding width (table row length).
    pub d: u32,
    /// Table rows; ids at or above produce zero rows.
    pub vocab: u32,
    /// Elements per table binding.
    pub w_chunk: u32,
    /// Output multiplier.
    pub scale: f32,
    /// Padding.
    pub _pad: [u32; 3],
}

/// Binding numbers.
pub mod binding {
    /// Token ids (u32, read).
    pub const IDS: u32 = 1;
    /// Output `[n, d]` (f32).
    pub const OUT: u32 = 2;
    /// First table chunk.
    pub const W0: u32 = 4;
}

/// Workgroup grid: one invocation per output element, 256 per workgroup.
pub fn workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    elementwise(p.n as u64 * p.d as u64, 256, max_per_dim)
}

/// Arguments of one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmbeddingArgs {
    /// Number of ids to gather.
    pub n: usize,
    /// Output multiplier (1.0 for none).
    pub scale: f32,
}

/// A bound embedding gather.
#[derive(Debug)]
pub struct EmbeddingOp {
    kernel: Kernel,
    d: u32,
    vocab: u32,
    w_chunk: u32,
    ids_len: usize,
    out_len: usize,
}

impl EmbeddingOp {
    /// Binds `table` `[vocab, d]`, `ids` and `out`.
    pub fn new(ctx: &GpuContext, table: &WeightBuffer, ids: BufSlice<'_>, out: BufSlice<'_>) -> Result<Self> {
        let variant = ShaderVariant::new(OpKind::Embedding)
            .with_load(table.load())
            .with_chunks(to_u32(table.chunk_count(), "chunks")? as u8);
        let mut res = vec![(binding::IDS, ids), (binding::OUT, out)];
        res.extend(weight_entries(table, binding::W0));
        Ok(EmbeddingOp {
            kernel: Kernel::new(ctx, variant, std::mem::size_of::<Params>(), &res)?,
            d: to_u32(table.row_len(), "d")?,
            vocab: to_u32(table.rows(), "vocab")?,
            w_chunk: table.chunk_elems(),
            ids_len: ids.len(),
            out_len: out.len(),
        })
    }

    /// Records the gather of `args.n` ids.
    pub fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, args: EmbeddingArgs) -> Result<()> {
        ensure(args.n <= self.ids_len, || format!("embedding: {} ids bound, {} requested", self.ids_len, args.n))?;
        ensure(args.n * self.d as usize <= self.out_len, || {
            format!("embedding: out holds {} elements, needs {}", self.out_len, args.n * self.d as usize)
        })?;
        let p = Params {
            n: to_u32(args.n, "n")?,
            d: self.d,
            vocab: self.vocab,
            w_chunk: self.w_chunk,
            scale: args.scale,
            _pad: [0; 3],
        };
        let groups = workgroups(&p, ctx.limits().max_compute_workgroups_per_dimension)?;
        self.kernel.record(ctx, pass, &p, groups)?;
        Ok(())
    }
}
