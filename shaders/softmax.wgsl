// softmax: row-wise softmax in place over x[n, d]. One 256-invocation
// workgroup per row (folded grid): max reduction, sum of exp, normalise.

struct Params {
    n: u32,
    d: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

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
    var m = -3.0e38;
    for (var c = t; c < p.d; c += WG) {
        m = max(m, x[base + c]);
    }
    red[t] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] = max(red[t], red[t + s]);
        }
        workgroupBarrier();
    }
    let mx = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var c = t; c < p.d; c += WG) {
        sum += exp(x[base + c] - mx);
    }
    red[t] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / red[0];
    for (var c = t; c < p.d; c += WG) {
        x[base + c] = exp(x[base + c] - mx) * inv;
    }
}
