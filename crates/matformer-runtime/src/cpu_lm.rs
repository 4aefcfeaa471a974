//! MatLM forward on the CPU: batched prefill and incremental decode over a KV cache.
//! FFN work is proportional to each layer's active width (neuron-major prefixes).

use std::sync::Arc;

use matformer_cpu::fast;
use matformer_graph::{Embeddings, Family, ModelConfig, ModelWeights, Position, Submodel, TensorRef};

use crate::blocks::{ffn_forward, grow, FfnScratch};
use crate::dispatch::{linear, norm, with_elems};
use crate::error::Result;
use crate::executor::{require_lm, validate_tokens, LmExecutor, Logits};

/// Per-layer key/value cache, `[max_seq_len, n_kv_heads * head_dim]` each, allocated once.
#[derive(Default)]
struct KvCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

/// Reusable activations so decode steps do not allocate.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    ffn: FfnScratch,
    positions: Vec<usize>,
}

/// A MatLM held in host memory, run by the multithreaded CPU kernels.
pub struct CpuLm {
    weights: Arc<ModelWeights>,
    cache: KvCache,
    scratch: Scratch,
}

impl CpuLm {
    /// Wrap shared weights; fails for a ViT.
    pub fn new(weights: Arc<ModelWeights>) -> Result<Self> {
        require_lm(&weights.config)?;
        Ok(CpuLm { weights, cache: KvCache::default(), scratch: Scratch::default() })
    }

    /// The weights this executor runs.
    pub fn weights(&self) -> &Arc<ModelWeights> {
        &self.weights
    }
}

impl LmExecutor for CpuLm {
    fn config(&self) -> &ModelConfig {
        &self.weights.config
    }

    fn cached_len(&self) -> usize {
        self.cache.len
    }

    fn truncate(&mut self, len: usize) {
        self.cache.len = self.cache.len.min(len);
    }

    fn device_name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn fork(&self) -> Result<Box<dyn LmExecutor>> {
        Ok(Box::new(CpuLm::new(self.weights.clone())?))
    }

    fn forward(&mut self, tokens: &[u32], sub: &Submodel, which: Logits) -> Result<Vec<f32>> {
        let w = &*self.weights;
        let cfg = &w.config;
        sub.validate(cfg)?;
        validate_tokens(cfg, tokens, self.cache.len)?;
        let (n, d, hd) = (tokens.len(), cfg.d_model, cfg.head_dim());
        let (qd, kvd) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
        let p0 = self.cache.len;
        let max = cfg.max_seq_len();
        if self.cache.k.len() != cfg.n_layers {
            self.cache.k = vec![vec![0.0; max * kvd]; cfg.n_layers];
            self.cache.v = vec![vec![0.0; max * kvd]; cfg.n_layers];
        }
        let s = &mut self.scratch;
        s.positions.clear();
        s.positions.extend(p0..p0 + n);
        let x = grow(&mut s.x, n * d);
        let Embeddings::Lm { tokens: table, positions } = &w.embed else { unreachable!("checked LM") };
        with_elems!(table.as_ref(), |t| fast::embedding(t, tokens, d, x));
        if let Some(pos) = positions {
            with_elems!(pos.as_ref().slice(p0 * d, (p0 + n) * d), |p| fast::add_bias(x, p, 1, n * d));
        }
        let rope_theta = match cfg.family {
            Family::Lm { position: Position::Rope { theta }, .. } => Some(theta),
            _ => None,
        };
        for (l, layer) in w.layers.iter().enumerate() {
            // A skipped layer still writes its keys and values (from the residual stream entering it), so
            // a later submodel that runs the layer finds every cached position filled.
            let skipped = sub.skip[l];
            let h = grow(&mut s.h, n * d);
            norm(cfg.norm, &layer.attn_norm, x, h, n, d, cfg.norm_eps);
            let k = grow(&mut s.k, n * kvd);
            linear(h, &layer.k, k, n, d);
            let v = grow(&mut s.v, n * kvd);
            linear(h, &layer.v, v, n, d);
            if let Some(theta) = rope_theta {
                fast::rope(k, n, cfg.n_kv_heads, hd, &s.positions, theta);
            }
            let (kc, vc) = (&mut self.cache.k[l], &mut self.cache.v[l]);
            kc[p0 * kvd..(p0 + n) * kvd].copy_from_slice(k);
            vc[p0 * kvd..(p0 + n) * kvd].copy_from_slice(v);
            if skipped {
                continue;
            }
            // Attention block.
            let q = grow(&mut s.q, n * qd);
            linear(h, &layer.q, q, n, d);
            if let Some(theta) = rope_theta {
                fast::rope(q, n, cfg.n_heads, hd, &s.positions, theta);
            }
            let total = p0 + n;
            let att = grow(&mut s.att, n * qd);
            fast::attention(
                q,
                &kc[..total * kvd],
                &vc[..total * kvd],
                att,
                n,
                total,
                cfg.n_heads,
                cfg.n_kv_heads,
                hd,
                Some(p0),
            );
            linear(att, &layer.o, h, n, qd);
            fast::add_inplace(x, h);
            // FFN block over the active prefix of neurons.
            norm(cfg.norm, &layer.ffn_norm, x, h, n, d, cfg.norm_eps);
            ffn_forward(cfg.ffn, layer, sub.widths[l], h, n, &mut s.ffn);
            fast::add_inplace(x, h);
        }
        self.cache.len = p0 + n;
        // Final norm and head, only for the rows asked for.
        let (rows, xs) = match which {
            Logits::All => (n, &x[..]),
            Logits::Last => (1, &x[(n - 1) * d..]),
        };
        let h = grow(&mut s.h, rows * d);
        norm(cfg.norm, &w.final_norm, xs, h, rows, d, cfg.norm_eps);
        let vocab = cfg.n_outputs();
        let mut logits = vec![0.0; rows * vocab];
        let head = w.head_weight();
        with_elems!(head.as_ref(), |hw| fast::matmul_nt(h, hw, None, &mut logits, rows, d, vocab));
        Ok(logits)
    }
}
