// bias_add: y[r, c] += bias[c] in place, for r < n, c < m. bias has the weight
// type of the variant. One invocation per element (folded grid).
//!enable

struct Params {
    n: u32,
    m: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
//!typed bias 2

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * 256u + t;
    if (i >= p.n * p.m) {
        return;
    }
    y[i] = y[i] + load_bias(i % p.m);
}
