//! [`GpuLm`]: a MatLM on wgpu with a device-resident KV cache.

use std::sync::Arc;

use matformer_graph::{Embeddings, Family, ModelConfig, ModelWeights, Position, Submodel};
use matformer_kernels::wgpu;
use matformer_kernels::{
    AddOp, ArgmaxOp, AttentionArgs, AttentionMask, AttentionOp, EmbeddingArgs, EmbeddingOp, GpuContext, KvWriteOp,
    Result as KResult, RopeArgs, RopeOp, SampleArgs, SampleOp, WeightBuffer,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::common::{
    activation, f32s, s, submit_and_read, upload_opt, upload_tensor, Acts, BlockOps, Dims, LayerWeights, LinWeights,
    LinearOps, NormOp, NormWeights, Rec,
};
use super::profile::{Profile, Profiler};
use crate::error::{Result, RuntimeError};
use crate::executor::{require_lm, validate_tokens, LmExecutor, Logits};
use crate::generate::{Generation, StopReason};
use crate::sampling::SamplingParams;

/// Most tokens one submission processes; longer inputs (prefill, evaluation windows) are run in chunks of
/// this many positions, one submission each. Also capped so that `[chunk, vocab]` logits fit one binding.
pub const PREFILL_CHUNK: usize = 256;

/// The ops of one layer: the shared block plus the causal attention over this layer's KV cache.
struct LayerOps {
    block: BlockOps,
    k_write: KvWriteOp,
    v_write: KvWriteOp,
    attn: AttentionOp,
}

/// Every op instance of the model, built once.
struct LmOps {
    embed: EmbeddingOp,
    /// Learned positions: gather rows `p0..p0+n` of the position table, then `x += rows`.
    pos: Option<(EmbeddingOp, AddOp)>,
    rope_q: Option<RopeOp>,
    rope_k: Option<RopeOp>,
    /// `x += h` (both residual adds of every layer: identical uniforms).
    add: AddOp,
    layers: Vec<LayerOps>,
    /// `Logits::All`: final norm of every row, head over every row.
    norm_all: NormOp,
    head_all: LinearOps,
    /// Last row only (decode, sampling): final norm and head over a copy of the last residual row.
    norm_last: NormOp,
    head_last: LinearOps,
    argmax: ArgmaxOp,
    sample: SampleOp,
}

/// The uploaded weights of an LM, shared by [`GpuLm::fork`]s.
struct DeviceWeights {
    tok: WeightBuffer,
    pos: Option<WeightBuffer>,
    head: Option<LinWeights>,
    final_norm: NormWeights,
    layers: Vec<LayerWeights>,
    bytes: u64,
}

/// What a step returns.
#[derive(Clone, Copy, Debug)]
enum Want {
    All,
    Last,
    Argmax,
    Sample { temperature: f32, top_k: usize, top_p: f32, u: f32 },
}

/// A MatLM on a wgpu device: weights uploaded once in their stored dtype, activations and a
/// `[max_seq_len, n_kv_heads * head_dim]` K and V cache per layer allocated once, every op instance built
/// once. Each [`LmExecutor::forward`] records one command encoder (per [`PREFILL_CHUNK`] tokens) with the
/// submodel's widths as uniforms and reads back only the requested logits; [`GpuLm::forward_argmax`] and
/// [`GpuLm::forward_sample`] read back a single token id.
///
/// Several `GpuLm`s can share one [`GpuContext`] (and its pipeline cache); [`GpuLm::fork`] makes another
/// executor over the same device weights (e.g. the draft next to the target in speculative decoding).
pub struct GpuLm {
    ctx: Arc<GpuContext>,
    cfg: ModelConfig,
    dims: Dims,
    chunk: usize,
    cache_len: usize,
    rope_theta: Option<f32>,
    ids: wgpu::Buffer,
    pos_ids: Option<wgpu::Buffer>,
    acts: Acts,
    x_last: wgpu::Buffer,
    logits_last: wgpu::Buffer,
    logits_all: wgpu::Buffer,
    token: wgpu::Buffer,
    ops: LmOps,
    pos_scratch: Vec<u32>,
    profiler: Option<Profiler>,
    // Owned so that the bound buffers live as long as the ops (bind groups also keep them alive).
    weights: Arc<DeviceWeights>,
    _buffers: (Option<wgpu::Buffer>, wgpu::Buffer, Vec<(wgpu::Buffer, wgpu::Buffer)>),
}

impl GpuLm {
    /// Uploads `w` to the device of `ctx` and builds every buffer and op. Fails for a ViT, for shapes the
    /// kernels do not support (head_dim > 256) and for buffers beyond the adapter's limits.
    pub fn new(ctx: Arc<GpuContext>, w: &ModelWeights) -> Result<Self> {
        Self::with_max_chunk(ctx, w, PREFILL_CHUNK)
    }

    /// Like [`GpuLm::new`] with at most `max_chunk` tokens per submission (smaller saves activation memory).
    pub fn with_max_chunk(ctx: Arc<GpuContext>, w: &ModelWeights, max_chunk: usize) -> Result<Self> {
        require_lm(&w.config)?;
        let Embeddings::Lm { tokens: tok_t, positions: pos_t } = &w.embed else {
            return Err(RuntimeError::InvalidInput("an LM config with ViT embeddings".into()));
        };
        let c = &*ctx;
        // Weights, once, in their stored dtype.
        let tok = upload_tensor(c, "tok_embed.weight", tok_t)?;
        let pos = upload_opt(c, "pos_embed.weight", pos_t.as_ref())?;
        let head = w.head.as_ref().map(|h| LinWeights::upload(c, "head", h)).transpose()?;
        let final_norm = NormWeights::upload(c, "final_norm", &w.final_norm)?;
        let layers: Vec<LayerWeights> =
            w.layers.iter().enumerate().map(|(i, l)| LayerWeights::upload(c, i, l)).collect::<KResult<_>>()?;
        let bytes = tok.size_bytes()
            + pos.as_ref().map_or(0, WeightBuffer::size_bytes)
            + head.as_ref().map_or(0, |h| h.w.size_bytes() + h.b.as_ref().map_or(0, WeightBuffer::size_bytes))
            + layers.iter().map(LayerWeights::size_bytes).sum::<u64>();
        let weights = Arc::new(DeviceWeights { tok, pos, head, final_norm, layers, bytes });
        Self::build(ctx, w.config.clone(), weights, max_chunk)
    }

    /// A second executor over the SAME device weights (no upload) with its own activations and KV cache,
    /// e.g. the draft executor of self-speculative decoding next to the target.
    pub fn fork(&self) -> Result<Self> {
        Self::build(self.ctx.clone(), self.cfg.clone(), self.weights.clone(), self.chunk)
    }

    fn build(ctx: Arc<GpuContext>, cfg: ModelConfig, weights: Arc<DeviceWeights>, max_chunk: usize) -> Result<Self> {
        let Family::Lm { position, .. } = cfg.family else {
            return Err(RuntimeError::WrongFamily { expected: "MatLM", actual: "MatViT" });
        };
        let dims = Dims::of(&cfg);
        if dims.hd > matformer_kernels::ops::attention::MAX_HEAD_DIM {
            return Err(RuntimeError::Gpu(format!(
                "head_dim {} is above the attention kernel's maximum of {}",
                dims.hd,
                matformer_kernels::ops::attention::MAX_HEAD_DIM
            )));
        }
        let vocab = cfg.n_outputs();
        let max_seq = cfg.max_seq_len();
        let widest_row = vocab.max(dims.ff_max).max(dims.qd).max(dims.d) as u64 * 4;
        let by_binding = (ctx.max_storage_buffer_binding_size() / widest_row).max(1) as usize;
        let chunk = max_chunk.max(1).min(max_seq).min(by_binding);
        let rope_theta = match position {
            Position::Rope { theta } => Some(theta),
            Position::Learned => None,
        };
        let c = &*ctx;
        let DeviceWeights { tok, pos: pos_w, head, final_norm, layers, .. } = &*weights;

        // Activations and the KV cache, once.
        let ids = c.storage_buffer("token ids", chunk)?;
        let pos_ids = pos_w.as_ref().map(|_| c.storage_buffer("position ids", chunk)).transpose()?;
        let pos_x = pos_w.as_ref().map(|_| activation(c, "position rows", chunk * dims.d)).transpose()?;
        let acts = Acts::new(c, chunk, &dims)?;
        let x_last = activation(c, "x last", dims.d)?;
        let h_last = activation(c, "h last", dims.d)?;
        let logits_last = activation(c, "logits last", vocab)?;
        let logits_all = activation(c, "logits", chunk * vocab)?;
        let token = c.storage_buffer("token", 1)?;
        let kv: Vec<(wgpu::Buffer, wgpu::Buffer)> = (0..cfg.n_layers)
            .map(|l| {
                Ok((
                    activation(c, &format!("k cache {l}"), max_seq * dims.kvd)?,
                    activation(c, &format!("v cache {l}"), max_seq * dims.kvd)?,
                ))
            })
            .collect::<KResult<_>>()?;

        // Op instances, once.
        let (head_w, head_b) = match head {
            Some(h) => (&h.w, h.b.as_ref()),
            None => (tok, None),
        };
        let pos = match (&pos_w, &pos_ids, &pos_x) {
            (Some(pw), Some(pi), Some(px)) => {
                Some((EmbeddingOp::new(c, pw, s(pi), s(px))?, AddOp::new(c, s(&acts.x), s(px))?))
            }
            _ => None,
        };
        let layer_ops = layers
            .iter()
            .zip(&kv)
            .map(|(lw, (kc, vc))| {
                Ok(LayerOps {
                    block: BlockOps::new(c, &dims, lw, &acts)?,
                    k_write: KvWriteOp::new(c, s(&acts.k), s(kc))?,
                    v_write: KvWriteOp::new(c, s(&acts.v), s(vc))?,
                    attn: AttentionOp::new(c, s(&acts.q), s(kc), s(vc), s(&acts.att))?,
                })
            })
            .collect::<KResult<_>>()?;
        let ops = LmOps {
            embed: EmbeddingOp::new(c, tok, s(&ids), s(&acts.x))?,
            pos,
            rope_q: rope_theta.map(|_| RopeOp::new(c, s(&acts.q))).transpose()?,
            rope_k: rope_theta.map(|_| RopeOp::new(c, s(&acts.k))).transpose()?,
            add: AddOp::new(c, s(&acts.x), s(&acts.h))?,
            layers: layer_ops,
            norm_all: NormOp::new(c, dims.norm, s(&acts.x), final_norm, s(&acts.h))?,
            head_all: LinearOps::nt(c, s(&acts.h), head_w, head_b, s(&logits_all))?,
            norm_last: NormOp::new(c, dims.norm, s(&x_last), final_norm, s(&h_last))?,
            head_last: LinearOps::nt(c, s(&h_last), head_w, head_b, s(&logits_last))?,
            argmax: ArgmaxOp::new(c, s(&logits_last), s(&token))?,
            sample: SampleOp::new(c, s(&logits_last), s(&token))?,
        };
        ctx.check()?;
        Ok(GpuLm {
            ctx,
            cfg,
            dims,
            chunk,
            cache_len: 0,
            rope_theta,
            ids,
            pos_ids,
            acts,
            x_last,
            logits_last,
            logits_all,
            token,
            ops,
            pos_scratch: Vec::with_capacity(chunk),
            profiler: None,
            weights,
            _buffers: (pos_x, h_last, kv),
        })
    }

    /// The device context.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Device bytes held by the uploaded weights (shared with [`GpuLm::fork`]s).
    pub fn weight_bytes(&self) -> u64 {
        self.weights.bytes
    }

    /// Most tokens recorded per submission (longer inputs are chunked).
    pub fn max_chunk(&self) -> usize {
        self.chunk
    }

    /// Runs `tokens` like [`LmExecutor::forward`] and returns the argmax of the last token's logits,
    /// computed on the device: only one `u32` is read back.
    pub fn forward_argmax(&mut self, tokens: &[u32], sub: &Submodel) -> Result<u32> {
        match self.run(tokens, sub, Want::Argmax)? {
            Out::Token(t) => Ok(t),
            Out::Logits(_) => unreachable!("argmax returns a token"),
        }
    }

    /// Runs `tokens` and samples the next token on the device from the last token's logits with
    /// `params` (temperature, top-k, then top-p of the top-k mass; `temperature == 0` is the argmax) and
    /// the uniform random number `u` in `[0, 1)`. Only one `u32` is read back. The distribution equals the
    /// host [`crate::Sampler`]'s; the mapping from random numbers to tokens differs, so seeded runs do not
    /// reproduce host-sampled text token for token (greedy runs do).
    pub fn forward_sample(&mut self, tokens: &[u32], sub: &Submodel, params: &SamplingParams, u: f32) -> Result<u32> {
        params.validate()?;
        if !(0.0..1.0).contains(&u) {
            return Err(RuntimeError::InvalidInput(format!("u must be in [0, 1), got {u}")));
        }
        let want = if params.temperature == 0.0 {
            Want::Argmax
        } else {
            Want::Sample { temperature: params.temperature, top_k: params.top_k, top_p: params.top_p, u }
        };
        match self.run(tokens, sub, want)? {
            Out::Token(t) => Ok(t),
            Out::Logits(_) => unreachable!("sampling returns a token"),
        }
    }

    /// Turns per-op GPU timing on or off (see [`Profile`]). With it on, every submission writes a
    /// timestamp around each op and reads them back after the step, which costs an extra readback.
    pub fn set_profiling(&mut self, on: bool) -> Result<()> {
        self.profiler = if on { Some(Profiler::new(&self.ctx)?) } else { None };
        Ok(())
    }

    /// The per-op timings accumulated since profiling was turned on or last taken (empty when off).
    pub fn take_profile(&mut self) -> Profile {
        self.profiler.as_mut().map(Profiler::take).unwrap_or_default()
    }

    fn run(&mut self, tokens: &[u32], sub: &Submodel, want: Want) -> Result<Out> {
        sub.validate(&self.cfg)?;
        validate_tokens(&self.cfg, tokens, self.cache_len)?;
        let start = self.cache_len;
        let result = self.run_chunks(tokens, sub, want);
        if result.is_err() {
            // Nothing of a failed call stays in the cache; op instances may be recorded afresh.
            self.cache_len = start;
            self.ctx.discard_recording();
            if let Some(p) = &mut self.profiler {
                p.discard();
            }
        }
        result.map_err(RuntimeError::from)
    }

    fn run_chunks(&mut self, tokens: &[u32], sub: &Submodel, want: Want) -> KResult<Out> {
        let vocab = self.cfg.n_outputs();
        let d = self.dims.d;
        let mut all = match want {
            Want::All => Vec::with_capacity(tokens.len() * vocab),
            _ => Vec::new(),
        };
        let n_chunks = tokens.len().div_ceil(self.chunk);
        let mut out = None;
        for (ci, chunk) in tokens.chunks(self.chunk).enumerate() {
            let (n, p0) = (chunk.len(), self.cache_len);
            let ctx = &*self.ctx;
            ctx.write_u32(&self.ids, 0, chunk)?;
            if let Some(pid) = &self.pos_ids {
                self.pos_scratch.clear();
                self.pos_scratch.extend((p0..p0 + n).map(|p| p as u32));
                ctx.write_u32(pid, 0, &self.pos_scratch)?;
            }
            let mut enc = ctx.encoder("matformer lm step");
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("matformer lm layers"),
                    timestamp_writes: None,
                });
                let mut r = Rec { ctx, pass: &mut pass, prof: self.profiler.as_mut() };
                record_layers(&mut r, &self.ops, &self.dims, self.rope_theta, sub, n, p0)?;
                if let Want::All = want {
                    r.op("final_norm", |c, p| self.ops.norm_all.record(c, p, n, self.dims.eps))?;
                    r.op("head", |c, p| self.ops.head_all.record(c, p, n, d, vocab))?;
                }
            }
            let last = ci + 1 == n_chunks;
            match want {
                Want::All => {
                    if let Some(p) = &mut self.profiler {
                        p.finish(&mut enc);
                    }
                    let bytes = submit_and_read(ctx, enc, &self.logits_all, 0, (n * vocab * 4) as u64)?;
                    all.extend(f32s(&bytes));
                }
                _ if !last => {
                    if let Some(p) = &mut self.profiler {
                        p.finish(&mut enc);
                    }
                    ctx.submit(enc)?;
                }
                _ => {
                    enc.copy_buffer_to_buffer(&self.acts.x, ((n - 1) * d * 4) as u64, &self.x_last, 0, (d * 4) as u64);
                    {
                        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some("matformer lm head"),
                            timestamp_writes: None,
                        });
                        let mut r = Rec { ctx, pass: &mut pass, prof: self.profiler.as_mut() };
                        let ops = &self.ops;
                        r.op("final_norm", |c, p| ops.norm_last.record(c, p, 1, self.dims.eps))?;
                        r.op("head", |c, p| ops.head_last.record(c, p, 1, d, vocab))?;
                        match want {
                            Want::Argmax => r.op("argmax", |c, p| ops.argmax.record(c, p, 1, vocab))?,
                            Want::Sample { temperature, top_k, top_p, u } => r.op("sample", |c, p| {
                                ops.sample.record(c, p, SampleArgs { d: vocab, row: 0, temperature, top_k, top_p, u })
                            })?,
                            _ => {}
                        }
                    }
                    if let Some(p) = &mut self.profiler {
                        p.finish(&mut enc);
                    }
                    out = Some(match want {
                        Want::Last => {
                            Out::Logits(f32s(&submit_and_read(ctx, enc, &self.logits_last, 0, (vocab * 4) as u64)?))
                        }
                        _ => {
                            let b = submit_and_read(ctx, enc, &self.token, 0, 4)?;
                            Out::Token(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        }
                    });
                }
            }
            if let Some(p) = &mut self.profiler {
                p.collect(ctx)?;
            }
            self.cache_len = p0 + n;
        }
        Ok(match want {
            Want::All => Out::Logits(all),
            _ => out.expect("the last chunk produces the output"),
        })
    }
}

/// Result of a step.
enum Out {
    Logits(Vec<f32>),
    Token(u32),
}

/// Records embedding and every layer for `n` tokens at positions `p0..p0 + n` (a skipped layer only
/// writes its keys and values).
fn record_layers(
    r: &mut Rec<'_, '_>,
    ops: &LmOps,
    dims: &Dims,
    rope_theta: Option<f32>,
    sub: &Submodel,
    n: usize,
    p0: usize,
) -> KResult<()> {
    let emb = EmbeddingArgs { n, scale: 1.0 };
    r.op("embed", |c, p| ops.embed.record(c, p, emb))?;
    if let Some((pe, add)) = &ops.pos {
        r.op("pos", |c, p| {
            pe.record(c, p, emb)?;
            add.record(c, p, n * dims.d)
        })?;
    }
    for (l, lo) in ops.layers.iter().enumerate() {
        // A skipped layer still writes its keys and values (see `CpuLm::forward`).
        let active = !sub.skip[l];
        lo.block.record_qkv(r, dims, n, active)?;
        if let (Some(rq), Some(rk), Some(theta)) = (&ops.rope_q, &ops.rope_k, rope_theta) {
            r.op("attn.rope", |c, p| {
                if active {
                    rq.record(
                        c,
                        p,
                        RopeArgs { n_tokens: n, n_heads: dims.n_heads, head_dim: dims.hd, pos0: p0, theta },
                    )?;
                }
                rk.record(c, p, RopeArgs { n_tokens: n, n_heads: dims.n_kv_heads, head_dim: dims.hd, pos0: p0, theta })
            })?;
        }
        r.op("attn.kv_write", |c, p| {
            lo.k_write.record(c, p, n, dims.kvd, p0)?;
            lo.v_write.record(c, p, n, dims.kvd, p0)
        })?;
        if !active {
            continue;
        }
        let args = AttentionArgs {
            n_q: n,
            n_kv: p0 + n,
            n_heads: dims.n_heads,
            n_kv_heads: dims.n_kv_heads,
            head_dim: dims.hd,
            mask: AttentionMask::Causal { pos0: p0 },
            scale: None,
        };
        r.op("attn.core", |c, p| lo.attn.record(c, p, args))?;
        lo.block.record_out_and_ffn(r, dims, &ops.add, n, sub.widths[l])?;
    }
    Ok(())
}

impl LmExecutor for GpuLm {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn forward(&mut self, tokens: &[u32], sub: &Submodel, which: Logits) -> Result<Vec<f32>> {
        let want = match which {
            Logits::All => Want::All,
            Logits::Last => Want::Last,
        };
        match self.run(tokens, sub, want)? {
            Out::Logits(l) => Ok(l),
            Out::Token(_) => unreachable!("logits requested"),
        }
    }

    fn cached_len(&self) -> usize {
        self.cache_len
    }

    fn truncate(&mut self, len: usize) {
        self.cache_len = self.cache_len.min(len);
    }

    fn device_name(&self) -> String {
        let i = self.ctx.adapter_info();
        format!("gpu ({}, {:?})", i.name, i.backend)
    }

    fn fork(&self) -> Result<Box<dyn LmExecutor>> {
        Ok(Box::new(GpuLm::fork(self)?))
    }
}

/// [`crate::generate()`] with the sampling done on the device: each step reads back one token id instead
/// of the vocabulary. Greedy output (`temperature == 0`) equals [`crate::generate()`]'s on the same
/// executor; sampled output follows the same distribution with a different random-number-to-token mapping.
/// Stops like [`crate::generate()`] (max tokens, or the context is full).
pub fn generate_on_device(
    exec: &mut GpuLm,
    prompt: &[u32],
    sub: &Submodel,
    max_tokens: usize,
    params: &SamplingParams,
    mut on_token: impl FnMut(u32),
) -> Result<Generation> {
    params.validate()?;
    exec.reset();
    validate_tokens(exec.config(), prompt, 0)?;
    if max_tokens == 0 {
        return Ok(Generation { tokens: vec![], stop: StopReason::MaxTokens });
    }
    let max_seq = exec.config().max_seq_len();
    let mut rng = StdRng::seed_from_u64(params.seed);
    let mut step = |exec: &mut GpuLm, toks: &[u32]| exec.forward_sample(toks, sub, params, rng.random::<f32>());
    let mut next = step(exec, prompt)?;
    let mut out = Vec::with_capacity(max_tokens);
    loop {
        out.push(next);
        on_token(next);
        if out.len() == max_tokens {
            return Ok(Generation { tokens: out, stop: StopReason::MaxTokens });
        }
        if exec.cached_len() + 1 > max_seq {
            return Ok(Generation { tokens: out, stop: StopReason::ContextFull });
        }
        next = step(exec, &[next])?;
    }
}
