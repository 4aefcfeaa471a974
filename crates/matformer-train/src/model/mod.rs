//! The training model: forward passes that keep activations and backward passes for both families,
//! run on any [`Submodel`] (per-layer FFN widths, skipped layers).

pub mod block;
pub mod params;

use matformer_graph::{Embeddings, Family, ModelWeights, Position, Submodel};

use block::{block_backward, block_forward, norm_bwd, norm_fwd, sized, zeroed, BlockActs, BlockCtx, BlockScratch};
use matformer_cpu::{backward as bw, fast};
use params::{fs, fsm, ob, obm};

/// Loss statistics of a forward pass.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CeStats {
    /// Sum of the per-row cross-entropies (nats).
    pub loss_sum: f64,
    /// Rows whose argmax equals the target.
    pub correct: usize,
}

/// One training or evaluation batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Batch {
    /// `batch` token sequences of length `seq`; `targets[i]` is the token that follows `tokens[i]`.
    Lm {
        /// Inputs `[batch·seq]`.
        tokens: Vec<u32>,
        /// Next-token targets `[batch·seq]`.
        targets: Vec<u32>,
        /// Sequences.
        batch: usize,
        /// Tokens per sequence.
        seq: usize,
    },
    /// `batch` images `[batch, C, H, W]` (pixels as the model expects them) with class labels.
    Vit {
        /// Pixels.
        images: Vec<f32>,
        /// Labels `[batch]`.
        labels: Vec<u32>,
        /// Images.
        batch: usize,
    },
}

impl Batch {
    /// Number of loss terms (predicted tokens or images).
    pub fn n_targets(&self) -> usize {
        match self {
            Batch::Lm { targets, .. } => targets.len(),
            Batch::Vit { labels, .. } => labels.len(),
        }
    }

    /// Split into at most `n` batches of consecutive sequences (MatLM) or images (MatViT), sizes
    /// differing by at most one, none empty.
    pub fn shards(&self, n: usize) -> Vec<Batch> {
        let items = match self {
            Batch::Lm { batch, .. } | Batch::Vit { batch, .. } => *batch,
        };
        let n = n.clamp(1, items.max(1));
        let mut out = Vec::with_capacity(n);
        let mut start = 0;
        for k in 0..n {
            let len = items / n + usize::from(k < items % n);
            out.push(match self {
                Batch::Lm { tokens, targets, seq, .. } => Batch::Lm {
                    tokens: tokens[start * seq..][..len * seq].to_vec(),
                    targets: targets[start * seq..][..len * seq].to_vec(),
                    batch: len,
                    seq: *seq,
                },
                Batch::Vit { images, labels, .. } => {
                    let per = images.len() / items.max(1);
                    Batch::Vit {
                        images: images[start * per..][..len * per].to_vec(),
                        labels: labels[start..][..len].to_vec(),
                        batch: len,
                    }
                }
            });
            start += len;
        }
        out
    }
}

/// Reusable activations and scratch of forward/backward passes.
#[derive(Default)]
pub struct Workspace {
    acts: Vec<BlockActs>,
    scratch: BlockScratch,
    x: Vec<f32>,
    xf: Vec<f32>,
    hf: Vec<f32>,
    patches: Vec<f32>,
    dpatches: Vec<f32>,
    pe: Vec<f32>,
    dlogits: Vec<f32>,
    dh: Vec<f32>,
    dxf: Vec<f32>,
    positions: Vec<usize>,
    /// Logits of the last forward pass: `[rows, n_outputs]` (every position of an LM batch, one row per image).
    pub logits: Vec<f32>,
}

/// Flatten images `[B, C, S, S]` into patches `[B·P, C·p·p]`, channel-major (c, y, x) like a PyTorch conv.
pub fn patchify(images: &[f32], batch: usize, channels: usize, image: usize, patch: usize, out: &mut [f32]) {
    let side = image / patch;
    let pdim = channels * patch * patch;
    let per = channels * image * image;
    assert_eq!(images.len(), batch * per, "patchify: wrong image buffer length");
    assert_eq!(out.len(), batch * side * side * pdim, "patchify: wrong patch buffer length");
    for (r, row) in out.chunks_exact_mut(pdim).enumerate() {
        let (b, pi) = (r / (side * side), r % (side * side));
        let (py, px) = (pi / side, pi % side);
        let img = &images[b * per..][..per];
        for c in 0..channels {
            for y in 0..patch {
                let src = c * image * image + (py * patch + y) * image + px * patch;
                let dst = c * patch * patch + y * patch;
                row[dst..dst + patch].copy_from_slice(&img[src..src + patch]);
            }
        }
    }
}

/// Forward `batch` through submodel `sub`; when `grads` is given, also run the backward pass of
/// `grad_scale · mean cross-entropy` and accumulate into `grads`. Returns the loss sum and correct count.
/// The logits stay in `ws.logits`.
pub fn forward_backward(
    w: &ModelWeights,
    grads: Option<&mut ModelWeights>,
    sub: &Submodel,
    batch: &Batch,
    ws: &mut Workspace,
    grad_scale: f32,
) -> CeStats {
    let cfg = &w.config;
    let d = cfg.d_model;
    let layers: Vec<usize> = sub.active_layers().collect();
    if ws.acts.len() < cfg.n_layers {
        ws.acts.resize_with(cfg.n_layers, BlockActs::default);
    }
    // Embeddings.
    let (bsz, seq, causal) = match (batch, &w.embed) {
        (Batch::Lm { tokens, batch, seq, .. }, Embeddings::Lm { tokens: table, positions }) => {
            let x = sized(&mut ws.x, batch * seq * d);
            fast::embedding(fs(table), tokens, d, x);
            if let Some(p) = positions {
                fast::add_bias(x, &fs(p)[..seq * d], *batch, seq * d);
            }
            (*batch, *seq, true)
        }
        (Batch::Vit { images, batch, .. }, Embeddings::Vit { patch, cls, positions }) => {
            let Family::Vit { image_size, patch_size, channels, .. } = cfg.family else { unreachable!() };
            let np = cfg.vit_n_patches();
            let pdim = channels * patch_size * patch_size;
            let seq = np + 1;
            let pt = sized(&mut ws.patches, batch * np * pdim);
            patchify(images, *batch, channels, image_size, patch_size, pt);
            let pe = sized(&mut ws.pe, batch * np * d);
            fast::matmul_nt(pt, fs(&patch.weight), ob(&patch.bias), pe, batch * np, pdim, d);
            let x = sized(&mut ws.x, batch * seq * d);
            let pos = fs(positions);
            for b in 0..*batch {
                let xs = &mut x[b * seq * d..][..seq * d];
                xs[..d].copy_from_slice(fs(cls));
                xs[d..].copy_from_slice(&pe[b * np * d..][..np * d]);
                for (v, &p) in xs.iter_mut().zip(pos) {
                    *v += p;
                }
            }
            (*batch, seq, false)
        }
        _ => panic!("batch family does not match the model family"),
    };
    let rope_theta = match cfg.family {
        Family::Lm { position: Position::Rope { theta }, .. } => Some(theta),
        _ => None,
    };
    ws.positions.clear();
    ws.positions.extend((0..bsz * seq).map(|r| r % seq));
    let rope = rope_theta.map(|theta| (theta, &ws.positions[..]));
    let ctx = BlockCtx { cfg, batch: bsz, seq, causal, rope };
    for &l in &layers {
        block_forward(ctx, &w.layers[l], sub.widths[l], &mut ws.x, &mut ws.acts[l]);
    }
    // Final norm and head: every position of an LM, the class token of a ViT.
    let rows = if causal { bsz * seq } else { bsz };
    let xf = sized(&mut ws.xf, rows * d);
    if causal {
        xf.copy_from_slice(&ws.x);
    } else {
        for b in 0..bsz {
            xf[b * d..][..d].copy_from_slice(&ws.x[b * seq * d..][..d]);
        }
    }
    let hf = sized(&mut ws.hf, rows * d);
    norm_fwd(cfg.norm, &w.final_norm, xf, hf, rows, d, cfg.norm_eps);
    let v = cfg.n_outputs();
    let logits = sized(&mut ws.logits, rows * v);
    let head_bias = w.head.as_ref().and_then(|h| ob(&h.bias));
    fast::matmul_nt(hf, fs(w.head_weight()), head_bias, logits, rows, d, v);
    let targets: &[u32] = match batch {
        Batch::Lm { targets, .. } => targets,
        Batch::Vit { labels, .. } => labels,
    };
    let stats = CeStats {
        loss_sum: fast::cross_entropy(logits, targets, rows, v) as f64 * rows as f64,
        correct: logits.chunks_exact(v).zip(targets).filter(|(r, &t)| fast::argmax(r) == t as usize).count(),
    };
    let Some(g) = grads else {
        return stats;
    };
    // Backward.
    let dlogits = zeroed(&mut ws.dlogits, rows * v);
    bw::cross_entropy_backward(&ws.logits, targets, rows, v, dlogits);
    if grad_scale != 1.0 {
        dlogits.iter_mut().for_each(|x| *x *= grad_scale);
    }
    let dh = zeroed(&mut ws.dh, rows * d);
    {
        let (gw, gb) = match &mut g.head {
            Some(h) => (fsm(&mut h.weight), obm(&mut h.bias)),
            None => match &mut g.embed {
                Embeddings::Lm { tokens, .. } => (fsm(tokens), None),
                Embeddings::Vit { .. } => unreachable!("a ViT has a head"),
            },
        };
        bw::matmul_nt_backward(&ws.dlogits, &ws.hf, fs(w.head_weight()), dh, gw, gb, rows, d, v);
    }
    let dxf = zeroed(&mut ws.dxf, rows * d);
    norm_bwd(cfg.norm, &w.final_norm, &mut g.final_norm, &ws.dh, &ws.xf, dxf, rows, d, cfg.norm_eps);
    // Reuse ws.x as the residual gradient.
    let dx = zeroed(&mut ws.x, bsz * seq * d);
    if causal {
        dx.copy_from_slice(dxf);
    } else {
        for b in 0..bsz {
            dx[b * seq * d..][..d].copy_from_slice(&dxf[b * d..][..d]);
        }
    }
    for &l in layers.iter().rev() {
        block_backward(ctx, &w.layers[l], &mut g.layers[l], dx, &ws.acts[l], &mut ws.scratch);
    }
    match (batch, &mut g.embed) {
        (Batch::Lm { tokens, .. }, Embeddings::Lm { tokens: gt, positions }) => {
            bw::embedding_backward(dx, tokens, d, fsm(gt));
            if let Some(gp) = positions {
                let gp = &mut fsm(gp)[..seq * d];
                for xs in dx.chunks_exact(seq * d) {
                    for (a, &b) in gp.iter_mut().zip(xs) {
                        *a += b;
                    }
                }
            }
        }
        (Batch::Vit { .. }, Embeddings::Vit { patch, cls, positions }) => {
            let np = seq - 1;
            let pdim = ws.patches.len() / (bsz * np);
            let dpe = sized(&mut ws.pe, bsz * np * d);
            let (gc, gp) = (fsm(cls), fsm(positions));
            for b in 0..bsz {
                let xs = &dx[b * seq * d..][..seq * d];
                for (a, &v) in gc.iter_mut().zip(&xs[..d]) {
                    *a += v;
                }
                for (a, &v) in gp.iter_mut().zip(xs) {
                    *a += v;
                }
                dpe[b * np * d..][..np * d].copy_from_slice(&xs[d..]);
            }
            // The patch gradient itself is not needed (pixels are inputs); it is a small scratch product.
            let dpt = zeroed(&mut ws.dpatches, bsz * np * pdim);
            let pw = match &w.embed {
                Embeddings::Vit { patch, .. } => fs(&patch.weight),
                Embeddings::Lm { .. } => unreachable!("checked above"),
            };
            bw::matmul_nt_backward(
                dpe,
                &ws.patches,
                pw,
                dpt,
                fsm(&mut patch.weight),
                obm(&mut patch.bias),
                bsz * np,
                pdim,
                d,
            );
        }
        _ => unreachable!("checked above"),
    }
    stats
}
