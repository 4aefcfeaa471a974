// rope: rotary position embedding, HF Llama `rotate_half` convention, in place.
//
// x is [n_tokens, n_heads, head_dim]; token i has position pos0 + i. For
// dimension pair (d, d + half), half = head_dim / 2:
//   inv_freq = theta^(-2d / head_dim), a = pos * inv_freq
//   x[d]        = x[d] * cos(a) - x[d + half] * sin(a)
//   x[d + half] = x[d + half] * cos(a) + x[d] * sin(a)
// One invocation per pair (folded grid). The angle is range-reduced to
// [-pi, pi] before sin/cos because GPU sin/cos lose accuracy on large arguments.

struct Params {
    n_tokens: u32,
    n_heads: u32,
    head_dim: u32,
    pos0: u32,
    theta: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_LO: f32 = 0.0019353071795864769;
const INV_TWO_PI: f32 = 0.15915494309189535;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let half = p.head_dim / 2u;
    let idx = (wid.x + wid.y * nwg.x) * 256u + t;
    if (idx >= p.n_tokens * p.n_heads * half) {
        return;
    }
    let d = idx % half;
    let th = idx / half;
    let tok = th / p.n_heads;
    let base = th * p.head_dim;
    let inv_freq = exp2(-f32(2u * d) / f32(p.head_dim) * log2(p.theta));
    let a = f32(p.pos0 + tok) * inv_freq;
    let kq = round(a * INV_TWO_PI);
    let r = (a - kq * TWO_PI_HI) - kq * TWO_PI_LO;
    let c = cos(r);
    let s = sin(r);
    let x1 = x[base + d];
    let x2 = x[base + d + half];
    x[base + d] = x1 * c - x2 * s;
    x[base + d + half] = x2 * c + x1 * s;
}
