// layernorm: y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gamma (+ beta).
//
// One 256-invocation workgroup per row (folded grid). Two passes over the row
// (mean, then the centred variance) with tree reductions in workgroup memory.
// gamma/beta have the weight type of the variant.
//!enable

struct Params {
    n: u32,
    d: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
//!typed gamma 3
//!typed beta 4 optional

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

fn block_sum(v: f32, t: u32) -> f32 {
    red[t] = v;
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

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.n) {
        return;
    }
    let base = row * p.d;
    var s = 0.0;
    for (var c = t; c < p.d; c += WG) {
        s += x[base + c];
    }
    let mean = block_sum(s, t) / f32(p.d);
    var q = 0.0;
    for (var c = t; c < p.d; c += WG) {
        let dv = x[base + c] - mean;
        q = fma(dv, dv, q);
    }
    let inv = inverseSqrt(block_sum(q, t) / f32(p.d) + p.eps);
    for (var c = t; c < p.d; c += WG) {
        var v = (x[base + c] - mean) * inv * load_gamma(c);
        if (HAS_BETA) {
            v += load_beta(c);
        }
        y[base + c] = v;
    }
}
