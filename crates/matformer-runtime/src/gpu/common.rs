//! Pieces shared by the GPU LM and ViT: weight upload, typed linear/norm ops with an optional separate bias,
//! the per-layer op set of a pre-norm block, activation buffers and the one-submission readback.

use matformer_graph::{FfnKind, Layer, ModelConfig, NormKind, Tensor, TensorData};
use matformer_kernels::wgpu;
use matformer_kernels::{
    AddOp, BiasAddOp, BufSlice, GateAct, GeluMode, GeluOp, GpuContext, KernelError, LayerNormOp, MatmulBindings,
    MatmulNnOp, MatmulNtOp, MatmulShape, NormArgs, Result as KResult, RmsNormOp, SiluMulOp, WeightBuffer,
};

use super::profile::Profiler;

/// Uploads a tensor as a row-major `[shape[0], rest]` weight matrix in its stored dtype (a 1-D tensor
/// becomes a `[1, len]` vector).
pub(crate) fn upload_tensor(ctx: &GpuContext, label: &str, t: &Tensor) -> KResult<WeightBuffer> {
    let (rows, row_len) = match t.shape.len() {
        0 | 1 => (1, t.numel()),
        _ => (t.shape[0], t.shape[1..].iter().product()),
    };
    match &t.data {
        TensorData::F32(v) => ctx.upload_weights(label, v, rows, row_len),
        TensorData::F16(v) => ctx.upload_weights(label, v, rows, row_len),
        TensorData::Bf16(v) => ctx.upload_weights(label, v, rows, row_len),
    }
}

/// Uploads an optional tensor.
pub(crate) fn upload_opt(ctx: &GpuContext, label: &str, t: Option<&Tensor>) -> KResult<Option<WeightBuffer>> {
    t.map(|t| upload_tensor(ctx, label, t)).transpose()
}

/// A storage buffer of `len` f32 elements, refusing sizes above the binding limit with a clear message.
pub(crate) fn activation(ctx: &GpuContext, label: &str, len: usize) -> KResult<wgpu::Buffer> {
    let bytes = (len.max(1) * 4) as u64;
    if bytes > ctx.max_storage_buffer_binding_size() {
        return Err(KernelError::Limit(format!(
            "activation buffer {label:?} needs {bytes} bytes, above the adapter's max_storage_buffer_binding_size {}",
            ctx.max_storage_buffer_binding_size()
        )));
    }
    ctx.storage_buffer(label, len.max(1))
}

/// Binds a whole buffer.
pub(crate) fn s(b: &wgpu::Buffer) -> BufSlice<'_> {
    b.into()
}

/// Weights of a norm: gain and (LayerNorm) shift.
pub(crate) struct NormWeights {
    gamma: WeightBuffer,
    beta: Option<WeightBuffer>,
}

impl NormWeights {
    pub(crate) fn upload(ctx: &GpuContext, label: &str, n: &matformer_graph::Norm) -> KResult<Self> {
        Ok(NormWeights {
            gamma: upload_tensor(ctx, &format!("{label}.weight"), &n.weight)?,
            beta: upload_opt(ctx, &format!("{label}.bias"), n.bias.as_ref())?,
        })
    }
}

/// Weights of a linear layer `[out, in]` plus its optional bias.
pub(crate) struct LinWeights {
    pub(crate) w: WeightBuffer,
    pub(crate) b: Option<WeightBuffer>,
}

impl LinWeights {
    pub(crate) fn upload(ctx: &GpuContext, label: &str, l: &matformer_graph::Linear) -> KResult<Self> {
        Ok(LinWeights {
            w: upload_tensor(ctx, &format!("{label}.weight"), &l.weight)?,
            b: upload_opt(ctx, &format!("{label}.bias"), l.bias.as_ref())?,
        })
    }
}

/// The uploaded weights of one transformer block.
pub(crate) struct LayerWeights {
    attn_norm: NormWeights,
    q: LinWeights,
    k: LinWeights,
    v: LinWeights,
    o: LinWeights,
    ffn_norm: NormWeights,
    up: LinWeights,
    gate: Option<WeightBuffer>,
    down_t: WeightBuffer,
    down_bias: Option<WeightBuffer>,
}

impl LayerWeights {
    pub(crate) fn upload(ctx: &GpuContext, i: usize, l: &Layer) -> KResult<Self> {
        let p = format!("layers.{i}");
        Ok(LayerWeights {
            attn_norm: NormWeights::upload(ctx, &format!("{p}.attn_norm"), &l.attn_norm)?,
            q: LinWeights::upload(ctx, &format!("{p}.attn.q"), &l.q)?,
            k: LinWeights::upload(ctx, &format!("{p}.attn.k"), &l.k)?,
            v: LinWeights::upload(ctx, &format!("{p}.attn.v"), &l.v)?,
            o: LinWeights::upload(ctx, &format!("{p}.attn.o"), &l.o)?,
            ffn_norm: NormWeights::upload(ctx, &format!("{p}.ffn_norm"), &l.ffn_norm)?,
            up: LinWeights::upload(ctx, &format!("{p}.ffn.up"), &l.up)?,
            gate: upload_opt(ctx, &format!("{p}.ffn.gate.weight"), l.gate.as_ref())?,
            down_t: upload_tensor(ctx, &format!("{p}.ffn.down_t.weight"), &l.down_t)?,
            down_bias: upload_opt(ctx, &format!("{p}.ffn.down.bias"), l.down_bias.as_ref())?,
        })
    }

    /// Device bytes of this block's weights.
    pub(crate) fn size_bytes(&self) -> u64 {
        let lin = |l: &LinWeights| l.w.size_bytes() + l.b.as_ref().map_or(0, WeightBuffer::size_bytes);
        let norm = |n: &NormWeights| n.gamma.size_bytes() + n.beta.as_ref().map_or(0, WeightBuffer::size_bytes);
        norm(&self.attn_norm)
            + lin(&self.q)
            + lin(&self.k)
            + lin(&self.v)
            + lin(&self.o)
            + norm(&self.ffn_norm)
            + lin(&self.up)
            + self.gate.as_ref().map_or(0, WeightBuffer::size_bytes)
            + self.down_t.size_bytes()
            + self.down_bias.as_ref().map_or(0, WeightBuffer::size_bytes)
    }
}

/// Model dimensions the recorders need.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub(crate) d: usize,
    pub(crate) qd: usize,
    pub(crate) kvd: usize,
    pub(crate) hd: usize,
    pub(crate) n_heads: usize,
    pub(crate) n_kv_heads: usize,
    /// Widest stored FFN width over the layers.
    pub(crate) ff_max: usize,
    pub(crate) eps: f32,
    pub(crate) norm: NormKind,
    pub(crate) ffn: FfnKind,
}

impl Dims {
    pub(crate) fn of(cfg: &ModelConfig) -> Self {
        let hd = cfg.head_dim();
        Dims {
            d: cfg.d_model,
            qd: cfg.n_heads * hd,
            kvd: cfg.n_kv_heads * hd,
            hd,
            n_heads: cfg.n_heads,
            n_kv_heads: cfg.n_kv_heads,
            ff_max: (0..cfg.n_layers).map(|l| cfg.layer_width(l)).max().unwrap_or(cfg.d_ff),
            eps: cfg.norm_eps,
            norm: cfg.norm,
            ffn: cfg.ffn,
        }
    }
}

/// Activation buffers of a block for up to `rows` tokens.
pub(crate) struct Acts {
    /// Residual stream `[rows, d]`.
    pub(crate) x: wgpu::Buffer,
    /// Normed input / branch output `[rows, d]`.
    pub(crate) h: wgpu::Buffer,
    /// Queries `[rows, qd]`.
    pub(crate) q: wgpu::Buffer,
    /// New keys `[rows, kvd]`.
    pub(crate) k: wgpu::Buffer,
    /// New values `[rows, kvd]`.
    pub(crate) v: wgpu::Buffer,
    /// Attention output `[rows, qd]`.
    pub(crate) att: wgpu::Buffer,
    /// FFN up projection `[rows, ff_max]` (row stride = the active width).
    pub(crate) up: wgpu::Buffer,
    /// FFN gate projection (SwiGLU only).
    pub(crate) gate: Option<wgpu::Buffer>,
}

impl Acts {
    pub(crate) fn new(ctx: &GpuContext, rows: usize, dims: &Dims) -> KResult<Self> {
        Ok(Acts {
            x: activation(ctx, "x", rows * dims.d)?,
            h: activation(ctx, "h", rows * dims.d)?,
            q: activation(ctx, "q", rows * dims.qd)?,
            k: activation(ctx, "k", rows * dims.kvd)?,
            v: activation(ctx, "v", rows * dims.kvd)?,
            att: activation(ctx, "att", rows * dims.qd)?,
            up: activation(ctx, "ffn up", rows * dims.ff_max)?,
            gate: match dims.ffn {
                FfnKind::SwiGlu => Some(activation(ctx, "ffn gate", rows * dims.ff_max)?),
                _ => None,
            },
        })
    }
}

/// Records ops into a compute pass, optionally wrapping each in GPU timestamps.
pub(crate) struct Rec<'a, 'p> {
    pub(crate) ctx: &'a GpuContext,
    pub(crate) pass: &'a mut wgpu::ComputePass<'p>,
    pub(crate) prof: Option<&'a mut Profiler>,
}

impl Rec<'_, '_> {
    /// Records `f` as one timed op named `label`.
    pub(crate) fn op(
        &mut self,
        label: &'static str,
        f: impl FnOnce(&GpuContext, &mut wgpu::ComputePass<'_>) -> KResult<()>,
    ) -> KResult<()> {
        if let Some(p) = self.prof.as_deref_mut() {
            p.begin(self.pass, label);
        }
        f(self.ctx, self.pass)?;
        if let Some(p) = self.prof.as_deref_mut() {
            p.end(self.pass);
        }
        Ok(())
    }
}

/// The matrix kernel of a [`LinearOps`].
enum Matmul {
    Nt(MatmulNtOp),
    Nn(MatmulNnOp),
}

/// A matrix op plus its bias: fused into the matmul when the bias has the weights' load path, a separate
/// `bias_add` otherwise (imported checkpoints may mix dtypes).
pub(crate) struct LinearOps {
    mm: Matmul,
    bias: Option<BiasAddOp>,
}

impl LinearOps {
    fn build(
        ctx: &GpuContext,
        nt: bool,
        x: BufSlice<'_>,
        w: &WeightBuffer,
        bias: Option<&WeightBuffer>,
        y: BufSlice<'_>,
    ) -> KResult<Self> {
        let fused = bias.filter(|b| b.load() == w.load() && b.chunk_count() == 1);
        let b = MatmulBindings { x, w, bias: fused, y };
        let mm = if nt { Matmul::Nt(MatmulNtOp::new(ctx, b)?) } else { Matmul::Nn(MatmulNnOp::new(ctx, b)?) };
        let bias = match (bias, fused) {
            (Some(b), None) => Some(BiasAddOp::new(ctx, y, b)?),
            _ => None,
        };
        Ok(LinearOps { mm, bias })
    }

    /// `y = x·Wᵀ (+ b)`, weights `[out, in]` (only the first `m` rows are read).
    pub(crate) fn nt(
        ctx: &GpuContext,
        x: BufSlice<'_>,
        w: &WeightBuffer,
        bias: Option<&WeightBuffer>,
        y: BufSlice<'_>,
    ) -> KResult<Self> {
        Self::build(ctx, true, x, w, bias, y)
    }

    /// `y = x·W (+ b)`, weights `[k_total, m]` (only the first `k` rows are read).
    pub(crate) fn nn(
        ctx: &GpuContext,
        x: BufSlice<'_>,
        w: &WeightBuffer,
        bias: Option<&WeightBuffer>,
        y: BufSlice<'_>,
    ) -> KResult<Self> {
        Self::build(ctx, false, x, w, bias, y)
    }

    /// Records `y[n, m] = x[n, k]·W (+ bias[..m])`.
    pub(crate) fn record(
        &self,
        ctx: &GpuContext,
        pass: &mut wgpu::ComputePass<'_>,
        n: usize,
        k: usize,
        m: usize,
    ) -> KResult<()> {
        let shape = MatmulShape { n, k, m };
        match &self.mm {
            Matmul::Nt(op) => op.record(ctx, pass, shape)?,
            Matmul::Nn(op) => op.record(ctx, pass, shape)?,
        }
        if let Some(b) = &self.bias {
            b.record(ctx, pass, n, m)?;
        }
        Ok(())
    }
}

/// LayerNorm (with its shift fused or separate) or RMSNorm over rows of `d`.
pub(crate) enum NormOp {
    Layer { op: LayerNormOp, beta: Option<BiasAddOp>, d: usize },
    Rms(RmsNormOp),
}

impl NormOp {
    pub(crate) fn new(
        ctx: &GpuContext,
        kind: NormKind,
        x: BufSlice<'_>,
        w: &NormWeights,
        y: BufSlice<'_>,
    ) -> KResult<Self> {
        match kind {
            NormKind::RmsNorm => Ok(NormOp::Rms(RmsNormOp::new(ctx, x, &w.gamma, y)?)),
            NormKind::LayerNorm => {
                let fused = w.beta.as_ref().filter(|b| b.load() == w.gamma.load() && b.chunk_count() == 1);
                let op = LayerNormOp::new(ctx, x, &w.gamma, fused, y)?;
                let beta = match (&w.beta, fused) {
                    (Some(b), None) => Some(BiasAddOp::new(ctx, y, b)?),
                    _ => None,
                };
                Ok(NormOp::Layer { op, beta, d: w.gamma.len() })
            }
        }
    }

    pub(crate) fn record(&self, ctx: &GpuContext, pass: &mut wgpu::ComputePass<'_>, n: usize, eps: f32) -> KResult<()> {
        match self {
            NormOp::Rms(op) => op.record(ctx, pass, NormArgs { n, eps }),
            NormOp::Layer { op, beta, d } => {
                op.record(ctx, pass, NormArgs { n, eps })?;
                if let Some(b) = beta {
                    b.record(ctx, pass, n, *d)?;
                }
                Ok(())
            }
        }
    }
}

/// The FFN activation.
enum ActOp {
    /// `gate = silu(gate) * up` (SwiGLU).
    Gated(SiluMulOp),
    /// `up = gelu(up)`.
    Gelu(GeluOp, GeluMode),
}

/// Every op of one pre-norm block except the attention core (which differs between the causal LM with a
/// KV cache and the bidirectional ViT), bound to one layer's weights and the shared activations.
pub(crate) struct BlockOps {
    attn_norm: NormOp,
    q: LinearOps,
    k: LinearOps,
    v: LinearOps,
    o: LinearOps,
    ffn_norm: NormOp,
    up: LinearOps,
    gate: Option<LinearOps>,
    act: ActOp,
    down: LinearOps,
}

impl BlockOps {
    pub(crate) fn new(ctx: &GpuContext, dims: &Dims, w: &LayerWeights, a: &Acts) -> KResult<Self> {
        let (act, down_in) = match (dims.ffn, &a.gate) {
            (FfnKind::SwiGlu, Some(gate)) => (ActOp::Gated(SiluMulOp::new(ctx, s(gate), s(&a.up))?), gate),
            (FfnKind::SwiGlu, None) => return Err(KernelError::Internal("SwiGLU without a gate buffer".into())),
            (FfnKind::Gelu, _) => (ActOp::Gelu(GeluOp::new(ctx, s(&a.up))?, GeluMode::Erf), &a.up),
            (FfnKind::GeluTanh, _) => (ActOp::Gelu(GeluOp::new(ctx, s(&a.up))?, GeluMode::Tanh), &a.up),
        };
        let gate = match (&w.gate, &a.gate) {
            (Some(gw), Some(gb)) => Some(LinearOps::nt(ctx, s(&a.h), gw, None, s(gb))?),
            (None, None) => None,
            _ => return Err(KernelError::Internal("gate weights and gate buffer disagree".into())),
        };
        Ok(BlockOps {
            attn_norm: NormOp::new(ctx, dims.norm, s(&a.x), &w.attn_norm, s(&a.h))?,
            q: LinearOps::nt(ctx, s(&a.h), &w.q.w, w.q.b.as_ref(), s(&a.q))?,
            k: LinearOps::nt(ctx, s(&a.h), &w.k.w, w.k.b.as_ref(), s(&a.k))?,
            v: LinearOps::nt(ctx, s(&a.h), &w.v.w, w.v.b.as_ref(), s(&a.v))?,
            o: LinearOps::nt(ctx, s(&a.att), &w.o.w, w.o.b.as_ref(), s(&a.h))?,
            ffn_norm: NormOp::new(ctx, dims.norm, s(&a.x), &w.ffn_norm, s(&a.h))?,
            up: LinearOps::nt(ctx, s(&a.h), &w.up.w, w.up.b.as_ref(), s(&a.up))?,
            gate,
            act,
            down: LinearOps::nn(ctx, s(down_in), &w.down_t, w.down_bias.as_ref(), s(&a.h))?,
        })
    }

    /// `h = norm(x)`, then `q, k, v = h·Wᵀ` for `n` tokens (`q` only when `with_q`: a skipped layer needs
    /// just its keys and values).
    pub(crate) fn record_qkv(&self, r: &mut Rec<'_, '_>, dims: &Dims, n: usize, with_q: bool) -> KResult<()> {
        r.op("attn.norm", |c, p| self.attn_norm.record(c, p, n, dims.eps))?;
        if with_q {
            r.op("attn.q", |c, p| self.q.record(c, p, n, dims.d, dims.qd))?;
        }
        r.op("attn.k", |c, p| self.k.record(c, p, n, dims.d, dims.kvd))?;
        r.op("attn.v", |c, p| self.v.record(c, p, n, dims.d, dims.kvd))
    }

    /// `x += att·Woᵀ`, then the FFN over the first `width` neurons: `x += down(act(up(norm(x))))`.
    pub(crate) fn record_out_and_ffn(
        &self,
        r: &mut Rec<'_, '_>,
        dims: &Dims,
        add: &AddOp,
        n: usize,
        width: usize,
    ) -> KResult<()> {
        r.op("attn.o", |c, p| self.o.record(c, p, n, dims.qd, dims.d))?;
        r.op("residual", |c, p| add.record(c, p, n * dims.d))?;
        r.op("ffn.norm", |c, p| self.ffn_norm.record(c, p, n, dims.eps))?;
        r.op("ffn.up", |c, p| self.up.record(c, p, n, dims.d, width))?;
        if let Some(g) = &self.gate {
            r.op("ffn.gate", |c, p| g.record(c, p, n, dims.d, width))?;
        }
        r.op("ffn.act", |c, p| match &self.act {
            ActOp::Gated(op) => op.record(c, p, n * width, GateAct::Silu),
            ActOp::Gelu(op, mode) => op.record(c, p, n * width, *mode),
        })?;
        r.op("ffn.down", |c, p| self.down.record(c, p, n, width, dims.d))?;
        r.op("residual", |c, p| add.record(c, p, n * dims.d))
    }
}

/// Finishes `encoder` with a copy of `len` bytes at byte `offset` of `src` into a pooled staging buffer,
/// submits it (one submission for the whole step) and returns the bytes.
pub(crate) fn submit_and_read(
    ctx: &GpuContext,
    mut encoder: wgpu::CommandEncoder,
    src: &wgpu::Buffer,
    offset: u64,
    len: u64,
) -> KResult<Vec<u8>> {
    let staging = ctx.acquire(len.max(4), wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST)?;
    let result = (|| {
        encoder.copy_buffer_to_buffer(src, offset, &staging, 0, len);
        ctx.submit(encoder)?;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..len, move |r| {
            let _ = tx.send(r);
        });
        ctx.wait()?;
        rx.recv()
            .map_err(|e| KernelError::Readback(e.to_string()))?
            .map_err(|e| KernelError::Readback(e.to_string()))?;
        let out = {
            let view = staging.get_mapped_range(0..len).map_err(|e| KernelError::Readback(format!("{e:?}")))?;
            view.to_vec()
        };
        staging.unmap();
        Ok(out)
    })();
    if result.is_ok() {
        // A staging buffer whose mapping failed half-way is dropped rather than pooled.
        ctx.release(staging);
    }
    result
}

/// f32 values of little-endian bytes.
pub(crate) fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
