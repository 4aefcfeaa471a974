// silu_mul: gated FFN activation, in place in `gate`:
//   gate[i] = act(gate[i]) * up[i], i < len
// mode 0 = SiLU (Llama SwiGLU), 1 = exact GELU, 2 = tanh GELU (GeGLU, Gemma).
// One invocation per element (folded grid); len = n_tokens * active width.
//!include activations

struct Params {
    len: u32,
    mode: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;

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
    let g = gate[i];
    var a: f32;
    switch p.mode {
        case 1u: {
            a = gelu_erf(g);
        }
        case 2u: {
            a = gelu_tanh(g);
        }
        default: {
            a = silu(g);
        }
    }
    gate[i] = a * up[i];
}
