// argmax: out[r] = index of the largest x[r, :] (first index on ties; NaN never
// wins), for r < n. One 256-invocation workgroup per row (folded grid):
// strided scan per invocation, then a tree reduction of (value, index) pairs.

struct Params {
    n: u32,
    d: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;
var<workgroup> rv: array<f32, 256>;
var<workgroup> ri: array<u32, 256>;

// True when candidate (v, i) beats the current best (bv, bi).
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    if (i == NONE) {
        return false;
    }
    if (bi == NONE) {
        return true;
    }
    return v > bv || (v == bv && i < bi);
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
    var bv = 0.0;
    var bi = NONE;
    for (var c = t; c < p.d; c += WG) {
        let v = x[base + c];
        // `v == v` rejects NaN.
        if (v == v && better(v, c, bv, bi)) {
            bv = v;
            bi = c;
        }
    }
    rv[t] = bv;
    ri[t] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s && better(rv[t + s], ri[t + s], rv[t], ri[t])) {
            rv[t] = rv[t + s];
            ri[t] = ri[t + s];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        out[row] = select(ri[0], 0u, ri[0] == NONE);
    }
}
