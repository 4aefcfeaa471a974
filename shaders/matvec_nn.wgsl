// matvec_nn: y[n, m] = x[n, k] · W[k, m] (+ bias[m]) for small n (decode).
//
// FFN down projection stored neuron-major [d_ff, d_model]; k is the ACTIVE
// width (a uniform), so only the first k rows of W are read. A 64x4 workgroup
// owns 64 output columns; its 4 rows of invocations split k, each reading W
// rows coalesced along m, for up to 4 tokens at a time, then reduce in
// workgroup memory. Same bindings and uniforms as matmul_nn.wgsl.
//!enable

struct Params {
    n: u32,
    k: u32,
    m: u32,
    w_chunk: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
//!typed bias 3 optional
//!weights 4

const COLS: u32 = 64u;
const SLICES: u32 = 4u;
var<workgroup> red: array<vec4<f32>, 256>;

@compute @workgroup_size(64, 4, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let block = wid.x + wid.y * nwg.x;
    if (block * COLS >= p.m) {
        return;
    }
    let c = block * COLS + lid.x;
    let valid = c < p.m;
    let cc = min(c, p.m - 1u);
    for (var t0 = 0u; t0 < p.n; t0 += 4u) {
        let r0 = t0 * p.k;
        let r1 = min(t0 + 1u, p.n - 1u) * p.k;
        let r2 = min(t0 + 2u, p.n - 1u) * p.k;
        let r3 = min(t0 + 3u, p.n - 1u) * p.k;
        var acc = vec4<f32>(0.0);
        for (var kk = lid.y; kk < p.k; kk += SLICES) {
            let w = load_w(kk * p.m + cc);
            acc = fma(vec4<f32>(w), vec4<f32>(x[r0 + kk], x[r1 + kk], x[r2 + kk], x[r3 + kk]), acc);
        }
        red[lid.y * COLS + lid.x] = acc;
        workgroupBarrier();
        if (lid.y == 0u && valid) {
            var s = red[lid.x];
            for (var q = 1u; q < SLICES; q++) {
                s += red[q * COLS + lid.x];
            }
            var b = 0.0;
            if (HAS_BIAS) {
                b = load_bias(c);
            }
            for (var q = 0u; q < 4u; q++) {
                if (t0 + q < p.n) {
                    y[(t0 + q) * p.m + c] = s[q] + b;
                }
            }
        }
        workgroupBarrier();
    }
}
