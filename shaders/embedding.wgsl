// embedding: out[i, c] = table[ids[i], c] * scale.
//
// One invocation per output element (folded 2-D grid of 256-wide workgroups).
// The table is a (possibly row-split) weight binding; ids outside [0, vocab)
// produce a zero row instead of reading out of bounds.
//!enable

struct Params {
    n: u32,
    d: u32,
    vocab: u32,
    w_chunk: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
//!weights 4

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let idx = (wid.x + wid.y * nwg.x) * 256u + t;
    if (idx >= p.n * p.d) {
        return;
    }
    let i = idx / p.d;
    let c = idx % p.d;
    let id = ids[i];
    var v = 0.0;
    if (id < p.vocab) {
        v = load_w(id * p.d + c) * p.scale;
    }
    out[idx] = v;
}
