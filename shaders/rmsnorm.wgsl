// rmsnorm: y[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) * gamma.
//
// One 256-invocation workgroup per row (folded grid), tree reduction in
// workgroup memory. gamma has the weight type of the variant.
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

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

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
    var q = 0.0;
    for (var c = t; c < p.d; c += WG) {
        let v = x[base + c];
        q = fma(v, v, q);
    }
    red[t] = q;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    let inv = inverseSqrt(red[0] / f32(p.d) + p.eps);
    for (var c = t; c < p.d; c += WG) {
        y[base + c] = x[base + c] * inv * load_gamma(c);
    }
}
