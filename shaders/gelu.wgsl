// gelu: x[i] = gelu(x[i]) in place, for i < len. mode 0 = exact erf GELU,
// mode 1 = tanh approximation. One invocation per element (folded grid).
//!include activations

struct Params {
    len: u32,
    mode: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * 256u + t;
    if (i >= p.len) {
        return;
    }
    let v = x[i];
    if (p.mode == 1u) {
        x[i] = gelu_tanh(v);
    } else {
        x[i] = gelu_erf(v);
    }
}
