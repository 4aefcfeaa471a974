// attention: out = softmax(q · kᵀ * scale) · v over a KV cache, per head.
//
// Layouts (row-major, f32):
//   q   [n_q, n_heads, head_dim]
//   k,v [>= n_kv positions, n_kv_heads, head_dim]   (the KV cache)
//   out [n_q, n_heads, head_dim]
// Causal mode (causal = 1): query i sits at absolute position pos0 + i and sees
// keys 0..=pos0+i (clamped to n_kv). Bidirectional mode (causal = 0, ViT):
// every query sees keys 0..n_kv. GQA: q head h reads kv head
// h / (n_heads / n_kv_heads).
//
// One 64-invocation workgroup per (head, query) = (wid.x, wid.y). Keys are
// processed in blocks of 64 with an online (flash-style) softmax: each
// invocation scores one key of the block, the block max/sum are reduced in
// workgroup memory, and each invocation accumulates up to 4 output dimensions
// (head_dim <= 256).

struct Params {
    n_q: u32,
    n_kv: u32,
    n_heads: u32,
    n_kv_heads: u32,
    head_dim: u32,
    pos0: u32,
    causal: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;
const MAX_HD: u32 = 256u;
const NEG_BIG: f32 = -3.0e38;

var<workgroup> qs: array<f32, 256>;
var<workgroup> probs: array<f32, 64>;
var<workgroup> red: array<f32, 64>;

fn block_max(val: f32, t: u32) -> f32 {
    red[t] = val;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] = max(red[t], red[t + s]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn block_sum(val: f32, t: u32) -> f32 {
    red[t] = val;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let h = wid.x;
    let i = wid.y;
    if (h >= p.n_heads || i >= p.n_q) {
        return;
    }
    let hd = p.head_dim;
    let group = max(p.n_heads / max(p.n_kv_heads, 1u), 1u);
    let kvh = h / group;
    let kv_row = p.n_kv_heads * hd;
    let q_base = (i * p.n_heads + h) * hd;
    for (var d = t; d < hd; d += WG) {
        qs[d] = q[q_base + d];
    }
    workgroupBarrier();

    var count = p.n_kv;
    if (p.causal != 0u) {
        count = min(p.pos0 + i + 1u, p.n_kv);
    }

    var m_run = NEG_BIG;
    var l_run = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var j0 = 0u; j0 < count; j0 += WG) {
        let j = j0 + t;
        var s = NEG_BIG;
        if (j < count) {
            let kb = j * kv_row + kvh * hd;
            var dot = 0.0;
            for (var d = 0u; d < hd; d++) {
                dot = fma(qs[d], k[kb + d], dot);
            }
            s = dot * p.scale;
        }
        let m_new = max(m_run, block_max(s, t));
        var pj = 0.0;
        if (j < count) {
            pj = exp(s - m_new);
        }
        probs[t] = pj;
        let alpha = exp(m_run - m_new);
        l_run = l_run * alpha + block_sum(pj, t);
        for (var r = 0u; r < 4u; r++) {
            acc[r] *= alpha;
        }
        let nb = min(WG, count - j0);
        for (var jj = 0u; jj < nb; jj++) {
            let pw = probs[jj];
            let vb = (j0 + jj) * kv_row + kvh * hd;
            for (var r = 0u; r < 4u; r++) {
                let d = t + r * WG;
                if (d < hd) {
                    acc[r] = fma(pw, v[vb + d], acc[r]);
                }
            }
        }
        m_run = m_new;
        workgroupBarrier();
    }

    var inv_l = 0.0;
    if (l_run > 0.0) {
        inv_l = 1.0 / l_run;
    }
    for (var r = 0u; r < 4u; r++) {
        let d = t + r * WG;
        if (d < hd) {
            out[q_base + d] = acc[r] * inv_l;
        }
    }
}
