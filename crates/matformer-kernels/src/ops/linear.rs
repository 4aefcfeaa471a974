//! Shared machinery of the four matrix kernels: `y = x·Wᵀ` (NT, weights
//! `[m_total, k]`) and `y = x·W` (NN, weights `[k_total, m]`), each with a tiled
//! (prefill) and a vector (decode) kernel over the SAME bindings and uniforms.

use bytemuck::{Pod, Zeroable};

use crate::context::GpuContext;
use crate::dispatch::to_u32;
use crate::error::{ensure, Result};
use crate::kernel::{check_vector, weight_entries, BufSlice, Kernel};
use crate::variant::{OpKind, ShaderVariant, FLAG_BIAS};
use crate::weight::WeightBuffer;

/// Uniforms of matmul_nt / matvec_nt / matmul_nn / matvec_nn.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Params {
    /// Rows of x and y (tokens).
    pub n: u32,
    /// Reduction length (NT: model dim; NN: active FFN width).
    pub k: u32,
    /// Columns of y (NT: active output rows of W; NN: row length of W).
    pub m: u32,
    /// Elements per weight binding ([`WeightBuffer::chunk_elems`]).
    pub w_chunk: u32,
}

/// Binding numbers shared by the four kernels.
pub mod binding {
    /// Uniform [`super::Params`].
    pub const PARAMS: u32 = 0;
    /// Input x (f32, read).
    pub const X: u32 = 1;
    /// Output y (f32, read_write).
    pub const Y: u32 = 2;
    /// Optional bias (weight type).
    pub const BIAS: u32 = 3;
    /// First weight chunk; chunk c is at `W0 + c`.
    pub const W0: u32 = 4;
}

/// Output tile of the tiled kernels (rows of x × columns of y).
pub const TILE: u32 = 64;

/// Largest n for which [`MatmulPath::Auto`] uses the vector kernel.
pub const MATVEC_MAX_N: usize = 8;

/// Which kernel a matrix op records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatmulPath {
    /// Vector kernel for `n <= MATVEC_MAX_N`, tiled otherwise.
    #[default]
    Auto,
    /// Always the tiled kernel.
    Tiled,
    /// Always the vector kernel.
    Vector,
}

/// Shape of one call. NT: `y[n, m] = x[n, k]·W[0..m, 0..k]ᵀ`, `k = W.row_len`,
/// `m <= W.rows` (active prefix of rows). NN: `y[n, m] = x[n, k]·W[0..k, 0..m]`,
/// `m = W.row_len`, `k <= W.rows` (active prefix of rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulShape {
    /// Tokens.
    pub n: usize,
    /// Reduction length.
    pub k: usize,
    /// Output columns.
    pub m: usize,
}

/// Buffers bound to a matrix op.
#[derive(Clone, Copy, Debug)]
pub struct MatmulBindings<'a> {
    /// Input `[n, k]`, f32.
    pub x: BufSlice<'a>,
    /// Weights (possibly split over several bindings).
    pub w: &'a WeightBuffer,
    /// Optional bias `[m]` with the same load path as `w`.
    pub bias: Option<&'a WeightBuffer>,
    /// Output `[n, m]`, f32. Must not alias `x`.
    pub y: BufSlice<'a>,
}

/// Orientation of the weight matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Orientation {
    Nt,
    Nn,
}

/// A bound matrix op holding both its tiled and its vector kernel.
#[derive(Debug)]
pub(crate) struct LinearOp {
    orientation: Orientation,
    tiled: Kernel,
    vector: Kernel,
    w_rows: usize,
    w_row_len: usize,
    w_chunk: u32,
    x_len: usize,
    y_len: usize,
    bias_len: Option<usize>,
}

impl LinearOp {
    pub(crate) fn new(ctx: &GpuContext, orientation: Orientation, b: MatmulBindings<'_>) -> Result<Self> {
        let load = b.w.load();
        if let Some(bias) = b.bias {
            check_vector("bias", bias, load, 1)?;
        }
        let (tiled_op, vector_op) = match orientation {
            Orientation::Nt => (OpKind::MatmulNt, OpKind::MatvecNt),
            Orientation::Nn => (OpKind::MatmulNn, OpKind::MatvecNn),
        };
        let chunks = to_u32(b.w.chunk_count(), "weight chunks")? as u8;
        let flags = if b.bias.is_some() { FLAG_BIAS } else { 0 };
        let mut resources = vec![(binding::X, b.x), (binding::Y, b.y)];
        if let Some(bias) = b.bias {
            resources.push((binding::BIAS, BufSlice::from(&bias.buffers()[0])));
        }
        resources.extend(weight_entries(b.w, binding::W0));
        let variant = |op| ShaderVariant::new(op).with_load(load).with_chunks(chunks).with_flags(flags);
        let size = std::mem::size_of::<Params>();
        Ok(LinearOp {
            orientation,
            tiled: Kernel::new(ctx, variant(tiled_op), size, &resources)?,
            vector: Kernel::new(ctx, variant(vector_op), size, &resources)?,
            w_rows: b.w.rows(),
            w_row_len: b.w.row_len(),
            w_chunk: b.w.chunk_elems(),
            x_len: b.x.len(),
            y_len: b.y.len(),
            bias_len: b.bias.map(WeightBuffer::len),
        })
    }

    /// Validates `s` and builds the uniforms.
    pub(crate) fn params(&self, s: MatmulShape) -> Result<Params> {
        let (name, ok) = match self.orientation {
            Orientation::Nt => ("matmul_nt", s.k == self.w_row_len && s.m <= self.w_rows),
            Orientation::Nn => ("matmul_nn", s.m == self.w_row_len && s.k <= self.w_rows),
        };
        ensure(ok, || format!("{name}: shape {s:?} does not match weights [{}, {}]", self.w_rows, self.w_row_len))?;
        ensure(s.n * s.k <= self.x_len, || format!("{name}: x holds {} elements, needs {}", self.x_len, s.n * s.k))?;
        ensure(s.n * s.m <= self.y_len, || format!("{name}: y holds {} elements, needs {}", self.y_len, s.n * s.m))?;
        if let Some(bl) = self.bias_len {
            ensure(s.m <= bl, || format!("{name}: bias has {bl} elements, needs {}", s.m))?;
        }
        Ok(Params { n: to_u32(s.n, "n")?, k: to_u32(s.k, "k")?, m: to_u32(s.m, "m")?, w_chunk: self.w_chunk })
    }

    pub(crate) fn record(
        &self,
        ctx: &GpuContext,
        pass: &mut wgpu::ComputePass<'_>,
        shape: MatmulShape,
        path: MatmulPath,
    ) -> Result<()> {
        let p = self.params(shape)?;
        if p.n == 0 || p.m == 0 {
            return Ok(());
        }
        let max = ctx.limits().max_compute_workgroups_per_dimension;
        let vector = match path {
            MatmulPath::Auto => shape.n <= MATVEC_MAX_N,
            MatmulPath::Tiled => false,
            MatmulPath::Vector => true,
        };
        if vector {
            let groups = match self.orientation {
                Orientation::Nt => crate::ops::matvec_nt::workgroups(&p, max)?,
                Orientation::Nn => crate::ops::matvec_nn::workgroups(&p, max)?,
            };
            self.vector.record(ctx, pass, &p, groups)?;
        } else {
            let groups = match self.orientation {
                Orientation::Nt => crate::ops::matmul_nt::workgroups(&p, max)?,
                Orientation::Nn => crate::ops::matmul_nn::workgroups(&p, max)?,
            };
            self.tiled.record(ctx, pass, &p, groups)?;
        }
        Ok(())
    }
}

/// Tiled workgroup grid: `[ceil(m / 64), ceil(n / 64), 1]`.
pub(crate) fn tiled_workgroups(p: &Params, max_per_dim: u32) -> Result<[u32; 3]> {
    let gx = p.m.div_ceil(TILE);
    let gy = p.n.div_ceil(TILE);
    ensure(gx <= max_per_dim && gy <= max_per_dim, || {
        format!("matmul grid {gx}x{gy} exceeds {max_per_dim} per dimension")
    })?;
    Ok([gx, gy, 1])
}
